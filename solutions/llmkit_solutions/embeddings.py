"""Stage 3: token embeddings plus absolute position embeddings.

A token id picks a row of ``tok_emb``; the position 0..T-1 picks a row of ``pos_emb``; their sum is
what the transformer reads. ``GPTModel`` holds the same two tables under the same names.
"""

from __future__ import annotations

import torch
from torch import nn


class GPTEmbedding(nn.Module):
    """Token + absolute position embedding: (batch, T) ids -> (batch, T, emb_dim) vectors."""

    def __init__(self, vocab_size: int, emb_dim: int, context_length: int):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)

    def forward(self, in_idx: torch.Tensor) -> torch.Tensor:
        num_tokens = in_idx.shape[-1]
        tok = self.tok_emb(in_idx)  # (B, T, E)
        pos = self.pos_emb(torch.arange(num_tokens, device=in_idx.device))  # (T, E), broadcast over B
        return tok + pos
