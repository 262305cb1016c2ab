"""Notebook 02's exercise, Embeddings(vocab_size, block_size, n_embd): learner mistakes and
valid alternatives.

Each source is a complete answer cell. ``tests/checks/test_catalogue_checks.py`` runs it in a namespace
that already holds ``torch``, ``nn``, ``F`` (torch.nn.functional) and ``math``. The check builds
the class, loads ``wte.weight`` and ``wpe.weight`` by name, runs forward (the module in eval
mode) and backpropagates.

Mistakes of a line or two are written as edits of the exercise's reference answer in solutions/
(``catalogue.variant``); answers built another way are written out whole.
"""

from catalogue import tidy as _tidy, variant

NOTEBOOK = "02_embeddings.ipynb"

WRONG = {
    "Embeddings": {
        # Positions made on the CPU: right on a CPU, "Expected all tensors to be on the same
        # device" on a GPU. The meta-device case shows it on any machine.
        "positions_on_the_cpu": variant("Embeddings", ("torch.arange(T, device=idx.device)", "torch.arange(T)")),
        # Forgets the position embeddings: wpe is built but never used.
        "no_positions": variant("Embeddings", ("self.wte(idx) + self.wpe(positions)", "self.wte(idx)")),
        # Looks the position table up with the token ids instead of the positions 0 .. T - 1.
        "positions_indexed_by_token_ids": variant("Embeddings", ("self.wpe(positions)", "self.wpe(idx)")),
        # Positions 1 .. T: off by one (and out of range for a full block).
        "positions_start_at_1": variant("Embeddings", ("torch.arange(T, device=idx.device)",
                                                       "torch.arange(1, T + 1, device=idx.device)")),
        # Multiplies the two embeddings instead of adding them.
        "multiplies_instead_of_adding": variant("Embeddings", ("self.wte(idx) + self.wpe(positions)",
                                                               "self.wte(idx) * self.wpe(positions)")),
        # Concatenates token and position vectors: (B, T, 2 * n_embd).
        "concatenates_instead_of_adding": variant("Embeddings", (
            "return self.wte(idx) + self.wpe(positions)",
            "return torch.cat([self.wte(idx), self.wpe(positions).expand(idx.size(0), T, -1)], dim=-1)")),
        # The position table as a raw nn.Parameter: its name is `wpe`, not `wpe.weight`.
        "wpe_raw_parameter": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Parameter(torch.randn(block_size, n_embd) * 0.02)

                def forward(self, idx):
                    T = idx.shape[1]
                    return self.wte(idx) + self.wpe[:T]
            """,
        # Copy-paste: the position table gets vocab_size rows instead of block_size.
        "wpe_sized_by_vocab": variant("Embeddings", ("nn.Embedding(block_size, n_embd)",
                                                     "nn.Embedding(vocab_size, n_embd)")),
        # Other names than GPT-2's (token_embedding / position_embedding).
        "descriptive_attribute_names": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.token_embedding = nn.Embedding(vocab_size, n_embd)
                    self.position_embedding = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    T = idx.shape[1]
                    return self.token_embedding(idx) + self.position_embedding(torch.arange(T))
            """,
        # The token table as a bias-free nn.Linear on one-hot vectors: weight is (n_embd, vocab).
        "wte_as_linear_on_one_hot": """
            import torch
            import torch.nn.functional as F
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.vocab_size = vocab_size
                    self.wte = nn.Linear(vocab_size, n_embd, bias=False)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    T = idx.shape[1]
                    one_hot = F.one_hot(idx, self.vocab_size).float()
                    return self.wte(one_hot) + self.wpe(torch.arange(T))
            """,
        # Unpacks the shape the wrong way round: T is taken from the batch dimension.
        "T_from_batch_dim": variant("Embeddings", ("T = idx.size(1)", "T, B = idx.shape")),
        # Always adds the whole position table, as if every sequence were a full block.
        "assumes_full_block": variant("Embeddings",
            ("torch.arange(T, device=idx.device)",
             "torch.arange(self.wpe.num_embeddings, device=idx.device)")),
        # Takes the last T rows of the position table instead of the first T.
        "positions_from_the_end": variant("Embeddings", ("self.wpe(positions)", "self.wpe.weight[-T:]")),
        # Scales the token embeddings by sqrt(n_embd), as in the original Transformer (not GPT-2).
        "scales_by_sqrt_n_embd": variant("Embeddings",
            ("        self.wte =", "        self.n_embd = n_embd\n        self.wte ="),
            ("self.wte(idx) +", "self.wte(idx) * math.sqrt(self.n_embd) +")),
        # Fixed sinusoidal positions (the original Transformer) instead of the learned table.
        "sinusoidal_positions": """
            import math
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.n_embd = n_embd
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    T = idx.shape[1]
                    pos = torch.arange(T, dtype=torch.float32)[:, None]
                    i = torch.arange(self.n_embd)[None, :]
                    angle = pos / 10000 ** ((i - i % 2) / self.n_embd)
                    pe = torch.where(i % 2 == 0, torch.sin(angle), torch.cos(angle))
                    return self.wte(idx) + pe
            """,
        # Reads the tables through .data: right values, but no gradient reaches them.
        "through_data": variant("Embeddings",
            ("self.wte(idx) + self.wpe(positions)",
             "self.wte.weight.data[idx] + self.wpe.weight.data[positions]")),
        # Detaches the position embeddings ("positions are constants"): wpe never learns.
        "detached_positions": variant("Embeddings", ("self.wpe(positions)", "self.wpe(positions).detach()")),
        # Builds the positions under torch.no_grad(): the whole output is cut off from autograd.
        "forward_under_no_grad": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    with torch.no_grad():
                        T = idx.shape[1]
                        x = self.wte(idx) + self.wpe(torch.arange(T))
                    return x
            """,
        # padding_idx=0, a habit from padded NLP batches: row 0 starts at zero and never learns,
        # but GPT-2's id 0 is a real token ("!").
        "padding_idx_zero": variant("Embeddings", ("nn.Embedding(vocab_size, n_embd)",
                                                   "nn.Embedding(vocab_size, n_embd, padding_idx=0)")),
        # nn.Embedding's arguments the wrong way round: (n_embd, vocab_size).
        "wte_arguments_swapped": variant("Embeddings", ("nn.Embedding(vocab_size, n_embd)",
                                                        "nn.Embedding(n_embd, vocab_size)")),
        # len(idx) is the batch size B, not the sequence length T.
        "T_from_len": variant("Embeddings", ("T = idx.size(1)", "T = len(idx)")),
        # Float positions: an embedding looks rows up by integer ids.
        "float_positions": variant("Embeddings", ("torch.arange(T, device=idx.device)",
                                                  "torch.arange(T, device=idx.device, dtype=torch.float32)")),
        # Copy-paste slip: the positions looked up in the token table.
        "positions_from_wte": variant("Embeddings", ("self.wpe(positions)", "self.wte(positions)")),
    },
}

EXPECT = {
    "Embeddings": {
        "positions_on_the_cpu": ("positions on idx's device", "on the input's device"),
        "no_positions": ("token plus position", "token embeddings alone"),
        "positions_indexed_by_token_ids": ("positions 0 .. T - 1", "indexed with the token ids"),
        "positions_start_at_1": ("positions 0 .. T - 1", "start at 0, not 1"),
        "multiplies_instead_of_adding": ("token plus position", "added, not multiplied"),
        "concatenates_instead_of_adding": ("token plus position", "not concatenated"),
        "wpe_raw_parameter": ("GPT-2's names", "bare nn.Parameter"),
        "wpe_sized_by_vocab": ("GPT-2's names", "it has vocab_size rows"),
        "descriptive_attribute_names": ("GPT-2's names", "GPT-2's names"),
        "wte_as_linear_on_one_hot": ("GPT-2's names", "nn.Linear(vocab_size, n_embd) would store"),
        "T_from_batch_dim": ("positions 0 .. T - 1", "not its first, B"),
        "assumes_full_block": ("positions 0 .. T - 1", "may be less than block_size"),
        "positions_from_the_end": ("positions 0 .. T - 1", "not end at block_size"),
        "scales_by_sqrt_n_embd": ("token plus position", "nothing should scale the sum"),
        "sinusoidal_positions": ("token plus position", "are not rows of wpe"),
        "through_data": ("every row learns", ".data"),
        "detached_positions": ("every row learns", "no gradient reached `wpe.weight`"),
        "forward_under_no_grad": ("every row learns", "torch.no_grad()"),
        "padding_idx_zero": ("every row learns", "padding_idx"),
        "wte_arguments_swapped": ("GPT-2's names", "takes the number of rows first"),
        "T_from_len": ("positions 0 .. T - 1", "not its first, B"),
        "float_positions": ("positions 0 .. T - 1", "integer"),
        "positions_from_wte": ("token plus position", "rows of wte, the token table"),
    },
}

VALID = {
    "Embeddings": {
        # The reference: positions on idx's device, a clear error past block_size.
        "arange_on_idx_device": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.block_size = block_size
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    B, T = idx.size()
                    assert T <= self.block_size, "sequence longer than block_size"
                    pos = torch.arange(0, T, dtype=torch.long, device=idx.device)
                    return self.wte(idx) + self.wpe(pos)
            """,
        # Slices the position table instead of calling the embedding.
        "slice_wpe_weight": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    return self.wte(idx) + self.wpe.weight[: idx.shape[-1]]
            """,
        # Functional lookups with F.embedding and explicit (B, T) positions.
        "functional_embedding_expanded_positions": """
            import torch
            import torch.nn.functional as F
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    B, T = idx.shape
                    pos = torch.arange(T, device=idx.device).unsqueeze(0).expand(B, T)
                    tok_emb = F.embedding(idx, self.wte.weight)
                    pos_emb = F.embedding(pos, self.wpe.weight)
                    return tok_emb + pos_emb
            """,
        # GPT-2's embedding dropout: a no-op in eval mode, where the check runs the module.
        "with_dropout": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)
                    self.drop = nn.Dropout(0.1)

                def forward(self, idx):
                    positions = torch.arange(idx.size(1), device=idx.device)
                    return self.drop(self.wte(idx) + self.wpe(positions)[None, :, :])
            """,
        # Accumulates in place into the fresh token-embedding tensor (fine for autograd).
        "inplace_add_on_fresh_tensor": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    x = self.wte(idx)
                    x += self.wpe(torch.arange(idx.shape[1], device=idx.device))
                    return x
            """,
        # The positions made on the CPU, then moved to idx's device.
        "arange_then_to_device": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)

                def forward(self, idx):
                    positions = torch.arange(idx.size(-1)).to(idx.device)
                    return self.wte(idx) + self.wpe(positions)
            """,
        # The positions on the table's device (the module's), where idx is too.
        "arange_on_the_table_device": variant("Embeddings", ("torch.arange(T, device=idx.device)",
                                                             "torch.arange(T, device=self.wpe.weight.device)")),
        # nanoGPT-style buffer of all positions, sliced to T: it moves with the module.
        "position_buffer": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)
                    self.register_buffer("pos", torch.arange(block_size), persistent=False)

                def forward(self, idx):
                    return self.wte(idx) + self.wpe(self.pos[: idx.shape[1]])
            """,
        # GPT-2's initialisation (normal, std 0.02) of both tables.
        "gpt2_initialisation": """
            import torch
            from torch import nn

            class Embeddings(nn.Module):
                def __init__(self, vocab_size, block_size, n_embd):
                    super().__init__()
                    self.wte = nn.Embedding(vocab_size, n_embd)
                    self.wpe = nn.Embedding(block_size, n_embd)
                    nn.init.normal_(self.wte.weight, std=0.02)
                    nn.init.normal_(self.wpe.weight, std=0.02)

                def forward(self, idx):
                    B, T = idx.shape
                    return self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)).unsqueeze(0)
            """,
    },
}

UNCAUGHT: dict = {}

VALID_FAILING: dict = {}


WRONG, VALID, UNCAUGHT, VALID_FAILING = map(_tidy, (WRONG, VALID, UNCAUGHT, VALID_FAILING))
