"""Notebook 05's exercises (LayerNorm, gelu, MLP): learner mistakes and valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F``, ``math`` and the finished pieces of
``gpt2course.reference`` other than the exercise itself (so an MLP cell may call ``gelu``, as the
notebook's would once the learner has written it).

Module exercises are checked by building the class, loading parameter values by GPT-2's names
(``weight``/``bias``, ``c_fc.*``/``c_proj.*``), running forward and backward and comparing with
float64 oracles; so a correct computation under other parameter names is a wrong answer here.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "05_layernorm_and_mlp.ipynb"

# The variance line of the reference LayerNorm, with its comment.
_VAR = "var = x.var(dim=-1, keepdim=True, unbiased=False)  # population variance, as GPT-2"

WRONG = {
    "LayerNorm": {
        # torch.var's default is the sample variance (divides by n - 1); GPT-2 divides by n.
        "unbiased_variance": variant("LayerNorm", (_VAR, "var = x.var(dim=-1, keepdim=True)")),
        # eps added to the standard deviation instead of to the variance.
        "eps_outside_sqrt": variant("LayerNorm",
                                    ("torch.sqrt(var + self.eps)", "(torch.sqrt(var) + self.eps)")),
        # The tutorial classic (x - mean) / (x.std(-1) + eps): sample std *and* eps outside.
        "std_default_plus_eps": variant("LayerNorm", (_VAR, "std = x.std(-1, keepdim=True)"),
                                        ("torch.sqrt(var + self.eps)", "(std + self.eps)")),
        # Statistics over every element of the tensor instead of each vector.
        "normalise_whole_tensor": variant("LayerNorm", ("x.mean(dim=-1, keepdim=True)", "x.mean()"),
                                          (_VAR, "var = x.var(unbiased=False)")),
        # Batch-norm style: statistics over the first axis (across the batch).
        "normalise_over_dim0": variant("LayerNorm", ("x.mean(dim=-1,", "x.mean(dim=0,"),
                                       ("x.var(dim=-1,", "x.var(dim=0,")),
        # dim=1 is the last axis of a (B, C) test tensor but the time axis of (B, T, C).
        "dim1_hardcoded": variant("LayerNorm", ("x.mean(dim=-1,", "x.mean(dim=1,"),
                                  ("x.var(dim=-1,", "x.var(dim=1,")),
        # mean/var without keepdim: (B, T) does not broadcast against (B, T, C).
        "no_keepdim": variant("LayerNorm",
            ("x.mean(dim=-1, keepdim=True)", "x.mean(dim=-1)"),
            ("x.var(dim=-1, keepdim=True, unbiased=False)", "x.var(dim=-1, unbiased=False)")),
        # Only normalises: weight and bias are created but never used.
        "weight_bias_not_applied": variant("LayerNorm", (" * self.weight + self.bias", "")),
        # weight and bias swapped in the affine step.
        "weight_bias_swapped": variant("LayerNorm",
                                       ("* self.weight + self.bias", "* self.bias + self.weight")),
        # weight starts at zeros: a new LayerNorm outputs only the bias (all zeros).
        "weight_init_zeros": variant("LayerNorm", ("torch.ones(n_embd)", "torch.zeros(n_embd)")),
        # Random initial weight and bias, as for a Linear layer.
        "random_init": variant("LayerNorm", ("torch.ones(n_embd)", "torch.randn(n_embd)"),
                               ("torch.zeros(n_embd)", "torch.randn(n_embd)")),
        # BERT's default eps (1e-12) instead of GPT-2's 1e-5.
        "default_eps_1e-12": variant("LayerNorm", ("eps: float = 1e-5", "eps: float = 1e-12")),
        # eps=1e-6 (T5 / ViT style) instead of 1e-5: only visible on nearly constant vectors.
        "default_eps_1e-6": variant("LayerNorm", ("eps: float = 1e-5", "eps: float = 1e-6")),
        # Accepts eps but always uses 1e-5 in forward.
        "ignores_eps_argument": variant("LayerNorm", ("        self.eps = eps\n", ""),
                                        ("var + self.eps", "var + 1e-5")),
        # Divides by the variance instead of the standard deviation.
        "divide_by_variance": variant("LayerNorm", ("torch.sqrt(var + self.eps)", "(var + self.eps)")),
        # RMSNorm: scales by the root mean square but never subtracts the mean.
        "rmsnorm_no_centering": """
            import torch
            from torch import nn

            class LayerNorm(nn.Module):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__()
                    self.eps = eps
                    self.weight = nn.Parameter(torch.ones(n_embd))
                    self.bias = nn.Parameter(torch.zeros(n_embd))

                def forward(self, x):
                    rms = torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + self.eps)
                    return x / rms * self.weight + self.bias
            """,
        # Plain tensors, not nn.Parameter: the module has no parameters to load or train.
        "plain_tensors_not_parameters": variant("LayerNorm",
                                                ("nn.Parameter(torch.ones(n_embd))", "torch.ones(n_embd)"),
                                                ("nn.Parameter(torch.zeros(n_embd))", "torch.zeros(n_embd)")),
        # The paper's names gamma and beta: GPT-2's weight and bias cannot load.
        "named_gamma_beta": variant("LayerNorm", ("self.weight =", "self.gamma ="),
                                    ("self.bias =", "self.beta ="),
                                    ("* self.weight + self.bias", "* self.gamma + self.beta")),
        # Wraps nn.LayerNorm as a sub-module: the parameters are ln.weight and ln.bias.
        "wraps_nn_layernorm": """
            import torch
            from torch import nn

            class LayerNorm(nn.Module):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__()
                    self.ln = nn.LayerNorm(n_embd, eps=eps)

                def forward(self, x):
                    return self.ln(x)
            """,
        # GPT-2 small's width hard-coded: the parameters have shape (768,) whatever n_embd is.
        "hardcoded_768": variant("LayerNorm", ("torch.ones(n_embd)", "torch.ones(768)"),
                                 ("torch.zeros(n_embd)", "torch.zeros(768)")),
        # Right values, but centres the caller's tensor in place (x -= mean).
        "inplace_subtract_mean": variant("LayerNorm", ("        return (x - mean) / ",
                                                       "        x -= mean\n        return x / ")),
        # Statistics computed under no_grad "because they are not parameters": the values are
        # right but the gradient with respect to x misses the terms through mean and var.
        "statistics_under_no_grad": variant("LayerNorm", (
            "        mean = x.mean(dim=-1, keepdim=True)\n        var = ",
            "        with torch.no_grad():\n"
            "            mean = x.mean(dim=-1, keepdim=True)\n"
            "            var = ")),
        # Uses weight.data and bias.data: right values, but no gradient reaches the parameters.
        "parameters_through_data": variant("LayerNorm", ("* self.weight + self.bias",
                                                         "* self.weight.data + self.bias.data")),
        # torch.var_mean returns (var, mean); unpacked the other way round, the mean is used as
        # the variance (its root is NaN where the mean is negative).
        "var_mean_unpacked_swapped": variant("LayerNorm", (
            "        mean = x.mean(dim=-1, keepdim=True)\n        " + _VAR,
            "        mean, var = torch.var_mean(x, dim=-1, keepdim=True, unbiased=False)")),
        # torch.var_mean without unbiased=False: the sample variance.
        "var_mean_default_unbiased": variant("LayerNorm", (
            "        mean = x.mean(dim=-1, keepdim=True)\n        " + _VAR,
            "        var, mean = torch.var_mean(x, dim=-1, keepdim=True)")),
        # eps forgotten: a constant vector gives 0 / 0.
        "eps_forgotten": variant("LayerNorm", ("torch.sqrt(var + self.eps)", "torch.sqrt(var)")),
    },
    "gelu": {
        # The exact GELU, x * Phi(x) with erf; GPT-2 uses the tanh approximation.
        "exact_erf": """
            import math
            import torch

            def gelu(x):
                return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
            """,
        # F.gelu's default is the exact (erf) form.
        "functional_gelu_default": """
            import torch.nn.functional as F

            def gelu(x):
                return F.gelu(x)
            """,
        # nn.GELU() without approximate="tanh" is the exact form too.
        "nn_gelu_default": """
            from torch import nn

            def gelu(x):
                return nn.GELU()(x)
            """,
        # The sigmoid approximation x * sigmoid(1.702 x).
        "sigmoid_approximation": """
            import torch

            def gelu(x):
                return x * torch.sigmoid(1.702 * x)
            """,
        # ReLU.
        "relu": """
            import torch

            def gelu(x):
                return torch.relu(x)
            """,
        # The factor 0.5 forgotten.
        "missing_half": variant("gelu", ("0.5 * x * ", "x * ")),
        # x ** 2 instead of x ** 3 inside tanh.
        "square_instead_of_cube": variant("gelu", ("x**3", "x**2")),
        # sqrt(2 * pi) instead of sqrt(2 / pi).
        "sqrt_two_pi": variant("gelu", ("2.0 / math.pi", "2.0 * math.pi")),
        # The square root forgotten: 2 / pi instead of sqrt(2 / pi).
        "missing_sqrt": variant("gelu", ("math.sqrt(2.0 / math.pi)", "2.0 / math.pi")),
        # A typo in the constant (0.04715 instead of 0.044715).
        "constant_typo": variant("gelu", ("0.044715", "0.04715")),
        # A closing parenthesis too early: 0.5 * x * 1 + tanh(...).
        "misplaced_parenthesis": variant("gelu", ("(1.0 + ", "(1.0) + "), ("x**3)))", "x**3))")),
        # The sigmoid identity without its factor 2: sigmoid(z), not sigmoid(2 z), matches tanh.
        "sigmoid_form_missing_factor_2": variant("gelu",
                                                 ("0.5 * x * (1.0 + torch.tanh(", "x * torch.sigmoid("),
                                                 ("x**3)))", "x**3))")),
        # tanh written out with exp: exp(2z) overflows to inf for large x, and inf / inf is NaN
        # (the "large values" cases always hold x = 20 or more).
        "tanh_by_hand_overflows": """
            import math
            import torch

            def gelu(x):
                z = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
                e = torch.exp(2.0 * z)
                return 0.5 * x * (1.0 + (e - 1.0) / (e + 1.0))
            """,
        # Right values, but halves the caller's tensor in place.
        "inplace_mul": """
            import math
            import torch

            def gelu(x):
                t = torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3))
                x *= 0.5
                return x * (1.0 + t)
            """,
        # math.tanh works on Python numbers (and one-element tensors) only.
        "math_tanh": variant("gelu", ("torch.tanh(", "math.tanh(")),
        # A loop over the values: works for a 1-D tensor only (x.tolist() of a 2-D one is nested).
        "python_loop_over_values": """
            import math
            import torch

            def gelu(x):
                c = math.sqrt(2.0 / math.pi)
                return torch.tensor([0.5 * v * (1.0 + math.tanh(c * (v + 0.044715 * v ** 3)))
                                     for v in x.tolist()])
            """,
        # Builds the inner term in place on x itself (x.add_ / x.mul_).
        "inplace_inner_term": """
            import math
            import torch

            def gelu(x):
                y = 0.5 * x
                inner = x.mul_(1.0 + 0.044715 * x * x).mul_(math.sqrt(2.0 / math.pi))
                return y * (1.0 + torch.tanh(inner))
            """,
    },
    "MLP": {
        # ReLU between the layers, as in the original Transformer.
        "relu_activation": variant("MLP", ("gelu(", "F.relu(")),
        # F.gelu's default is the exact (erf) GELU.
        "exact_gelu": variant("MLP", ("gelu(", "F.gelu(")),
        # nn.GELU() as a sub-module: no parameters (so the names still match), but exact form.
        "nn_gelu_module_default": variant("MLP",
            ("        self.c_proj =", "        self.gelu = nn.GELU()\n        self.c_proj ="),
            ("self.c_proj(gelu(", "self.c_proj(self.gelu(")),
        # No activation at all: two linear layers collapse into one.
        "no_activation": variant("MLP", ("gelu(self.c_fc(x))", "self.c_fc(x)")),
        # torch.tanh as the activation ("the tanh form" misread).
        "tanh_activation": variant("MLP", ("gelu(", "torch.tanh(")),
        # GELU after c_proj instead of between the layers.
        "activation_after_c_proj": variant("MLP",
            ("self.c_proj(gelu(self.c_fc(x)))", "gelu(self.c_proj(self.c_fc(x)))")),
        # GELU on the input, before c_fc.
        "activation_before_c_fc": variant("MLP",
            ("self.c_proj(gelu(self.c_fc(x)))", "self.c_proj(self.c_fc(gelu(x)))")),
        # Hidden size 2 * n_embd instead of 4 * n_embd.
        "hidden_2x": variant("MLP", ("nn.Linear(n_embd, 4 * n_embd)", "nn.Linear(n_embd, 2 * n_embd)"),
                             ("nn.Linear(4 * n_embd, n_embd)", "nn.Linear(2 * n_embd, n_embd)")),
        # No expansion: hidden size n_embd.
        "hidden_1x": variant("MLP", ("nn.Linear(n_embd, 4 * n_embd)", "nn.Linear(n_embd, n_embd)"),
                             ("nn.Linear(4 * n_embd, n_embd)", "nn.Linear(n_embd, n_embd)")),
        # nn.Linear's arguments read as (out, in): the layers have transposed shapes.
        "linear_arguments_reversed": variant("MLP",
            ("nn.Linear(4 * n_embd, n_embd)", "nn.Linear(n_embd, 4 * n_embd)"),
            ("self.c_fc = nn.Linear(n_embd, 4 * n_embd)",
             "self.c_fc = nn.Linear(4 * n_embd, n_embd)")),
        # bias=False (as in some modern models): GPT-2 has c_fc.bias and c_proj.bias.
        "no_bias": variant("MLP",
                           ("nn.Linear(n_embd, 4 * n_embd)", "nn.Linear(n_embd, 4 * n_embd, bias=False)"),
                           ("nn.Linear(4 * n_embd, n_embd)", "nn.Linear(4 * n_embd, n_embd, bias=False)")),
        # An nn.Sequential attribute: right computation, but the parameters are named
        # net.0.weight, net.2.weight, ... so GPT-2's c_fc.* / c_proj.* cannot load.
        "sequential_attribute": """
            import torch
            from torch import nn

            class MLP(nn.Module):
                def __init__(self, n_embd):
                    super().__init__()
                    self.net = nn.Sequential(
                        nn.Linear(n_embd, 4 * n_embd),
                        nn.GELU(approximate="tanh"),
                        nn.Linear(4 * n_embd, n_embd),
                    )

                def forward(self, x):
                    return self.net(x)
            """,
        # Other names (fc1 / fc2): GPT-2's c_fc.* and c_proj.* cannot load.
        "named_fc1_fc2": variant("MLP", ("self.c_fc =", "self.fc1 ="), ("self.c_proj =", "self.fc2 ="),
                                 ("self.c_proj(gelu(self.c_fc(x)))", "self.fc2(gelu(self.fc1(x)))")),
        # Adds the residual inside the MLP (the block adds it; this adds x twice).
        "adds_residual": variant("MLP", ("return self.dropout(self.c_proj(", "return x + self.dropout(self.c_proj(")),
        # The hidden activations detached: no gradient reaches c_fc or the input.
        "hidden_detached": variant("MLP", ("gelu(self.c_fc(x))", "gelu(self.c_fc(x)).detach()")),
        # GELU after both layers.
        "activation_on_both_layers": variant("MLP", ("self.c_proj(gelu(self.c_fc(x)))",
                                                     "gelu(self.c_proj(gelu(self.c_fc(x))))")),
        # The sigmoid approximation of GELU as the activation.
        "sigmoid_approx_activation": variant("MLP", ("gelu(self.c_fc(x))",
                                                     "(lambda h: h * torch.sigmoid(1.702 * h))(self.c_fc(x))")),
        # The classic: F.dropout(x, p), whose training argument defaults to True, so it drops in
        # eval mode as well.
        "functional_dropout_in_eval_mode": variant("MLP",
            ("self.dropout = nn.Dropout(dropout)", "self.p = dropout"),
            ("self.dropout(self.c_proj(gelu(self.c_fc(x))))", "F.dropout(self.c_proj(gelu(self.c_fc(x))), self.p)")),
        # Dropout told training=True: on whatever the mode.
        "dropout_training_true": variant("MLP",
            ("self.dropout(self.c_proj(gelu(self.c_fc(x))))",
             "nn.functional.dropout(self.c_proj(gelu(self.c_fc(x))), p=self.dropout.p, training=True)")),
    },
}

# For each wrong answer: the rule of the exercise's text it breaks, and a fragment the failure
# message must hold (the mistake named in the learner's terms; None: a general message will do).
EXPECT = {
    "LayerNorm": {
        "unbiased_variance": ("population variance", "use the population variance"),
        "eps_outside_sqrt": ("eps inside the root", "not sqrt(var) + eps"),
        "std_default_plus_eps": ("population variance", "use the population variance"),
        "normalise_whole_tensor": ("each vector on its own", "not over the whole tensor"),
        "normalise_over_dim0": ("each vector on its own", "not over dimension 0"),
        "dim1_hardcoded": ("each vector on its own", "not over dimension 1"),
        "no_keepdim": ("each vector on its own", "without keepdim=True"),
        "weight_bias_not_applied": ("scale and shift", "weight and bias are missing from the result"),
        "weight_bias_swapped": ("scale and shift", "weight should multiply and bias should be added"),
        "weight_init_zeros": ("initial values", "weight should start as ones and bias as zeros"),
        "random_init": ("initial values", "weight should start as ones and bias as zeros"),
        "default_eps_1e-12": ("eps value", "eps is missing (or 0)"),
        "default_eps_1e-6": ("eps value", "not 1e-06"),
        "ignores_eps_argument": ("eps value", "eps is missing (or 0)"),
        "divide_by_variance": ("each vector on its own", "not by the variance"),
        "rmsnorm_no_centering": ("each vector on its own", "the mean is not subtracted"),
        "plain_tensors_not_parameters": ("parameters", "it has no parameters at all"),
        "named_gamma_beta": ("parameters", "unexpected gamma, beta"),
        "wraps_nn_layernorm": ("parameters", "unexpected ln.weight, ln.bias"),
        "hardcoded_768": ("parameters", "they have shapes (768,) and (768,)"),
        "inplace_subtract_mean": ("input unchanged", "changed its input in place"),
        "statistics_under_no_grad": ("gradients", "treats mean and var as constants"),
        "parameters_through_data": ("gradients", "no gradient reached weight, bias"),
        "var_mean_unpacked_swapped": ("each vector on its own", "torch.var_mean returns (var, mean)"),
        "var_mean_default_unbiased": ("population variance", "use the population variance"),
        "eps_forgotten": ("eps value", "eps is missing (or 0)"),
    },
    "gelu": {
        "exact_erf": ("tanh form", "this is the exact (erf) GELU"),
        "functional_gelu_default": ("tanh form", "this is the exact (erf) GELU"),
        "nn_gelu_default": ("tanh form", "this is the exact (erf) GELU"),
        "sigmoid_approximation": ("tanh form", "this is the sigmoid approximation"),
        "relu": ("tanh form", "this is ReLU"),
        "missing_half": ("the formula's constants", "the factor 0.5 is missing"),
        "square_instead_of_cube": ("the formula's constants", "check the constant and the cube"),
        "sqrt_two_pi": ("the formula's constants", "not sqrt(2 * pi)"),
        "missing_sqrt": ("the formula's constants", "not 2 / pi itself"),
        "constant_typo": ("the formula's constants", "the constant of the cube looks like 0.04715"),
        "misplaced_parenthesis": ("the formula's constants", "a bracket closes too early"),
        "sigmoid_form_missing_factor_2": ("the formula's constants", "the factor 2 inside the sigmoid is missing"),
        "tanh_by_hand_overflows": ("large values", "an exp written out by hand overflows"),
        "inplace_mul": ("input unchanged", "changed its input (argument 1) in place"),
        "inplace_inner_term": ("input unchanged", "changed its input (argument 1) in place"),
        "math_tanh": ("any shape", "not Python's math functions"),
        "python_loop_over_values": ("any shape", "or a loop over its elements"),
    },
    "MLP": {
        "relu_activation": ("gelu, tanh form", "the activation is ReLU"),
        "exact_gelu": ("gelu, tanh form", "the activation is the exact (erf) GELU"),
        "nn_gelu_module_default": ("gelu, tanh form", "the activation is the exact (erf) GELU"),
        "no_activation": ("gelu, tanh form", "there is no activation between c_fc and c_proj"),
        "tanh_activation": ("gelu, tanh form", "the activation is tanh"),
        "sigmoid_approx_activation": ("gelu, tanh form", "the activation is the sigmoid approximation"),
        "functional_dropout_in_eval_mode": ("no dropout in eval mode", "its training argument defaults to True"),
        "dropout_training_true": ("no dropout in eval mode", "two calls on the same input gave different outputs"),
        "activation_after_c_proj": ("c_fc, gelu, c_proj", "not after c_proj"),
        "activation_before_c_fc": ("c_fc, gelu, c_proj", "not to the input before c_fc"),
        "activation_on_both_layers": ("c_fc, gelu, c_proj", "here it is after c_proj too"),
        "hidden_2x": ("parameters", "`c_fc.weight` is (16, 8), expected (32, 8)"),
        "hidden_1x": ("parameters", "`c_fc.weight` is (8, 8), expected (32, 8)"),
        "linear_arguments_reversed": ("parameters", "nn.Linear(in, out) stores its weight as (out, in)"),
        "no_bias": ("parameters", "it has no `c_fc.bias`, `c_proj.bias`"),
        "sequential_attribute": ("parameters", "does not ask for: `net.0.weight`"),
        "named_fc1_fc2": ("parameters", "does not ask for: `fc1.weight`"),
        "adds_residual": ("c_fc, gelu, c_proj", "the residual connection (x + ...) belongs to the block"),
        "hidden_detached": ("gradients", "no gradient reached c_fc.weight, c_fc.bias"),
    },
}

VALID = {
    "LayerNorm": {
        # The reference: var(..., unbiased=False).
        "var_unbiased_false": variant("LayerNorm"),
        # correction=0, the newer spelling of unbiased=False.
        "var_correction_0": variant("LayerNorm",
                                    (_VAR, "var = torch.var(x, dim=-1, keepdim=True, correction=0)")),
        # The variance written out as the mean squared deviation.
        "mean_squared_deviation": """
            import torch
            from torch import nn

            class LayerNorm(nn.Module):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__()
                    self.eps = eps
                    self.weight = nn.Parameter(torch.ones(n_embd))
                    self.bias = nn.Parameter(torch.zeros(n_embd))

                def forward(self, x):
                    centred = x - x.mean(dim=-1, keepdim=True)
                    var = (centred ** 2).mean(dim=-1, keepdim=True)
                    return centred / torch.sqrt(var + self.eps) * self.weight + self.bias
            """,
        # torch.rsqrt and torch.var_mean.
        "rsqrt_var_mean": """
            import torch
            from torch import nn

            class LayerNorm(nn.Module):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__()
                    self.eps = eps
                    self.weight = nn.Parameter(torch.ones(n_embd))
                    self.bias = nn.Parameter(torch.zeros(n_embd))

                def forward(self, x):
                    var, mean = torch.var_mean(x, dim=-1, keepdim=True, unbiased=False)
                    return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
            """,
        # var = E[x^2] - E[x]^2: right in exact arithmetic, but float32 cancellation when the
        # mean is large against the spread gets it rejected for ~2% of grading seeds (passes
        # the salts the tests use).
        "second_moment_minus_mean_squared": variant("LayerNorm", (
            _VAR, "var = (x * x).mean(dim=-1, keepdim=True) - mean ** 2")),
        # Computes in float64 "for accuracy", then returns the input's dtype.
        "float64_then_cast_back": """
            import torch
            from torch import nn

            class LayerNorm(nn.Module):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__()
                    self.eps = eps
                    self.weight = nn.Parameter(torch.ones(n_embd))
                    self.bias = nn.Parameter(torch.zeros(n_embd))

                def forward(self, x):
                    z = x.double()
                    mean = z.mean(dim=-1, keepdim=True)
                    var = ((z - mean) ** 2).mean(dim=-1, keepdim=True)
                    y = (z - mean) / torch.sqrt(var + self.eps) * self.weight.double() + self.bias.double()
                    return y.to(x.dtype)
            """,
        # register_parameter instead of attribute assignment.
        "register_parameter": """
            import torch
            from torch import nn

            class LayerNorm(nn.Module):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__()
                    self.eps = eps
                    self.register_parameter("weight", nn.Parameter(torch.ones(n_embd)))
                    self.register_parameter("bias", nn.Parameter(torch.zeros(n_embd)))

                def forward(self, x):
                    mean = x.mean(dim=-1, keepdim=True)
                    std = torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + self.eps)
                    x_hat = (x - mean) / std
                    return x_hat * self.weight + self.bias
            """,
        # A subclass of nn.LayerNorm: the same parameter names (weight, bias).
        "subclass_nn_layernorm": """
            from torch import nn

            class LayerNorm(nn.LayerNorm):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__(n_embd, eps=eps)
            """,
        # The population standard deviation, squared back under the root with eps.
        "std_unbiased_false": variant("LayerNorm", (
            _VAR, "var = x.std(dim=-1, keepdim=True, unbiased=False) ** 2")),
        # PyTorch's fused kernel with the module's own parameters.
        "functional_layer_norm": """
            import torch
            from torch import nn
            import torch.nn.functional as F

            class LayerNorm(nn.Module):
                def __init__(self, n_embd, eps=1e-5):
                    super().__init__()
                    self.eps = eps
                    self.weight = nn.Parameter(torch.ones(n_embd))
                    self.bias = nn.Parameter(torch.zeros(n_embd))

                def forward(self, x):
                    return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
            """,
    },
    "gelu": {
        # The formula with torch.tanh and math.pi (the reference).
        "tanh_formula": variant("gelu"),
        # torch.pi, x * x * x and a precomputed constant.
        "torch_pi_cubed_by_hand": """
            import torch

            SQRT_2_OVER_PI = (2.0 / torch.pi) ** 0.5

            def gelu(x):
                inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)
                return 0.5 * x * (1.0 + torch.tanh(inner))
            """,
        # sqrt(2 / pi) written out as a literal (0.7978845608...).
        "rounded_constant": """
            import torch

            def gelu(x):
                return 0.5 * x * (1 + torch.tanh(0.7978845608 * (x + 0.044715 * torch.pow(x, 3))))
            """,
        # 1 + tanh(z) = 2 sigmoid(2 z): the same function written with sigmoid.
        "sigmoid_identity": """
            import math
            import torch

            def gelu(x):
                return x * torch.sigmoid(2.0 * math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3)))
            """,
        # The sigmoid identity with exp by hand: exp(-2z) may overflow to inf, but x / inf is 0.
        "sigmoid_identity_by_hand": """
            import math
            import torch

            def gelu(x):
                z = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
                return x / (1.0 + torch.exp(-2.0 * z))
            """,
        # Tensor methods: .pow(3) and .tanh().
        "tensor_methods": """
            import math

            def gelu(x):
                inner = math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3))
                return 0.5 * x * (1 + inner.tanh())
            """,
        # nn.GELU in its tanh form.
        "nn_gelu_tanh": """
            from torch import nn

            def gelu(x):
                return nn.GELU(approximate="tanh")(x)
            """,
        # PyTorch's own tanh GELU.
        "functional_gelu_tanh": """
            import torch.nn.functional as F

            def gelu(x):
                return F.gelu(x, approximate="tanh")
            """,
    },
    "MLP": {
        # The reference: calls the notebook's gelu.
        "calls_gelu": variant("MLP"),
        # Dropout with F.dropout, told the module's mode: off in eval mode.
        "functional_dropout_self_training": variant("MLP",
            ("self.dropout = nn.Dropout(dropout)", "self.p = dropout"),
            ("self.dropout(self.c_proj(gelu(self.c_fc(x))))",
             "F.dropout(self.c_proj(gelu(self.c_fc(x))), self.p, self.training)")),
        # nanoGPT's layout: the activation and the dropout as sub-modules (no parameters).
        "gelu_and_dropout_modules": """
            from torch import nn

            class MLP(nn.Module):
                def __init__(self, n_embd, dropout=0.0):
                    super().__init__()
                    self.c_fc = nn.Linear(n_embd, 4 * n_embd)
                    self.gelu = nn.GELU(approximate="tanh")
                    self.c_proj = nn.Linear(4 * n_embd, n_embd)
                    self.dropout = nn.Dropout(dropout)

                def forward(self, x):
                    x = self.c_fc(x)
                    x = self.gelu(x)
                    x = self.c_proj(x)
                    x = self.dropout(x)
                    return x
            """,
        # nn.GELU(approximate="tanh") as a sub-module (no parameters, so the names still match).
        "nn_gelu_tanh_module": """
            import torch
            from torch import nn

            class MLP(nn.Module):
                def __init__(self, n_embd):
                    super().__init__()
                    self.c_fc = nn.Linear(n_embd, 4 * n_embd)
                    self.gelu = nn.GELU(approximate="tanh")
                    self.c_proj = nn.Linear(4 * n_embd, n_embd)

                def forward(self, x):
                    x = self.c_fc(x)
                    x = self.gelu(x)
                    x = self.c_proj(x)
                    return x
            """,
        # The formula inline.
        "inline_tanh_formula": """
            import math
            import torch
            from torch import nn

            class MLP(nn.Module):
                def __init__(self, n_embd):
                    super().__init__()
                    self.c_fc = nn.Linear(n_embd, 4 * n_embd)
                    self.c_proj = nn.Linear(4 * n_embd, n_embd)

                def forward(self, x):
                    h = self.c_fc(x)
                    h = 0.5 * h * (1 + torch.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h ** 3)))
                    return self.c_proj(h)
            """,
        # A subclass of nn.Sequential with named layers: parameters c_fc.* and c_proj.*.
        "sequential_subclass_named": """
            from collections import OrderedDict
            from torch import nn

            class MLP(nn.Sequential):
                def __init__(self, n_embd):
                    super().__init__(OrderedDict([
                        ("c_fc", nn.Linear(n_embd, 4 * n_embd)),
                        ("gelu", nn.GELU(approximate="tanh")),
                        ("c_proj", nn.Linear(4 * n_embd, n_embd)),
                    ]))
            """,
        # GPT-2's residual dropout (inactive in eval mode, where the checks run).
        "with_dropout": """
            import torch
            from torch import nn

            class MLP(nn.Module):
                def __init__(self, n_embd, dropout=0.1):
                    super().__init__()
                    self.c_fc = nn.Linear(n_embd, 4 * n_embd)
                    self.c_proj = nn.Linear(4 * n_embd, n_embd)
                    self.dropout = nn.Dropout(dropout)

                def forward(self, x):
                    return self.dropout(self.c_proj(gelu(self.c_fc(x))))
            """,
        # F.gelu(..., approximate="tanh"), self-contained.
        "functional_gelu_tanh": """
            import torch
            from torch import nn
            import torch.nn.functional as F

            class MLP(nn.Module):
                def __init__(self, n_embd):
                    super().__init__()
                    self.c_fc = nn.Linear(n_embd, 4 * n_embd)
                    self.c_proj = nn.Linear(4 * n_embd, n_embd)

                def forward(self, x):
                    return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))
            """,
    },
}

UNCAUGHT: dict = {}

VALID_FAILING: dict = {}


WRONG, VALID, UNCAUGHT, VALID_FAILING = map(_tidy, (WRONG, VALID, UNCAUGHT, VALID_FAILING))
