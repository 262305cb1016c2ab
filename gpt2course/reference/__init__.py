"""The finished version of every exercise, under the exercise's own name.

Later notebooks import earlier pieces from here, so a learner stuck on one notebook can still
do the next. The code of each exercise is generated from its answer cell in ``solutions/`` by
``python -m grader build`` (``make notebooks``): edit the answer cell, never the module; each
module's marker line names the notebook and cells it comes from, and ``build --check`` fails
when a module is stale.
"""

from .attention import attention, causal_mask
from .batches import get_batch
from .block import Block
from .config import GPTConfig
from .bpe import decode, encode, get_pair_counts, merge, train_bpe
from .checkpoints import load_checkpoint, save_checkpoint
from .embeddings import Embeddings
from .generation import forward_with_cache, generate, sample_next_token
from .gpt import GPT, load_hf_weights
from .heads import induction_scores, previous_token_scores
from .layernorm_mlp import MLP, LayerNorm, gelu
from .multi_head import CausalSelfAttention, merge_heads, split_heads
from .precision import autocast_dtype
from .softmax import softmax
from .training import configure_optimizer, estimate_loss, get_lr, lm_loss, train_step

__all__ = [
    "softmax",
    "get_pair_counts", "merge", "train_bpe", "encode", "decode",
    "get_batch",
    "Embeddings",
    "causal_mask", "attention",
    "split_heads", "merge_heads", "CausalSelfAttention",
    "LayerNorm", "gelu", "MLP",
    "Block",
    "GPTConfig", "GPT", "load_hf_weights",
    "lm_loss", "configure_optimizer", "get_lr", "train_step", "estimate_loss",
    "sample_next_token", "generate", "forward_with_cache",
    "autocast_dtype", "save_checkpoint", "load_checkpoint",
    "previous_token_scores", "induction_scores",
]
