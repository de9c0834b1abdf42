"""Stage 3: token embeddings plus absolute position embeddings.

A token id picks a row of ``tok_emb``; the position 0..T-1 picks a row of ``pos_emb``; their sum is
what the transformer reads. ``GPTModel`` holds the same two tables under the same names.

``embed_one_hot`` shows that a lookup is a one-hot vector times the weight matrix; ``embed_batch``
embeds a ``(batch, T)`` batch from the stage-2 dataloader with two ``nn.Embedding`` layers, as the
book does; ``sinusoidal_positions`` is the fixed alternative to learned positions (the original
transformer's).
"""

from __future__ import annotations

import torch
from torch import nn


def embed_one_hot(token_ids, weight):
    """Look ids up as a matrix product: one_hot(ids) @ weight; (...) ids -> (..., emb_dim)."""
    one_hot = torch.nn.functional.one_hot(token_ids, num_classes=weight.shape[0])  # (..., vocab)
    return one_hot.to(weight.dtype) @ weight  # each one-hot row selects one row of weight


def embed_batch(inputs, token_embedding_layer, pos_embedding_layer):
    """(batch, T) ids -> token + absolute position embeddings, (batch, T, emb_dim)."""
    token_embeddings = token_embedding_layer(inputs)  # (B, T, E)
    positions = torch.arange(inputs.shape[-1], device=inputs.device)  # 0, 1, ..., T-1
    pos_embeddings = pos_embedding_layer(positions)  # (T, E), the same for every row of the batch
    return token_embeddings + pos_embeddings  # broadcast over the batch


def sinusoidal_positions(context_length, emb_dim):
    """Fixed position vectors (even emb_dim): column 2i is sin(p / 10000 ** (2i / emb_dim)), 2i+1 the cosine."""
    positions = torch.arange(context_length, dtype=torch.float32).unsqueeze(1)  # (T, 1): p = 0, 1, ...
    even = torch.arange(0, emb_dim, 2, dtype=torch.float32)  # 2i = 0, 2, 4, ...
    angles = positions / 10000 ** (even / emb_dim)  # (T, E/2): one frequency per sine/cosine pair
    table = torch.zeros(context_length, emb_dim)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


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
