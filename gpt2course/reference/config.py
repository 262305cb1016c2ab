"""Notebook 07: the model's hyperparameters (given, not an exercise)."""

from dataclasses import dataclass


@dataclass
class GPTConfig:
    """GPT-2's hyperparameters; the defaults are GPT-2 small (124M parameters)."""

    vocab_size: int = 50257  # GPT-2's BPE: 256 bytes + 50,000 merges + <|endoftext|>
    block_size: int = 1024   # the longest sequence the model reads (positions 0 .. 1023)
    n_layer: int = 12        # blocks
    n_head: int = 12         # attention heads per block
    n_embd: int = 768        # width of the residual stream
    dropout: float = 0.0     # dropout probability (0: none), after the embeddings, on the attention
                             # weights and on both residual branches, in training mode only. OpenAI
                             # published no training code; Hugging Face's GPT-2 config ships 0.1
                             # (embd_pdrop, attn_pdrop, resid_pdrop)
