"""Notebook 08's exercises (``lm_loss``, ``configure_optimizer``, ``get_lr``, ``train_step``,
``estimate_loss``): learner mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished pieces of
``gpt2course.reference`` other than the exercise itself, so a ``train_step`` cell may call
``lm_loss`` and an ``estimate_loss`` cell ``get_batch``, as the notebook's cells would.

How the checks see these answers: the loss is compared with a float64 cross-entropy (with logits
large enough to break a naive log(softmax), T = 1, and gradients); the schedule over whole
schedules against its formula; the optimiser by its parameter groups on a GPT-shaped model whose
``lm_head.weight`` is tied to ``transformer.wte.weight``; ``train_step`` by one to three steps of
plain SGD on a tiny language model replayed in float64; ``estimate_loss`` by what the model saw
(its mode, whether gradients were recorded, which batches) and the mean of those batches' losses.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "08_training.ipynb"

# Lines of the reference answers, as written there, that several variants edit.
_WARMUP = "return max_lr * (step + 1) / warmup_steps   # step 0 already learns a little"
_COSINE = "min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)"
_CLIP = """\
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
"""

WRONG = {
    "lm_loss": {
        # reduction="sum": the loss grows with B * T, and so does the effective learning rate.
        "sum_reduction": variant("lm_loss",
                                 ("targets.reshape(B * T))", 'targets.reshape(B * T), reduction="sum")')),
        # Sums the loss along each sequence, then averages over the batch.
        "mean_of_sequence_sums": """
            def lm_loss(logits, targets):
                per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T)
                return per_token.sum(dim=1).mean()
            """,
        # Shifts again, as if targets were the inputs: get_batch already shifted them by one.
        "shifted_twice": variant("lm_loss", ("logits.reshape(B * T, V), targets.reshape(B * T)",
                                             "logits[:, :-1].reshape(-1, V), targets[:, 1:].reshape(-1)")),
        # Softmax first: F.cross_entropy then applies log-softmax to probabilities.
        "softmax_then_cross_entropy": variant("lm_loss",
            ("F.cross_entropy(logits.reshape",
             "F.cross_entropy(F.softmax(logits, dim=-1).reshape")),
        # The textbook formula written literally: log(softmax) underflows to -inf for large logits.
        "naive_log_softmax": """
            def lm_loss(logits, targets):
                probs = torch.softmax(logits, dim=-1)
                log_probs = torch.log(probs)
                return -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
            """,
        # F.nll_loss on probabilities: minus the mean probability of the target, not its log.
        "nll_of_probabilities": variant("lm_loss", ("F.cross_entropy(logits.reshape",
                                                    "F.nll_loss(F.softmax(logits, dim=-1).reshape")),
        # .item() in the loss: a float has no .backward().
        "returns_item": variant("lm_loss", ("targets.reshape(B * T))", "targets.reshape(B * T)).item()")),
        # permute then reshape: the right shape, but each row mixes positions and vocabulary.
        "permute_then_reshape": variant("lm_loss", ("logits.reshape(", "logits.permute(0, 2, 1).reshape(")),
        # view(-1, T): rows of length T; the sizes only line up by accident, and never here.
        "view_by_T": variant("lm_loss", ("logits.reshape(B * T, V), targets.reshape(B * T)",
                                         "logits.view(-1, T), targets.view(-1)")),
        # (B, T, V) straight in: cross_entropy reads dim 1 (T) as the classes.
        "no_reshape": variant("lm_loss",
                              ("logits.reshape(B * T, V), targets.reshape(B * T)", "logits, targets")),
        # Detached "to save memory": the number is right, but no gradient reaches the model.
        "detached": variant("lm_loss", ("logits.reshape(", "logits.detach().reshape(")),
        # ignore_index=0 "to skip padding": id 0 is a real token, and its positions drop out.
        "ignores_id_0": variant("lm_loss", ("targets.reshape(B * T))", "targets.reshape(B * T), ignore_index=0)")),
        # log_softmax over dimension 1 of (B, T, V): normalises over the positions.
        "log_softmax_over_dim_1": """
            def lm_loss(logits, targets):
                log_probs = F.log_softmax(logits, dim=1)
                return -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
            """,
        # Stabilised by hand, subtracting the max from the caller's logits in place.
        "subtracts_max_in_place": """
            def lm_loss(logits, targets):
                logits -= logits.amax(dim=-1, keepdim=True)  # for numerical stability
                log_probs = logits - logits.exp().sum(dim=-1, keepdim=True).log()
                return -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
            """,
    },
    "configure_optimizer": {
        # weight_decay for every parameter, biases and LayerNorm gains included.
        "decay_everything": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                return torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=betas,
                                         weight_decay=weight_decay)
            """,
        # No groups and no weight_decay at all: AdamW's default 0.01 everywhere.
        "no_groups": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                return torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=betas)
            """,
        # Only names ending in "bias" are spared: the LayerNorm weights are decayed towards 0.
        "bias_by_name_only": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                decay, no_decay = [], []
                for name, p in model.named_parameters():
                    (no_decay if name.endswith("bias") else decay).append(p)
                return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                          {"params": no_decay, "weight_decay": 0.0}],
                                         lr=learning_rate, betas=betas)
            """,
        # Adam with weight_decay is L2 regularisation through the gradient, not decoupled decay.
        "adam_not_adamw": variant("configure_optimizer",
                                  ("torch.optim.AdamW(groups", "torch.optim.Adam(groups")),
        # The no-decay group says nothing, so it inherits AdamW's default weight_decay of 0.01.
        "no_decay_group_default": variant("configure_optimizer", ('{"params": no_decay, "weight_decay": 0.0}',
                                                                  '{"params": no_decay}')),
        # The condition turned round: decay on biases and gains, none on the matrices.
        "inverted_condition": variant("configure_optimizer", (
            "decay = [p for p in params if p.dim() >= 2]\n    no_decay = [p for p in params if p.dim() < 2]",
            "decay = [p for p in params if p.dim() < 2]\n"
            "    no_decay = [p for p in params if p.dim() >= 2]")),
        # Walks the modules: the tied matrix is met as wte.weight and again as lm_head.weight.
        "tied_weight_twice": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                decay, no_decay = [], []
                for module in model.modules():
                    for name, p in module.named_parameters(recurse=False):
                        if isinstance(module, (nn.Linear, nn.Embedding)) and name == "weight":
                            decay.append(p)
                        else:
                            no_decay.append(p)
                return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                          {"params": no_decay, "weight_decay": 0.0}],
                                         lr=learning_rate, betas=betas)
            """,
        # The same with remove_duplicate=False, to "see every parameter".
        "remove_duplicate_false": variant("configure_optimizer", (
            "[p for p in model.parameters() if p.requires_grad]  # a tied weight is listed once",
            "[p for _, p in model.named_parameters(remove_duplicate=False)]")),
        # minGPT's whitelist/blacklist by module type: embeddings get no decay here, but they
        # are 2-D matrices and the exercise decays them.
        "mingpt_embeddings_not_decayed": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                decay, no_decay = set(), set()
                for mn, m in model.named_modules():
                    for pn, p in m.named_parameters(recurse=False):
                        full = f"{mn}.{pn}" if mn else pn
                        if pn.endswith("bias"):
                            no_decay.add(full)
                        elif pn.endswith("weight") and isinstance(m, nn.Linear):
                            decay.add(full)
                        elif pn.endswith("weight") and isinstance(m, (nn.LayerNorm, nn.Embedding)):
                            no_decay.add(full)
                params = dict(model.named_parameters())
                decay -= no_decay
                return torch.optim.AdamW(
                    [{"params": [params[n] for n in sorted(decay) if n in params], "weight_decay": weight_decay},
                     {"params": [params[n] for n in sorted(no_decay) if n in params], "weight_decay": 0.0}],
                    lr=learning_rate, betas=betas)
            """,
        # The notebook's numbers written in: learning_rate and betas are ignored.
        "hardcoded_lr_and_betas": variant("configure_optimizer", ("lr=learning_rate, betas=betas)",
                                                                  "lr=6e-4, betas=(0.9, 0.95))")),
        # betas left out: Adam's default (0.9, 0.999) instead of the ones asked for.
        "ignores_betas": variant("configure_optimizer", ("lr=learning_rate, betas=betas)", "lr=learning_rate)")),
        # The signature's arguments in another order than the callers use: lr and weight decay swap.
        "arguments_swapped": variant("configure_optimizer", (
            "def configure_optimizer(model: torch.nn.Module, weight_decay: float, learning_rate: float,",
            "def configure_optimizer(model: torch.nn.Module, learning_rate: float, weight_decay: float,")),
        # `> 2` for "matrices": no GPT-2 parameter has more than two dimensions, so none decays.
        "dim_greater_than_2": variant("configure_optimizer", ("p.dim() >= 2", "p.dim() > 2"),
                                      ("p.dim() < 2", "p.dim() <= 2")),
        # Every parameter, the frozen ones (requires_grad False) too.
        "includes_frozen": variant("configure_optimizer", (
            "[p for p in model.parameters() if p.requires_grad]", "list(model.parameters())")),
        # Only the weight matrices of the Linear layers: embeddings and LayerNorms left out.
        "only_linear_weights": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                decay = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
                no_decay = [m.bias for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None]
                return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                          {"params": no_decay, "weight_decay": 0.0}],
                                         lr=learning_rate, betas=betas)
            """,
    },
    "get_lr": {
        # step / warmup_steps: the first step has learning rate 0 and is wasted.
        "zero_at_step_0": variant("get_lr", (_WARMUP, "return max_lr * step / warmup_steps")),
        # Cosine from max_lr down to 0; min_lr only used after max_steps.
        "cosine_to_zero": variant("get_lr", (_COSINE, "0.5 * (1.0 + math.cos(math.pi * progress)) * max_lr")),
        # No floor: past max_steps the cosine climbs back up.
        "no_floor": variant("get_lr", ("    if step >= max_steps:\n        return min_lr\n", "")),
        # Progress counted from step 0: the cosine has already started when warm-up ends.
        "cosine_from_step_0": variant("get_lr",
            ("progress = (step - warmup_steps) / (max_steps - warmup_steps)",
             "progress = step / max_steps")),
        # A straight line from max_lr to min_lr.
        "linear_decay": variant("get_lr", (_COSINE, "max_lr - progress * (max_lr - min_lr)")),
        # Off by one: warm-up over warmup_steps + 1 steps, reaching max_lr a step late.
        "warmup_one_step_late": variant("get_lr", ("if step < warmup_steps:", "if step <= warmup_steps:"),
                                        (_WARMUP, "return max_lr * (step + 1) / (warmup_steps + 1)")),
        # Integer division in the warm-up: 0 until the last warm-up step.
        "integer_division": variant("get_lr", (_WARMUP, "return max_lr * ((step + 1) // warmup_steps)")),
        # The cosine taken with torch: every decay step returns a 0-d tensor.
        "returns_tensor": variant("get_lr", ("math.cos(math.pi * progress)",
                                             "torch.cos(torch.tensor(math.pi * progress))")),
        # progress divided by max_steps: the cosine has not reached min_lr at max_steps.
        "progress_over_max_steps": variant("get_lr", (
            "progress = (step - warmup_steps) / (max_steps - warmup_steps)",
            "progress = (step - warmup_steps) / max_steps")),
        # min_lr and max_lr swapped in the cosine: it climbs from min_lr to max_lr.
        "min_and_max_swapped": variant("get_lr", (_COSINE,
                                                  "max_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (min_lr - max_lr)")),
        # cos without the 0.5 * (1 + ...): starts at max_lr but dips below min_lr.
        "missing_half_one_plus": variant("get_lr", ("0.5 * (1.0 + math.cos(math.pi * progress))",
                                                    "math.cos(math.pi * progress)")),
    },
    "train_step": {
        # No zero_grad: each step adds its gradients to the previous ones.
        "no_zero_grad": variant("train_step", ("    optimizer.zero_grad(set_to_none=True)\n", "")),
        # zero_grad between backward and step: the gradients are gone before the update.
        "zero_grad_before_step": variant("train_step",
            ("    optimizer.zero_grad(set_to_none=True)\n", ""),
            ("    optimizer.step()", "    optimizer.zero_grad()\n    optimizer.step()")),
        # grad_clip is ignored.
        "no_clipping": variant("train_step", (_CLIP, "")),
        # Clips after the step: the update has already used the unclipped gradients.
        "clip_after_step": variant("train_step", (_CLIP, ""),
                                   ("    optimizer.step()\n", "    optimizer.step()\n" + _CLIP)),
        # Clips each gradient value instead of the total norm.
        "clip_grad_value": variant("train_step", ("clip_grad_norm_", "clip_grad_value_")),
        # Returns the loss tensor (keeping the graph alive) instead of a float.
        "returns_tensor": variant("train_step", ("return loss.item()", "return loss")),
        # Reports the loss of a second forward after the step: not the loss it trained on.
        "loss_after_step": variant("train_step", ("    return loss.item()", (
            "    with torch.no_grad():\n        _, new_loss = model(x, y)\n    return new_loss.item()"))),
        # Always clips to 1.0, whatever grad_clip says (and also when it is None).
        "hardcoded_clip": variant("train_step",
                                  (_CLIP, "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n")),
        # Forgets that grad_clip may be None.
        "clips_with_none": variant("train_step",
            (_CLIP, "    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)\n")),
        # Clips each parameter's gradient norm on its own instead of the total norm.
        "clip_each_parameter": variant("train_step", (
            "        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)",
            "        for p in model.parameters():\n"
            "            torch.nn.utils.clip_grad_norm_(p, grad_clip)")),
        # Clips before backward: there are no gradients yet, so nothing is clipped.
        "clip_before_backward": variant("train_step", (_CLIP, ""),
                                        ("    loss.backward()\n", _CLIP + "    loss.backward()\n")),
        # Steps before backward: each step uses no gradients (zeroed at the start), nothing moves.
        "step_before_backward": variant("train_step", ("    loss.backward()\n", ""),
                                        ("    optimizer.step()\n", "    optimizer.step()\n    loss.backward()\n")),
        # No model.train(): a model left in eval mode by an evaluation trains without dropout.
        "no_model_train": variant("train_step", ("    model.train()\n", "")),
        # Forgets optimizer.step(): gradients computed, nothing learned.
        "no_step": variant("train_step", ("    optimizer.step()\n", "")),
    },
    "estimate_loss": {
        # No model.eval(): dropout stays on while measuring.
        "no_eval": variant("estimate_loss", ("    model.eval()\n", "")),
        # No torch.no_grad(): every forward builds a graph for nothing.
        "no_no_grad": variant("estimate_loss", ("@torch.no_grad()\n", "")),
        # Leaves the model in eval mode: the training that follows runs without dropout.
        "mode_not_restored": variant("estimate_loss", ("    was_training = model.training\n", ""),
                                     ("    model.train(was_training)\n", "")),
        # Returns the sum of the batch losses.
        "returns_sum": variant("estimate_loss", ("return sum(losses) / len(losses)", "return sum(losses)")),
        # Overwrites the loss each iteration and returns the last one.
        "returns_last": variant("estimate_loss", ("return sum(losses) / len(losses)", "return loss.item()")),
        # nanoGPT's loop without the final .item(): a 0-d tensor.
        "returns_tensor": variant("estimate_loss",
                                  ("return sum(losses) / len(losses)", "return torch.tensor(losses).mean()")),
        # The inputs passed as targets too: the loss of predicting the current token.
        "targets_are_inputs": variant("estimate_loss", ("_, loss = model(x, y)", "_, loss = model(x, x)")),
        # Off by one: range(1, eval_iters) runs eval_iters - 1 batches.
        "one_batch_short": variant("estimate_loss", ("range(eval_iters)", "range(1, eval_iters)"),
                                   ("sum(losses) / len(losses)", "sum(losses) / eval_iters")),
        # One batch drawn before the loop and measured eval_iters times: no better an estimate
        # than one batch.
        "same_batch_every_time": variant("estimate_loss", (
            "    for _ in range(eval_iters):\n"
            "        x, y = get_batch(data, block_size, batch_size, generator=generator)\n",
            "    x, y = get_batch(data, block_size, batch_size, generator=generator)\n"
            "    for _ in range(eval_iters):\n")),
        # Always the first batch_size * block_size tokens of the data.
        "batch_from_start_of_data": variant("estimate_loss", (
            "        x, y = get_batch(data, block_size, batch_size, generator=generator)\n",
            "        n = batch_size * block_size\n"
            "        x = data[:n].view(batch_size, block_size)\n"
            "        y = data[1:n + 1].view(batch_size, block_size)\n")),
        # Returns the list of batch losses instead of their mean.
        "returns_list": variant("estimate_loss", ("return sum(losses) / len(losses)", "return losses")),
        # torch.no_grad() around get_batch only: the forward passes still record a graph.
        "no_grad_around_batch_only": variant("estimate_loss", ("@torch.no_grad()\n", ""), (
            "        x, y = get_batch(data, block_size, batch_size, generator=generator)\n",
            "        with torch.no_grad():\n"
            "            x, y = get_batch(data, block_size, batch_size, generator=generator)\n")),
        # The generator is not passed on: the batches come from the global RNG, so the
        # estimate cannot be reproduced (and it shifts the training batches' random stream).
        "ignores_generator": variant("estimate_loss", (", generator=generator)", ")")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "lm_loss": {
        "sum_reduction": ("mean over every position", "not the sum"),
        "mean_of_sequence_sums": ("mean over every position", "not summed over the sequence"),
        "shifted_twice": ("cross-entropy", "without shifting again"),
        "softmax_then_cross_entropy": ("cross-entropy", "do not apply it before"),
        "naive_log_softmax": ("large logits", "underflows to log(0)"),
        "nll_of_probabilities": ("cross-entropy", "not the probability itself"),
        "returns_item": ("a tensor with gradients", "should be a tensor"),
        "permute_then_reshape": ("cross-entropy", "without permuting or transposing"),
        "view_by_T": ("cross-entropy", "one row of logits per target"),
        "no_reshape": ("cross-entropy", "reads dimension 1 as the classes"),
        "detached": ("a tensor with gradients", ".detach()"),
        "ignores_id_0": ("cross-entropy", "ignore_index=0"),
        "log_softmax_over_dim_1": ("cross-entropy", "ran over dimension 1"),
        "subtracts_max_in_place": ("inputs unchanged", "in place"),
    },
    "configure_optimizer": {
        "decay_everything": ("no decay on the rest", "every parameter gets weight decay"),
        "no_groups": ("decay on matrices", "adamw's default"),
        "bias_by_name_only": ("no decay on the rest", "not by the name 'bias'"),
        "adam_not_adamw": ("adamw", "adam adds weight decay to the gradient"),
        "no_decay_group_default": ("no decay on the rest", "adamw's default is 0.01"),
        "inverted_condition": ("decay on matrices", "the two groups are swapped"),
        "tied_weight_twice": ("each parameter once", "listed twice"),
        "remove_duplicate_false": ("each parameter once", "listed twice"),
        "mingpt_embeddings_not_decayed": ("decay on matrices", "the embeddings"),
        "hardcoded_lr_and_betas": ("lr and betas", "the learning_rate argument"),
        "only_linear_weights": ("each parameter once", "in no group"),
        "ignores_betas": ("lr and betas", "adam's default"),
        "arguments_swapped": ("lr and betas", "that is weight_decay"),
        "includes_frozen": ("trainable only", "requires_grad false"),
        "dim_greater_than_2": ("decay on matrices", "no parameter gets weight decay"),
    },
    "get_lr": {
        "zero_at_step_0": ("warm-up", "0 at step 0"),
        "cosine_to_zero": ("cosine decay", "the cosine decays to 0"),
        "no_floor": ("min_lr after max_steps", "after max_steps the learning rate should stay at min_lr"),
        "cosine_from_step_0": ("cosine decay", "start where the warm-up ends"),
        "linear_decay": ("cosine decay", "not a straight line"),
        "warmup_one_step_late": ("warm-up", "one step too many"),
        "integer_division": ("warm-up", "integer division"),
        "missing_half_one_plus": ("cosine decay", "cos alone"),
        "returns_tensor": ("a float", "should return a python float"),
        "progress_over_max_steps": ("cosine decay", "progress should run from 0 at warmup_steps"),
        "min_and_max_swapped": ("cosine decay", "go down from max_lr to min_lr"),
    },
    "train_step": {
        "no_zero_grad": ("zeroed gradients", "the gradients are not zeroed"),
        "zero_grad_before_step": ("zeroed gradients", "not between backward and step"),
        "no_clipping": ("norm clipping", "the update used unclipped gradients"),
        "clip_after_step": ("norm clipping", "after the step has no effect"),
        "clip_grad_value": ("norm clipping", "not each value"),
        "returns_tensor": ("the loss as a float", "python float"),
        "loss_after_step": ("the loss as a float", "loss of this step's forward pass"),
        "hardcoded_clip": ("norm clipping", "but grad_clip is"),
        "clips_with_none": ("norm clipping", "clip only when grad_clip is not none"),
        "clip_each_parameter": ("norm clipping", "not each parameter's gradient on its own"),
        "no_step": ("one step", "optimizer.step()"),
        "clip_before_backward": ("norm clipping", "before backward there is nothing to clip"),
        "step_before_backward": ("one step", "call loss.backward() and then optimizer.step()"),
        "no_model_train": ("training mode", "model.train()"),
    },
    "estimate_loss": {
        "no_eval": ("eval mode", "call model.eval()"),
        "no_no_grad": ("no gradients", "torch.no_grad()"),
        "mode_not_restored": ("mode restored", "left in eval mode"),
        "returns_sum": ("the mean as a float", "sum of the batch losses"),
        "returns_last": ("the mean as a float", "last batch's loss"),
        "returns_tensor": ("the mean as a float", "not a tensor"),
        "targets_are_inputs": ("the mean as a float", "the targets are y"),
        "one_batch_short": ("eval_iters batches", "it ran 4 times"),
        "same_batch_every_time": ("eval_iters batches", "every batch was the same"),
        "batch_from_start_of_data": ("eval_iters batches", "every batch was the same"),
        "ignores_generator": ("eval_iters batches", "pass generator=generator on"),
        "returns_list": ("the mean as a float", "should return a float, got list"),
        "no_grad_around_batch_only": ("no gradients", "gradients were being recorded"),
    },
}

VALID = {
    "lm_loss": {
        # cross_entropy takes the classes in dim 1: (B, V, T) against (B, T).
        "transpose_classes": variant("lm_loss", ("logits.reshape(B * T, V), targets.reshape(B * T)",
                                                 "logits.transpose(1, 2), targets")),
        # log_softmax, then the target's log-probability picked with gather.
        "log_softmax_gather": """
            def lm_loss(logits, targets):
                log_probs = F.log_softmax(logits, dim=-1)
                picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                return -picked.mean()
            """,
        # flatten(0, 1) instead of view/reshape.
        "flatten": variant("lm_loss", ("logits.reshape(B * T, V), targets.reshape(B * T)",
                                       "logits.flatten(0, 1), targets.flatten()")),
        # nll_loss on log-probabilities is exactly cross_entropy.
        "nll_of_log_softmax": """
            def lm_loss(logits, targets):
                V = logits.size(-1)
                return F.nll_loss(F.log_softmax(logits.view(-1, V), dim=-1), targets.view(-1))
            """,
        # nanoGPT's line.
        "nanogpt_view": variant("lm_loss", ("logits.reshape(B * T, V), targets.reshape(B * T)",
                                            "logits.view(-1, logits.size(-1)), targets.view(-1)")),
        # The mean per sequence, then over the batch: every sequence has T positions, so it is the
        # same mean.
        "mean_of_sequence_means": """
            def lm_loss(logits, targets):
                per_token = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T)
                return per_token.mean(dim=1).mean()
            """,
        # By hand, stably: logsumexp minus the target's logit.
        "logsumexp_by_hand": """
            def lm_loss(logits, targets):
                target_logits = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
                return (torch.logsumexp(logits, dim=-1) - target_logits).mean()
            """,
    },
    "configure_optimizer": {
        # nanoGPT's version: a name -> parameter dict, split by dimension, foreach/fused chosen
        # by device.
        "nanogpt_dims": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                param_dict = {pn: p for pn, p in model.named_parameters()}
                param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
                decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
                nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
                optim_groups = [
                    {"params": decay_params, "weight_decay": weight_decay},
                    {"params": nodecay_params, "weight_decay": 0.0},
                ]
                use_fused = all(p.is_cuda for p in param_dict.values())
                return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas, fused=use_fused)
            """,
        # By GPT-2's names: biases and the ln_1 / ln_2 / ln_f parameters get no decay.
        "by_gpt_names": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                decay, no_decay = [], []
                for name, p in model.named_parameters():
                    if not p.requires_grad:
                        continue
                    if name.endswith(".bias") or ".ln_" in name:
                        no_decay.append(p)
                    else:
                        decay.append(p)
                return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                          {"params": no_decay, "weight_decay": 0.0}],
                                         lr=learning_rate, betas=betas)
            """,
        # Every setting spelled out in each group; foreach=False.
        "full_param_dicts": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                params = [p for p in model.parameters() if p.requires_grad]
                groups = [
                    {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay,
                     "lr": learning_rate, "betas": betas},
                    {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0,
                     "lr": learning_rate, "betas": betas},
                ]
                return torch.optim.AdamW(groups, foreach=False)
            """,
        # weight_decay as AdamW's default (the decay group inherits it), 0.0 said explicitly
        # for the other group, which comes first.
        "default_weight_decay": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                trainable = [p for p in model.parameters() if p.requires_grad]
                no_decay = [p for p in trainable if p.dim() == 1]
                decay = [p for p in trainable if p.dim() != 1]
                return torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay}],
                                         lr=learning_rate, betas=betas, weight_decay=weight_decay)
            """,
        # One group given to the constructor, the other added afterwards: add_param_group fills in
        # lr and betas from the optimiser's defaults.
        "add_param_group": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                params = list(filter(lambda p: p.requires_grad, model.parameters()))
                optimizer = torch.optim.AdamW([p for p in params if p.dim() >= 2], lr=learning_rate,
                                              betas=betas, weight_decay=weight_decay)
                optimizer.add_param_group({"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0})
                return optimizer
            """,
        # Walks the modules like the minGPT recipe, but remembers what it has seen (the tied
        # matrix once) and decays every matrix, embeddings included.
        "modules_with_seen_set": """
            def configure_optimizer(model, weight_decay, learning_rate, betas):
                seen = set()
                decay, no_decay = [], []
                for module in model.modules():
                    for p in module.parameters(recurse=False):
                        if id(p) in seen or not p.requires_grad:
                            continue
                        seen.add(id(p))
                        if isinstance(module, (nn.Linear, nn.Embedding)) and p.dim() == 2:
                            decay.append(p)
                        else:
                            no_decay.append(p)
                return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                          {"params": no_decay, "weight_decay": 0.0}],
                                         lr=learning_rate, betas=tuple(betas))
            """,
    },
    "get_lr": {
        # `step > max_steps`: at max_steps the cosine gives min_lr anyway.
        "strict_greater_at_max_steps": variant("get_lr", ("if step >= max_steps:", "if step > max_steps:")),
        # build-nanogpt's coefficient form, with its assertions.
        "coefficient_form": """
            def get_lr(step, max_lr, min_lr, warmup_steps, max_steps):
                if step < warmup_steps:
                    return max_lr * (step + 1) / warmup_steps
                if step > max_steps:
                    return min_lr
                decay_ratio = (step - warmup_steps) / (max_steps - warmup_steps)
                assert 0 <= decay_ratio <= 1
                coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
                return min_lr + coeff * (max_lr - min_lr)
            """,
        # NumPy's cos and pi, the step clamped to max_steps instead of a third branch.
        "numpy_clamped": """
            import numpy as np

            def get_lr(step, max_lr, min_lr, warmup_steps, max_steps):
                if step < warmup_steps:
                    return max_lr * (step + 1) / warmup_steps
                step = min(step, max_steps)
                progress = (step - warmup_steps) / (max_steps - warmup_steps)
                return float(min_lr + (max_lr - min_lr) * (1 + np.cos(np.pi * progress)) / 2)
            """,
        # if/elif/else with a named warm-up fraction.
        "elif_chain": """
            def get_lr(step, max_lr, min_lr, warmup_steps, max_steps):
                if step < warmup_steps:
                    fraction = (step + 1) / warmup_steps
                    lr = fraction * max_lr
                elif step >= max_steps:
                    lr = min_lr
                else:
                    t = (step - warmup_steps) / (max_steps - warmup_steps)
                    lr = min_lr + (max_lr - min_lr) * 0.5 * (1 + math.cos(t * math.pi))
                return lr
            """,
        # The cosine taken with torch (float32 by default), returned as a float: right to about
        # 1e-7 relative, float32 rounding.
        "torch_cos_float32": """
            def get_lr(step, max_lr, min_lr, warmup_steps, max_steps):
                if step < warmup_steps:
                    return max_lr * (step + 1) / warmup_steps
                if step >= max_steps:
                    return min_lr
                progress = torch.tensor((step - warmup_steps) / (max_steps - warmup_steps))
                coeff = 0.5 * (1 + torch.cos(math.pi * progress))
                return min_lr + coeff.item() * (max_lr - min_lr)
            """,
    },
    "train_step": {
        # zero_grad(set_to_none=False): zeros instead of None, the same update.
        "zero_grad_to_zeros": variant("train_step", ("set_to_none=True", "set_to_none=False")),
        # model.zero_grad() clears the same gradients as the optimiser's.
        "model_zero_grad": variant("train_step",
                                   ("optimizer.zero_grad(set_to_none=True)", "model.zero_grad()")),
        # Zeroes at the end of the step, ready for the next one.
        "zero_grad_at_end": variant("train_step", ("    optimizer.zero_grad(set_to_none=True)\n", ""), (
            "    optimizer.step()\n", "    optimizer.step()\n    optimizer.zero_grad(set_to_none=True)\n")),
        # The loss computed with the notebook's own lm_loss from the logits.
        "lm_loss_on_logits": variant("train_step",
            ("_, loss = model(x, y)", "logits, _ = model(x)\n    loss = lm_loss(logits, y)")),
        # `if grad_clip:` (0 would mean no clipping too); float() instead of .item().
        "truthy_grad_clip": """
            def train_step(model, x, y, optimizer, grad_clip):
                model.train()
                optimizer.zero_grad()
                _, loss = model(x, y)
                loss.backward()
                if grad_clip:
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=grad_clip)
                optimizer.step()
                return float(loss.detach())
            """,
        # Clips the optimiser's own parameters (the same tensors as the model's).
        "clip_param_groups": variant("train_step", (
            "clip_grad_norm_(model.parameters(), grad_clip)",
            'clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)')),
        # Sets every .grad to None by hand, loss detached before .item().
        "grads_to_none_by_hand": """
            def train_step(model, x, y, optimizer, grad_clip):
                model.train(True)
                for p in model.parameters():
                    p.grad = None
                _, loss = model(x, y)
                loss.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(list(model.parameters()), grad_clip)
                optimizer.step()
                return loss.detach().item()
            """,
    },
    "estimate_loss": {
        # torch.inference_mode() instead of torch.no_grad().
        "inference_mode": variant("estimate_loss", ("@torch.no_grad()", "@torch.inference_mode()")),
        # nanoGPT's tensor of losses, its mean as a float; always back to train().
        "nanogpt_tensor_mean": """
            @torch.no_grad()
            def estimate_loss(model, data, block_size, batch_size, eval_iters, generator=None):
                model.eval()
                losses = torch.zeros(eval_iters)
                for k in range(eval_iters):
                    X, Y = get_batch(data, block_size, batch_size, generator=generator)
                    logits, loss = model(X, Y)
                    losses[k] = loss.item()
                model.train()
                return losses.mean().item()
            """,
        # try/finally, so the mode comes back even if a batch fails; losses stacked as tensors.
        "try_finally_stack": """
            def estimate_loss(model, data, block_size, batch_size, eval_iters, generator=None):
                was_training = model.training
                model.eval()
                try:
                    with torch.no_grad():
                        losses = [model(*get_batch(data, block_size, batch_size, generator=generator))[1]
                                  for _ in range(eval_iters)]
                    return torch.stack(losses).mean().item()
                finally:
                    if was_training:
                        model.train()
            """,
        # torch.set_grad_enabled(False) as a context manager, and statistics.mean.
        "set_grad_enabled_statistics_mean": """
            import statistics

            def estimate_loss(model, data, block_size, batch_size, eval_iters, generator=None):
                was_training = model.training
                model.eval()
                with torch.set_grad_enabled(False):
                    losses = []
                    for _ in range(eval_iters):
                        x, y = get_batch(data, block_size, batch_size, generator=generator)
                        losses.append(model(x, y)[1].item())
                model.train(was_training)
                return statistics.mean(losses)
            """,
        # A running total divided at the end, with the notebook's lm_loss on the logits.
        "running_total_lm_loss": """
            @torch.no_grad()
            def estimate_loss(model, data, block_size, batch_size, eval_iters, generator=None):
                mode = model.training
                model.eval()
                total = 0.0
                for _ in range(eval_iters):
                    xb, yb = get_batch(data, block_size, batch_size, generator=generator)
                    logits, _ = model(xb)
                    total += lm_loss(logits, yb).item()
                model.train(mode)
                return total / eval_iters
            """,
    },
}


WRONG, VALID = map(_tidy, (WRONG, VALID))
