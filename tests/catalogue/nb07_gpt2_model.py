"""Notebook 07's exercises, ``GPT(config)`` and ``load_hf_weights(model, state_dict)``: learner
mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished pieces of
``gpt2course.reference`` other than the exercise itself. The entries only lean on what the
notebook itself imports before the exercises (``Block``, ``LayerNorm``, ``GPTConfig``), so they
run unchanged through the grader, where the notebook's own namespace is all there is.

The GPT check builds the class from a ``GPTConfig``-like dataclass, compares the parameter names
and shapes with GPT-2's (``lm_head.weight`` must be ``transformer.wte.weight``, listed once),
measures the initial values' statistics, loads random weights by name and compares logits, loss
and gradients with a float64 oracle, and runs one token past ``block_size``. The loader check
calls the function on a GPT-shaped model whose values are all NaN, with Hugging Face state
dicts (Conv1D weights stored (in, out), ``attn.bias`` buffers, ``lm_head.weight``) and with ones
that do not fit.
"""

from catalogue import tidy as _tidy

NOTEBOOK = "07_gpt2_model.ipynb"

WRONG = {
    "GPT": {
        # No tying: lm_head gets its own (V, n_embd) matrix, 38M extra parameters in GPT-2 small.
        "untied_head": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # "Tied" by copying wte's values into a new Parameter: equal at the start, two matrices
        # that drift apart in training.
        "tied_by_copying_values": """
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
                    with torch.no_grad():
                        for name, p in self.named_parameters():
                            if name.endswith("c_proj.weight"):
                                p.normal_(0.0, 0.02 / math.sqrt(2 * config.n_layer))
                            elif p.dim() == 2:
                                p.normal_(0.0, 0.02)
                            elif name.endswith("bias"):
                                p.zero_()
                    self.lm_head.weight = nn.Parameter(self.transformer.wte.weight.clone())

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # nn.Linear's default bias=True: the tied head gets an extra lm_head.bias (zero here, so
        # the logits are right; GPT-2's head has no bias).
        "head_with_bias": """
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
                    self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # ln_f is built but never applied: the last block's output goes straight into lm_head.
        "no_final_layernorm": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(x)
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # Only the token embeddings: wpe exists but its rows are never added.
        "positions_not_added": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    x = self.transformer.wte(idx)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # The original Transformer's sqrt(d_model) scaling of the token embeddings (GPT-2 has none).
        "embeddings_scaled_by_sqrt_n_embd": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    tok = self.transformer.wte(idx) * math.sqrt(self.config.n_embd)
                    x = tok + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # No initialisation at all: nn.Embedding's N(0, 1) (so wte, and the tied head, are 50x
        # too large) and nn.Linear's uniform weights and biases.
        "pytorch_default_init": """
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

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # Every weight matrix at 0.02, the residual projections (c_proj) not scaled down.
        "c_proj_not_scaled": """
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
                    with torch.no_grad():
                        for name, p in self.named_parameters():
                            if p.dim() == 2:
                                p.normal_(0.0, 0.02)
                            elif name.endswith("bias"):
                                p.zero_()

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # The transformer initialised first, then the head created and wte tied to it: wte now
        # holds the head's default nn.Linear (uniform, std ~1/sqrt(3 n_embd)) values.
        "wte_tied_to_uninitialised_head": """
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
                    for name, p in self.transformer.named_parameters():
                        if name.endswith("c_proj.weight"):
                            nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))
                        elif p.dim() == 2:
                            nn.init.normal_(p, mean=0.0, std=0.02)
                        elif name.endswith("bias"):
                            nn.init.zeros_(p)
                    self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
                    self.transformer.wte.weight = self.lm_head.weight  # weight tying

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # Uniform weights with the right standard deviation (bound std * sqrt(3)): not normal.
        "uniform_init_with_std_002": """
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
                    for name, p in self.named_parameters():
                        if p.dim() == 2:
                            std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else 0.02
                            bound = std * math.sqrt(3)  # uniform(-b, b) has std b / sqrt(3)
                            nn.init.uniform_(p, -bound, bound)
                        elif name.endswith("bias"):
                            nn.init.zeros_(p)

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # Weight matrices initialised, biases left at nn.Linear's default uniform values.
        "biases_left_at_default": """
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
                    with torch.no_grad():
                        for name, p in self.named_parameters():
                            if p.dim() == 2:
                                std = 0.02 / math.sqrt(2 * config.n_layer) if "c_proj" in name else 0.02
                                p.normal_(0.0, std)

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # Returns softmax probabilities instead of logits (the loss itself is computed right).
        "returns_probabilities": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return F.softmax(logits, dim=-1), loss
            """,
        # nanoGPT's inference shortcut: without targets, only the last position's logits (B, 1, V).
        "last_position_only_without_targets": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    x = self.transformer.ln_f(x)
                    if targets is not None:
                        logits = self.lm_head(x)
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    else:
                        logits = self.lm_head(x[:, [-1], :])  # only the last position is needed to generate
                        loss = None
                    return logits, loss
            """,
        # The targets shifted once more, as if they were the inputs: predicts two tokens ahead.
        "loss_shifted_again": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        V = logits.size(-1)
                        # position t predicts token t + 1
                        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), targets[:, 1:].reshape(-1))
                    return logits, loss
            """,
        # reduction="sum": the loss grows with B * T instead of being the mean.
        "loss_summed": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(B * T, -1), targets.view(B * T), reduction="sum")
                    return logits, loss
            """,
        # Without targets the loss is a zero tensor instead of None.
        "loss_zero_without_targets": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = torch.tensor(0.0)
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # No check of T: one token too many ends in nn.Embedding's "index out of range in self".
        "no_block_size_check": """
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
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # The blocks in a plain Python list: forward works, but their parameters are not
        # registered (not in named_parameters, not trained, not loadable).
        "blocks_in_python_list": """
            class GPT(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.config = config
                    self.transformer = nn.ModuleDict(dict(
                        wte=nn.Embedding(config.vocab_size, config.n_embd),
                        wpe=nn.Embedding(config.block_size, config.n_embd),
                        ln_f=LayerNorm(config.n_embd),
                    ))
                    self.transformer.h = [Block(config.n_embd, config.n_head) for _ in range(config.n_layer)]
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # No check of T, positions as a slice of wpe.weight: one token too many raises "The size
        # of tensor a (17) must match the size of tensor b (16)", which does not say that the
        # input is longer than block_size (the message contains the number, not the reason).
        "wpe_sliced_without_check": """
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
                    x = self.transformer.wte(idx) + self.transformer.wpe.weight[:T]  # positions 0..T-1
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # Keeps the sizes it needs as attributes instead of self.config: the notebook's own cells
        # and generate() read model.config.block_size.
        "config_not_stored": """
            class GPT(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.block_size = config.block_size
                    self.transformer = nn.ModuleDict(dict(
                        wte=nn.Embedding(config.vocab_size, config.n_embd),
                        wpe=nn.Embedding(config.block_size, config.n_embd),
                        h=nn.ModuleList([Block(config.n_embd, config.n_head) for _ in range(config.n_layer)]),
                        ln_f=LayerNorm(config.n_embd),
                    ))
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
                    if T > self.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
    },
    "load_hf_weights": {
        # Copies every tensor as stored: the Conv1D weights are (in, out), nn.Linear's (out, in).
        "no_transpose": """
            def load_hf_weights(model, state_dict):
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name]
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
        # Transposes every matrix, the embeddings included.
        "transposes_every_matrix": """
            def load_hf_weights(model, state_dict):
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name]
                        if value.dim() == 2:
                            value = value.t()
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
        # Transposes c_attn only, forgetting c_proj and c_fc (also Conv1D).
        "transposes_only_c_attn": """
            def load_hf_weights(model, state_dict):
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name]
                        if name.endswith("attn.c_attn.weight"):
                            value = value.t()
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
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
        "head_replaced_by_new_parameter": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name].t() if name.endswith(conv1d) else state_dict[name]
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                lm_head = state_dict.get("lm_head.weight", state_dict["transformer.wte.weight"])
                model.lm_head.weight = nn.Parameter(lm_head.clone())
                return model
            """,
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
        "relies_on_copy_error": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name]
                        if name.endswith(conv1d):
                            value = value.t()
                        param.copy_(value)
                return model
            """,
        # Skips what the state dict lacks: a partial checkpoint half-loads without a word.
        "skips_missing_tensors": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            continue
                        value = state_dict[name]
                        if name.endswith(conv1d):
                            value = value.t()
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
        # Writes the transposed weights back into the caller's dict: loading twice undoes it.
        "transposes_into_the_state_dict": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                for name in state_dict:
                    if name.endswith(conv1d):
                        state_dict[name] = state_dict[name].t()
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name]
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
        # .t_() transposes the caller's tensor in place.
        "transposes_in_place": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name]
                        if name.endswith(conv1d):
                            value.t_()
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
        # Loads into a deep copy and returns it: the model passed in is left untouched.
        "loads_into_a_copy": """
            import copy

            def load_hf_weights(model, state_dict):
                model = copy.deepcopy(model)
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name].t() if name.endswith(conv1d) else state_dict[name]
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
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
        "forgets_return_model": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                with torch.no_grad():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} is missing from the state dict")
                        value = state_dict[name].t() if name.endswith(conv1d) else state_dict[name]
                        if value.shape != param.shape:
                            raise ValueError(f"{name}: shape {tuple(value.shape)}, expected {tuple(param.shape)}")
                        param.copy_(value)
            """,
    },
}

VALID = {
    "GPT": {
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
        "tied_the_other_way_round": """
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
                    self.transformer.wte.weight = self.lm_head.weight
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
                    return logits, loss
            """,
        # The logits as F.linear(x, wte.weight), with lm_head still there and tied.
        "f_linear_with_wte_weight": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    x = self.transformer.ln_f(x)
                    logits = F.linear(x, self.transformer.wte.weight)  # the same matrix as lm_head
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # The loss with the classes in dimension 1: logits (B, V, T) against targets (B, T).
        "loss_with_classes_in_dim_1": """
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
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.transpose(1, 2), targets)
                    return logits, loss
            """,
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
        # GPT-2's TensorFlow code: wpe initialised with std 0.01, everything else as in the paper.
        "wpe_std_001": """
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
                    with torch.no_grad():
                        for name, p in self.named_parameters():
                            if name == "transformer.wpe.weight":
                                p.normal_(0.0, 0.01)
                            elif name.endswith("c_proj.weight"):
                                p.normal_(0.0, 0.02 / math.sqrt(2 * config.n_layer))
                            elif p.dim() == 2:
                                p.normal_(0.0, 0.02)
                            elif name.endswith("bias"):
                                p.zero_()

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
        # nn.init.trunc_normal_ with its default bounds (a=-2, b=2: a hundred standard deviations
        # out, so in effect a normal).
        "trunc_normal_default_bounds": """
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
                    for name, p in self.named_parameters():
                        if p.dim() == 2:
                            std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else 0.02
                            nn.init.trunc_normal_(p, mean=0.0, std=std)
                        elif name.endswith("bias"):
                            nn.init.zeros_(p)

                def forward(self, idx, targets=None):
                    B, T = idx.shape
                    if T > self.config.block_size:
                        raise ValueError(f"sequence of length {T} is longer than block_size {self.config.block_size}")
                    pos = torch.arange(T, device=idx.device)
                    x = self.transformer.wte(idx) + self.transformer.wpe(pos)
                    for block in self.transformer.h:
                        x = block(x)
                    logits = self.lm_head(self.transformer.ln_f(x))
                    loss = None
                    if targets is not None:
                        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
                    return logits, loss
            """,
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
        # Copies under torch.inference_mode() instead of torch.no_grad().
        "inference_mode": """
            def load_hf_weights(model, state_dict):
                conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
                with torch.inference_mode():
                    for name, param in model.named_parameters():
                        if name not in state_dict:
                            raise KeyError(f"{name} not found in the state dict")
                        value = state_dict[name]
                        if name.endswith(conv1d):
                            value = value.t()
                        if value.shape != param.shape:
                            raise ValueError(f"{name} has shape {tuple(value.shape)}, the model wants {tuple(param.shape)}")
                        param.copy_(value)
                return model
            """,
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
