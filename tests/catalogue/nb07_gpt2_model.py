"""Notebook 07's exercises, ``GPT(config)`` and ``load_hf_weights(model, state_dict)``: learner
mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished pieces of
``gpt2course.reference`` other than the exercise itself. The entries only lean on what the
notebook itself imports before the exercises (``Block``, ``LayerNorm``, ``GPTConfig``), so they
run unchanged through the grader, where the notebook's own namespace is all there is.

The GPT check builds the class from a ``GPTConfig``-like dataclass, compares the parameter names
and shapes with GPT-2's (``lm_head.weight`` must be ``transformer.wte.weight``, listed once),
measures the initial values' statistics, loads random weights by name and compares logits, loss
and gradients with a float64 oracle, runs one token past ``block_size``, and runs the model on
the meta device (positions made without ``device=`` stay on the CPU there). The loader check
calls the function on a GPT-shaped model whose values are all NaN, with Hugging Face state
dicts (Conv1D weights stored (in, out), ``attn.bias`` buffers, ``lm_head.weight``) and with ones
that do not fit.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "07_gpt2_model.ipynb"

# Pieces of the reference answers, as written there, that several variants edit.
_HEAD = "        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)\n"
_TIE = "        self.lm_head.weight = self.transformer.wte.weight  # tied: one matrix, two uses\n"
_INIT = """\
        # GPT-2's initialisation: every weight matrix and embedding ~ normal(0, 0.02), the
        # projections that write into the residual stream scaled by 1/sqrt(2 * n_layer),
        # biases 0 (LayerNorms keep weight 1, bias 0).
        with torch.no_grad():
            for name, p in self.named_parameters():
                if p.dim() == 2:
                    residual = name.endswith("c_proj.weight")
                    p.normal_(0.0, 0.02 / math.sqrt(2 * config.n_layer) if residual else 0.02)
                elif ".ln_" not in name:
                    p.zero_()
"""
_CHECK = """\
        if T > self.config.block_size:
            raise ValueError(f"cannot read {T} tokens: block_size is {self.config.block_size}")
"""
_TRANSPOSE = "            if name.endswith(conv1d):\n                value = value.t()\n"
_SHAPE_CHECK = """\
            if value.shape != param.shape:
                raise ValueError(f"{name}: the state dict's tensor has shape {tuple(value.shape)}"
                                 f"{' (transposed)' if name.endswith(conv1d) else ''}, the model's "
                                 f"{tuple(param.shape)}: was the model built with the same config?")
"""

WRONG = {
    "GPT": {
        # ignore_index=0: id 0 is a real token (GPT-2's "!"), and its targets drop out of the loss.
        # Random targets hold a 0 only now and then; the cases plant one.
        "loss_ignores_id_0": variant("GPT", ("targets.reshape(B * T))", "targets.reshape(B * T), ignore_index=0)")),
        # No tying: lm_head gets its own (V, n_embd) matrix, 38M extra parameters in GPT-2 small.
        "untied_head": variant("GPT", (_TIE, "")),
        # "Tied" by copying wte's values into a new Parameter: equal at the start, two matrices
        # that drift apart in training.
        "tied_by_copying_values": variant("GPT", (_TIE, ""), (
            "                    p.zero_()\n",
            "                    p.zero_()\n"
            "        self.lm_head.weight = nn.Parameter(self.transformer.wte.weight.clone())\n")),
        # nn.Linear's default bias=True: the tied head gets an extra lm_head.bias (zero here, so
        # the logits are right; GPT-2's head has no bias).
        "head_with_bias": variant("GPT", ("nn.Linear(config.n_embd, config.vocab_size, bias=False)",
                                          "nn.Linear(config.n_embd, config.vocab_size)")),
        # ln_f is built but never applied: the last block's output goes straight into lm_head.
        "no_final_layernorm": variant("GPT", ("self.lm_head(self.transformer.ln_f(x))", "self.lm_head(x)")),
        # Only the token embeddings: wpe exists but its rows are never added.
        "positions_not_added": variant("GPT", ("self.transformer.wte(idx) + self.transformer.wpe(positions)",
                                               "self.transformer.wte(idx)")),
        # The original Transformer's sqrt(d_model) scaling of the token embeddings (GPT-2 has none).
        "embeddings_scaled_by_sqrt_n_embd": variant("GPT",
            ("self.transformer.wte(idx) + ",
             "self.transformer.wte(idx) * math.sqrt(self.config.n_embd) + ")),
        # No initialisation at all: nn.Embedding's N(0, 1) (so wte, and the tied head, are 50x
        # too large) and nn.Linear's uniform weights and biases.
        "pytorch_default_init": variant("GPT", (_INIT, "")),
        # Every weight matrix at 0.02, the residual projections (c_proj) not scaled down.
        "c_proj_not_scaled": variant("GPT",
                                     ("0.02 / math.sqrt(2 * config.n_layer) if residual else 0.02", "0.02")),
        # The transformer initialised first, then the head created and wte tied to it: wte now
        # holds the head's default nn.Linear (uniform, std ~1/sqrt(3 n_embd)) values.
        "wte_tied_to_uninitialised_head": variant("GPT", (_HEAD + _TIE, ""), (
            "                    p.zero_()\n",
            "                    p.zero_()\n" + _HEAD
            + "        self.transformer.wte.weight = self.lm_head.weight  # weight tying\n")),
        # Uniform weights with the right standard deviation (bound std * sqrt(3)): not normal.
        "uniform_init_with_std_002": variant("GPT", (
            "p.normal_(0.0, 0.02 / math.sqrt(2 * config.n_layer) if residual else 0.02)",
            "std = 0.02 / math.sqrt(2 * config.n_layer) if residual else 0.02\n"
            "                    bound = std * math.sqrt(3)  # uniform(-b, b) has std b / sqrt(3)\n"
            "                    p.uniform_(-bound, bound)")),
        # Weight matrices initialised, biases left at nn.Linear's default uniform values.
        "biases_left_at_default": variant("GPT",
            ('                elif ".ln_" not in name:\n                    p.zero_()\n', "")),
        # Returns softmax probabilities instead of logits (the loss itself is computed right).
        "returns_probabilities": variant("GPT",
                                         ("return logits, loss", "return F.softmax(logits, dim=-1), loss")),
        # nanoGPT's inference shortcut: without targets, only the last position's logits (B, 1, V).
        "last_position_only_without_targets": variant("GPT", (
            "        loss = None\n        if targets is not None:\n",
            "        loss = None\n        if targets is None:\n"
            "            logits = logits[:, [-1], :]  # only the last position is needed to generate\n"
            "        else:\n")),
        # The targets shifted once more, as if they were the inputs: predicts two tokens ahead.
        "loss_shifted_again": variant("GPT", (
            "logits.reshape(B * T, -1), targets.reshape(B * T)",
            "logits[:, :-1].reshape(-1, logits.size(-1)), targets[:, 1:].reshape(-1)")),
        # reduction="sum": the loss grows with B * T instead of being the mean.
        "loss_summed": variant("GPT",
                               ("targets.reshape(B * T))", 'targets.reshape(B * T), reduction="sum")')),
        # Without targets the loss is a zero tensor instead of None.
        "loss_zero_without_targets": variant("GPT", ("loss = None", "loss = torch.tensor(0.0)")),
        # No check of T: one token too many ends in nn.Embedding's "index out of range in self".
        "no_block_size_check": variant("GPT", (_CHECK, "")),
        # The blocks in a plain Python list: forward works, but their parameters are not
        # registered (not in named_parameters, not trained, not loadable).
        # The classic: F.dropout(x, p) after the embeddings. Its training argument defaults to
        # True, so it drops in eval mode as well.
        "embedding_dropout_in_eval_mode": variant("GPT", ("            drop=nn.Dropout(config.dropout),\n", ""),
            ("x = self.transformer.drop(x)", "x = F.dropout(x, self.config.dropout)")),
        # Dropout told training=True: on whatever the mode.
        "embedding_dropout_training_true": variant("GPT", (
            "x = self.transformer.drop(x)",
            "x = nn.functional.dropout(x, self.config.dropout, training=True)")),
        "blocks_in_python_list": variant(
            "GPT",
            ("            h=nn.ModuleList([Block(config.n_embd, config.n_head, config.dropout)\n"
             "                             for _ in range(config.n_layer)]),\n",
             ""),
            (_HEAD,
             "        self.transformer.h = [Block(config.n_embd, config.n_head) for _ in range(config.n_layer)]\n"
             + _HEAD)),
        # No check of T, positions as a slice of wpe.weight: one token too many raises "The size
        # of tensor a (17) must match the size of tensor b (16)", which does not say that the
        # input is longer than block_size (the message contains the number, not the reason).
        "wpe_sliced_without_check": variant("GPT", (_CHECK, ""), (
            "        positions = torch.arange(T, device=idx.device)\n"
            "        x = self.transformer.wte(idx) + self.transformer.wpe(positions)\n",
            "        x = self.transformer.wte(idx) + self.transformer.wpe.weight[:T]  # positions 0..T-1\n")),
        # Keeps the sizes it needs as attributes instead of self.config: the notebook's own cells
        # and generate() read model.config.block_size.
        "config_not_stored": variant("GPT",
            ("self.config = config", "self.block_size = config.block_size"),
            (_CHECK,
             '        if T > self.block_size:\n'
             '            raise ValueError(f"cannot read {T} tokens: block_size is {self.block_size}")\n')),
        # torch.arange(T) without device=: the positions stay on the CPU when the model and idx
        # are on a GPU ("Expected all tensors to be on the same device").
        "positions_on_cpu": variant("GPT", ("torch.arange(T, device=idx.device)", "torch.arange(T)")),
        # The position table indexed with the token ids: any id >= block_size is out of range.
        "wpe_indexed_by_token_ids": variant("GPT", ("self.transformer.wpe(positions)", "self.transformer.wpe(idx)")),
        # Positions counted from 1.
        "positions_from_1": variant("GPT", ("torch.arange(T, device=idx.device)",
                                            "torch.arange(1, T + 1, device=idx.device)")),
        # ln_f kept beside the ModuleDict instead of inside it: self.ln_f, not transformer.ln_f.
        "ln_f_outside_transformer": variant("GPT",
            ("            ln_f=LayerNorm(config.n_embd),\n", ""),
            (_HEAD, "        self.ln_f = LayerNorm(config.n_embd)\n" + _HEAD),
            ("self.lm_head(self.transformer.ln_f(x))", "self.lm_head(self.ln_f(x))")),
        # The residual projections divided by sqrt(n_layer): one update per layer counted, where
        # attention and MLP each write into the stream.
        "c_proj_scaled_by_sqrt_n_layer": variant("GPT", ("0.02 / math.sqrt(2 * config.n_layer)",
                                                         "0.02 / math.sqrt(config.n_layer)")),
        # Every weight matrix and embedding scaled down, not only the c_proj projections.
        "every_matrix_scaled": variant("GPT", ('residual = name.endswith("c_proj.weight")', "residual = True")),
        # `>=` instead of `>`: a full block of block_size tokens is refused.
        "block_size_check_off_by_one": variant("GPT", ("if T > self.config.block_size:",
                                                       "if T >= self.config.block_size:")),
        # (B, T, V) logits straight into F.cross_entropy, which reads dimension 1 as the classes.
        "loss_without_flattening": variant("GPT", ("logits.reshape(B * T, -1), targets.reshape(B * T)",
                                                   "logits, targets")),
        # The blocks run last to first.
        "blocks_in_reverse": variant("GPT", ("for block in self.transformer.h:",
                                             "for block in reversed(self.transformer.h):")),
        # Each block applied to the embeddings, not to the previous block's output: only the
        # last one counts.
        "blocks_not_chained": variant("GPT", (
            "        for block in self.transformer.h:\n            x = block(x)\n",
            "        for block in self.transformer.h:\n            out = block(x)\n        x = out\n")),
    },
    "load_hf_weights": {
        # Copies every tensor as stored: the Conv1D weights are (in, out), nn.Linear's (out, in).
        "no_transpose": variant("load_hf_weights", (_TRANSPOSE, "")),
        # Transposes every matrix, the embeddings included.
        "transposes_every_matrix": variant("load_hf_weights", (_TRANSPOSE, (
            "            if value.dim() == 2:\n                value = value.t()\n"))),
        # Transposes c_attn only, forgetting c_proj and c_fc (also Conv1D).
        "transposes_only_c_attn": variant("load_hf_weights", (_TRANSPOSE, (
            '            if name.endswith("attn.c_attn.weight"):\n                value = value.t()\n'))),
        # Transposes whenever the shapes differ: the square attn.c_proj (n_embd, n_embd) stays
        # untransposed, and a wrong shape gets transposed instead of reported.
        "transposes_when_shapes_differ": """
            def load_hf_weights(model, state_dict):
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        value = state_dict[name]
                        if value.shape != param.shape:
                            value = value.t()
                        param.copy_(value)
                return model
            """,
        # Walks the state dict instead of the model: fails on the attn.bias buffers.
        "iterates_over_state_dict": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                params = dict(model.named_parameters())
                with torch.no_grad():
                    for name, value in state_dict.items():
                        if name == "lm_head.weight":
                            continue  # tied to wte
                        if name.endswith(conv1d):
                            value = value.t()
                        if value.shape != params[name].shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(params[name].shape)}")
                        params[name].copy_(value)
                return model
            """,
        # Loads lm_head.weight as a new Parameter: the head is no longer tied to wte.
        "head_replaced_by_new_parameter": variant("load_hf_weights", ("    return model", (
            '    lm_head = state_dict.get("lm_head.weight", state_dict["transformer.wte.weight"])\n'
            "    model.lm_head.weight = nn.Parameter(lm_head.clone())\n    return model"))),
        # param.data = value, no shape check: a checkpoint of another size goes in silently.
        "data_assigned_without_shape_check": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                for name, param in model.named_parameters():
                    value = state_dict[name]
                    if name.endswith(conv1d):
                        value = value.t()
                    param.data = value.clone()
                return model
            """,
        # Leaves shape errors to copy_, whose message does not say which tensor does not fit.
        "relies_on_copy_error": variant("load_hf_weights", (_SHAPE_CHECK, "")),
        # Skips what the state dict lacks: a partial checkpoint half-loads without a word.
        "skips_missing_tensors": variant("load_hf_weights",
                                         ('raise KeyError(f"the state dict has no {name}")', "continue")),
        # Writes the transposed weights back into the caller's dict: loading twice undoes it.
        "transposes_into_the_state_dict": variant("load_hf_weights", (
            "            value = state_dict[name]\n" + _TRANSPOSE,
            "            if name.endswith(conv1d):\n"
            "                state_dict[name] = state_dict[name].t()\n"
            "            value = state_dict[name]\n")),
        # .t_() transposes the caller's tensor in place.
        "transposes_in_place": variant("load_hf_weights", ("value = value.t()", "value.t_()")),
        # Loads into a deep copy and returns it: the model passed in is left untouched.
        "loads_into_a_copy": "import copy\n\n" + variant("load_hf_weights", (
            "    conv1d = (", "    model = copy.deepcopy(model)\n    conv1d = (")),
        # load_state_dict(strict=False) to get past the buffers: it also ignores missing tensors.
        "load_state_dict_not_strict": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                converted = {name: (value.t() if name.endswith(conv1d) else value)
                             for name, value in state_dict.items()}
                model.load_state_dict(converted, strict=False)
                return model
            """,
        # Loads everything right but forgets `return model`: the notebook's
        # load_hf_weights(GPT(config), state_dict).eval() then fails on None.
        "forgets_return_model": variant("load_hf_weights", ("    return model\n", "")),
        # copy_ into a parameter outside torch.no_grad(): autograd refuses the in-place change.
        "copy_without_no_grad": variant("load_hf_weights", (
            "    with torch.no_grad():\n        for name, param in model.named_parameters():",
            "    if True:\n        for name, param in model.named_parameters():")),
        # Transposes the square attn.c_proj only when the shapes disagree, the others by name:
        # attn.c_proj (n_embd, n_embd) fits either way and is loaded as stored.
        "c_proj_left_as_stored": variant("load_hf_weights", (
            '    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")',
            '    conv1d = ("attn.c_attn.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")')),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "GPT": {
        "embedding_dropout_in_eval_mode": ("no dropout in eval mode", "its training argument defaults to True"),
        "embedding_dropout_training_true": ("no dropout in eval mode",
                                            "two calls on the same input gave different outputs"),
        "loss_ignores_id_0": ("loss", "ignore_index=0"),
        "untied_head": ("tied head", "weight tying"),
        "tied_by_copying_values": ("tied head", "weight tying"),
        "head_with_bias": ("names and shapes", "bias=False"),
        "no_final_layernorm": ("logits", "final LayerNorm is missing"),
        "positions_not_added": ("logits", "position embeddings are not added"),
        "embeddings_scaled_by_sqrt_n_embd": ("logits", "should not be scaled"),
        "pytorch_default_init": ("initialisation", "nn.Embedding's default initialisation"),
        "c_proj_not_scaled": ("initialisation", "0.02 / sqrt(2 * n_layer)"),
        "wte_tied_to_uninitialised_head": ("initialisation", "took lm_head's default values"),
        "uniform_init_with_std_002": ("initialisation", "does not look normally distributed"),
        "biases_left_at_default": ("initialisation", "biases start at zero"),
        "returns_probabilities": ("logits", "not probabilities"),
        "last_position_only_without_targets": ("logits", "logits of every position"),
        "loss_shifted_again": ("loss", "without shifting again"),
        "loss_summed": ("loss", "not the sum"),
        "loss_zero_without_targets": ("loss", "the loss should be None"),
        "no_block_size_check": ("too long", "check T against config.block_size"),
        "blocks_in_python_list": ("names and shapes", "nn.ModuleList, not a Python list"),
        "wpe_sliced_without_check": ("too long", "check T against config.block_size"),
        "config_not_stored": ("config kept", "self.config = config"),
        "positions_on_cpu": ("positions on idx's device", "device=x.device"),
        "wpe_indexed_by_token_ids": ("logits", "not with the token ids"),
        "positions_from_1": ("logits", "positions should start at 0"),
        "ln_f_outside_transformer": ("names and shapes", "inside self.transformer"),
        "c_proj_scaled_by_sqrt_n_layer": ("initialisation", "you divided by sqrt(n_layer)"),
        "every_matrix_scaled": ("initialisation", "scales only the c_proj weights"),
        "block_size_check_off_by_one": ("too long", "raise only when T > block_size"),
        "loss_without_flattening": ("loss", "flatten the logits"),
        "blocks_in_reverse": ("logits", "blocks run in reverse order"),
        "blocks_not_chained": ("logits", "previous block's output"),
    },
    "load_hf_weights": {
        "no_transpose": ("conv1d transposed", "transpose those four"),
        "transposes_every_matrix": ("conv1d transposed", "and only those"),
        "transposes_only_c_attn": ("conv1d transposed", "transpose those four"),
        "transposes_when_shapes_differ": ("conv1d transposed", "is loaded as stored"),
        "iterates_over_state_dict": ("every parameter", "go through the model's parameters"),
        "head_replaced_by_new_parameter": ("in place", "no longer the token embedding's tensor"),
        "data_assigned_without_shape_check": ("wrong shape", "has shape (8, "),
        "relies_on_copy_error": ("wrong shape", "should name the tensor"),
        "skips_missing_tensors": ("missing tensor", "is missing without an error"),
        "transposes_into_the_state_dict": ("state dict unchanged", "changed the state dict it was given"),
        "transposes_in_place": ("state dict unchanged", "changed the state dict it was given"),
        "loads_into_a_copy": ("in place", "not into a copy"),
        "load_state_dict_not_strict": ("missing tensor", "is missing without an error"),
        "forgets_return_model": ("in place", "return model"),
        "copy_without_no_grad": ("in place", "outside torch.no_grad()"),
        "c_proj_left_as_stored": ("conv1d transposed", "attn.c_proj.weight is loaded as stored"),
    },
}

VALID = {
    "GPT": {
        # Dropout after the embeddings with F.dropout, told the module's mode.
        "functional_embedding_dropout": variant("GPT", ("            drop=nn.Dropout(config.dropout),\n", ""),
            ("x = self.transformer.drop(x)", "x = F.dropout(x, self.config.dropout, self.training)")),
        # nanoGPT's layout: self.apply(self._init_weights), then c_proj rescaled; an assert
        # naming the block size; positions (1, T) broadcast over the batch.
        "nanogpt_apply_init": """
            class GPT(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.config = config
                    self.transformer = nn.ModuleDict(dict(
                        wte=nn.Embedding(config.vocab_size, config.n_embd),
                        wpe=nn.Embedding(config.block_size, config.n_embd),
                        drop=nn.Dropout(config.dropout),
                        h=nn.ModuleList([Block(config.n_embd, config.n_head) for _ in range(config.n_layer)]),
                        ln_f=LayerNorm(config.n_embd),
                    ))
                    self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
                    self.transformer.wte.weight = self.lm_head.weight
                    self.apply(self._init_weights)
                    for pn, p in self.named_parameters():
                        if pn.endswith("c_proj.weight"):
                            torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

                def _init_weights(self, module):
                    if isinstance(module, nn.Linear):
                        torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
                        if module.bias is not None:
                            torch.nn.init.zeros_(module.bias)
                    elif isinstance(module, nn.Embedding):
                        torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

                def forward(self, idx, targets=None):
                    b, t = idx.size()
                    assert t <= self.config.block_size, f"Cannot forward sequence of length {t}, block size is only {self.config.block_size}"
                    pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)  # (1, t)
                    tok_emb = self.transformer.wte(idx)
                    pos_emb = self.transformer.wpe(pos)
                    x = self.transformer.drop(tok_emb + pos_emb)
                    for block in self.transformer.h:
                        x = block(x)
                    x = self.transformer.ln_f(x)
                    logits = self.lm_head(x)
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
                    return logits, loss
            """,
        # Hugging Face's style: initialised by module type with p.data.normal_, c_proj found by
        # its name inside each module.
        "hf_init_by_module_type": """
            class GPT(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.config = config
                    self.transformer = nn.ModuleDict(dict(
                        wte=nn.Embedding(config.vocab_size, config.n_embd),
                        wpe=nn.Embedding(config.block_size, config.n_embd),
                        h=nn.ModuleList([Block(config.n_embd, config.n_head) for _ in range(config.n_layer)]),
                        ln_f=LayerNorm(config.n_embd),
                    ))
                    self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
                    self.lm_head.weight = self.transformer.wte.weight
                    for module in self.modules():
                        if isinstance(module, nn.Linear):
                            module.weight.data.normal_(mean=0.0, std=0.02)
                            if module.bias is not None:
                                module.bias.data.zero_()
                        elif isinstance(module, nn.Embedding):
                            module.weight.data.normal_(mean=0.0, std=0.02)
                    for module in self.modules():
                        for name, p in module.named_parameters():
                            if name == "c_proj.weight":
                                p.data.normal_(mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"Sequence length {T} exceeds block_size={self.config.block_size}")
                    x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T, device=idx.device))
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    if targets is None:
                        return logits, None
                    return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten(0, 1))
            """,
        # The tie written the other way round (wte takes lm_head's Parameter), then initialised.
        "tied_the_other_way_round": variant("GPT", ("self.lm_head.weight = self.transformer.wte.weight",
                                                    "self.transformer.wte.weight = self.lm_head.weight")),
        # The logits as F.linear(x, wte.weight), with lm_head still there and tied.
        "f_linear_with_wte_weight": variant("GPT", (
            "logits = self.lm_head(self.transformer.ln_f(x))",
            "logits = F.linear(self.transformer.ln_f(x), self.transformer.wte.weight)"
            "  # the same matrix as lm_head")),
        # The loss with the classes in dimension 1: logits (B, V, T) against targets (B, T).
        "loss_with_classes_in_dim_1": variant("GPT",
            ("F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))",
             "F.cross_entropy(logits.transpose(1, 2), targets)")),
        # The blocks as an nn.Sequential (the same names, h.0, h.1, ...), called in one go;
        # embedding dropout outside the ModuleDict.
        "sequential_blocks_with_dropout": """
            class GPT(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.config = config
                    self.transformer = nn.ModuleDict(dict(
                        wte=nn.Embedding(config.vocab_size, config.n_embd),
                        wpe=nn.Embedding(config.block_size, config.n_embd),
                        h=nn.Sequential(*[Block(config.n_embd, config.n_head) for _ in range(config.n_layer)]),
                        ln_f=LayerNorm(config.n_embd),
                    ))
                    self.drop = nn.Dropout(config.dropout)
                    self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
                    self.lm_head.weight = self.transformer.wte.weight
                    with torch.no_grad():
                        for name, p in self.named_parameters():
                            if name.endswith("c_proj.weight"):
                                p.normal_(0.0, 0.02 / math.sqrt(2 * config.n_layer))
                            elif p.dim() == 2:
                                p.normal_(0.0, 0.02)
                            elif name.endswith("bias"):
                                p.zero_()

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"got {T} tokens but the block_size is {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
                    x = self.transformer.h(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T))
                    return logits, loss
            """,
        # The head created and tied after the initialisation loop: it takes wte's (initialised)
        # Parameter, so nothing is lost.
        "head_tied_after_init": variant("GPT", (_HEAD + _TIE, ""), (
            "                    p.zero_()\n",
            "                    p.zero_()\n" + _HEAD + _TIE)),
        # Positions as a slice of wpe's weight, after the length check; the loss through
        # flatten(0, 1).
        "wpe_weight_slice": variant("GPT", (
            "        positions = torch.arange(T, device=idx.device)\n"
            "        x = self.transformer.wte(idx) + self.transformer.wpe(positions)\n",
            "        x = self.transformer.wte(idx) + self.transformer.wpe.weight[:T]\n"), (
            "logits.reshape(B * T, -1), targets.reshape(B * T)", "logits.flatten(0, 1), targets.flatten(0, 1)")),
        # GPT-2's TensorFlow code: wpe initialised with std 0.01, everything else as in the paper.
        "wpe_std_001": variant("GPT", ("                if p.dim() == 2:\n", (
            '                if name == "transformer.wpe.weight":\n'
            "                    p.normal_(0.0, 0.01)\n"
            "                elif p.dim() == 2:\n"))),
        # nn.init.trunc_normal_ with its default bounds (a=-2, b=2: a hundred standard deviations
        # out, so in effect a normal).
        "trunc_normal_default_bounds": variant("GPT", ("p.normal_(0.0, ", "nn.init.trunc_normal_(p, 0.0, ")),
        # Its own block, written from scratch in the same cell with GPT-2's names (nn.LayerNorm,
        # F.scaled_dot_product_attention, tanh GELU); initialisation per module type.
        "own_block_in_the_cell": """
            class SelfAttention(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.n_head = n_head
                    self.c_attn = nn.Linear(n_embd, 3 * n_embd)
                    self.c_proj = nn.Linear(n_embd, n_embd)

                def forward(self, x):
                    B, T, C = x.shape
                    q, k, v = self.c_attn(x).split(C, dim=2)
                    q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
                    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


            class FeedForward(nn.Module):
                def __init__(self, n_embd):
                    super().__init__()
                    self.c_fc = nn.Linear(n_embd, 4 * n_embd)
                    self.c_proj = nn.Linear(4 * n_embd, n_embd)

                def forward(self, x):
                    return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


            class TransformerBlock(nn.Module):
                def __init__(self, n_embd, n_head):
                    super().__init__()
                    self.ln_1 = nn.LayerNorm(n_embd)
                    self.attn = SelfAttention(n_embd, n_head)
                    self.ln_2 = nn.LayerNorm(n_embd)
                    self.mlp = FeedForward(n_embd)

                def forward(self, x):
                    x = x + self.attn(self.ln_1(x))
                    return x + self.mlp(self.ln_2(x))


            class GPT(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.config = config
                    self.transformer = nn.ModuleDict(dict(
                        wte=nn.Embedding(config.vocab_size, config.n_embd),
                        wpe=nn.Embedding(config.block_size, config.n_embd),
                        h=nn.ModuleList([TransformerBlock(config.n_embd, config.n_head)
                                         for _ in range(config.n_layer)]),
                        ln_f=nn.LayerNorm(config.n_embd),
                    ))
                    self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
                    self.lm_head.weight = self.transformer.wte.weight
                    residual_std = 0.02 / math.sqrt(2 * config.n_layer)
                    for name, module in self.named_modules():
                        if isinstance(module, (nn.Linear, nn.Embedding)):
                            nn.init.normal_(module.weight, 0.0, residual_std if name.endswith("c_proj") else 0.02)
                        if isinstance(module, nn.Linear) and module.bias is not None:
                            nn.init.zeros_(module.bias)

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"input of length {T} is longer than the block_size ({self.config.block_size})")
                    x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T, device=idx.device))
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None if targets is None else F.cross_entropy(
                        logits.reshape(-1, self.config.vocab_size), targets.reshape(-1))
                    return logits, loss
            """,
    },
    "load_hf_weights": {
        # Through model.state_dict() (tensors sharing the parameters' storage), skipping the tied
        # lm_head.weight; .T for the transpose.
        "via_model_state_dict": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                own = model.state_dict()
                for name, target in own.items():
                    if name == "lm_head.weight":
                        continue  # the same tensor as transformer.wte.weight
                    if name not in state_dict:
                        raise KeyError(f"the checkpoint has no {name}")
                    value = state_dict[name].T if name.endswith(conv1d) else state_dict[name]
                    if value.shape != target.shape:
                        raise ValueError(f"{name}: checkpoint {tuple(value.shape)} vs model {tuple(target.shape)}")
                    with torch.no_grad():
                        target.copy_(value)
                return model
            """,
        # Its own key and shape checks, then load_state_dict(strict=False) for what remains
        # (copies in place, so the tie holds).
        "load_state_dict_after_checks": """
            def load_hf_weights(model, state_dict):
                transposed = ["attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"]
                converted = {}
                for name, param in model.named_parameters():
                    if name not in state_dict:
                        raise KeyError(name)
                    value = state_dict[name]
                    if any(name.endswith(t) for t in transposed):
                        value = value.transpose(0, 1)
                    if value.shape != param.shape:
                        raise ValueError(f"shape mismatch for {name}: {tuple(value.shape)} != {tuple(param.shape)}")
                    converted[name] = value
                model.load_state_dict(converted, strict=False)
                return model
            """,
        # nanoGPT's from_pretrained, turned round to walk the model's keys: asserts that name
        # the key.
        "nanogpt_asserts": """
            def load_hf_weights(model, state_dict):
                sd = model.state_dict()
                sd_keys = [k for k in sd if k != "lm_head.weight"]
                transposed = ["attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"]
                for k in sd_keys:
                    assert k in state_dict, f"missing key in checkpoint: {k}"
                    if any(k.endswith(w) for w in transposed):
                        assert state_dict[k].shape[::-1] == sd[k].shape, f"shape mismatch for {k}"
                        with torch.no_grad():
                            sd[k].copy_(state_dict[k].t())
                    else:
                        assert state_dict[k].shape == sd[k].shape, f"shape mismatch for {k}"
                        with torch.no_grad():
                            sd[k].copy_(state_dict[k])
                return model
            """,
        # The Conv1D weights told apart by the layer names alone (c_proj covers both projections).
        "conv1d_by_layer_name": variant("load_hf_weights", (
            '    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")',
            '    conv1d = ("c_attn.weight", "c_proj.weight", "c_fc.weight")')),
        # Copies under torch.inference_mode() instead of torch.no_grad().
        "inference_mode": variant("load_hf_weights", ("torch.no_grad()", "torch.inference_mode()")),
        # Module by module, by hand, with a helper that raises RuntimeError naming the key.
        "module_by_module": """
            def load_hf_weights(model, state_dict):
                def load(param, key, transpose=False):
                    if key not in state_dict:
                        raise KeyError(f"missing {key}")
                    value = state_dict[key].transpose(0, 1) if transpose else state_dict[key]
                    if param.shape != value.shape:
                        raise RuntimeError(f"{key}: expected {tuple(param.shape)}, got {tuple(value.shape)}")
                    with torch.no_grad():
                        param.copy_(value)

                t = model.transformer
                load(t.wte.weight, "transformer.wte.weight")
                load(t.wpe.weight, "transformer.wpe.weight")
                for i, block in enumerate(t.h):
                    p = f"transformer.h.{i}."
                    load(block.ln_1.weight, p + "ln_1.weight")
                    load(block.ln_1.bias, p + "ln_1.bias")
                    load(block.attn.c_attn.weight, p + "attn.c_attn.weight", transpose=True)
                    load(block.attn.c_attn.bias, p + "attn.c_attn.bias")
                    load(block.attn.c_proj.weight, p + "attn.c_proj.weight", transpose=True)
                    load(block.attn.c_proj.bias, p + "attn.c_proj.bias")
                    load(block.ln_2.weight, p + "ln_2.weight")
                    load(block.ln_2.bias, p + "ln_2.bias")
                    load(block.mlp.c_fc.weight, p + "mlp.c_fc.weight", transpose=True)
                    load(block.mlp.c_fc.bias, p + "mlp.c_fc.bias")
                    load(block.mlp.c_proj.weight, p + "mlp.c_proj.weight", transpose=True)
                    load(block.mlp.c_proj.bias, p + "mlp.c_proj.bias")
                load(t.ln_f.weight, "transformer.ln_f.weight")
                load(t.ln_f.bias, "transformer.ln_f.bias")
                return model
            """,
        # The reference's loop with .T and the parameters looked up in a dict first.
        "named_parameters_dict": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                params = dict(model.named_parameters())
                missing = [name for name in params if name not in state_dict]
                if missing:
                    raise KeyError(f"the state dict lacks {', '.join(missing)}")
                with torch.no_grad():
                    for name, param in params.items():
                        value = state_dict[name].T if name.endswith(conv1d) else state_dict[name]
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: {tuple(value.shape)} does not fit {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
    },
}

VALID_FAILING: dict = {}


WRONG, VALID, VALID_FAILING = map(_tidy, (WRONG, VALID, VALID_FAILING))
