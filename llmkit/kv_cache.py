"""A key/value cache for incremental decoding, shared by every attention that supports it.

An attention module that accepts ``forward(x, kv_cache=None)`` stores the keys and values of the
tokens it has seen in its ``LayerCache`` and, on the next call, computes them only for the new
tokens. ``KVCache.offset`` is the absolute position of the next token, which the model needs for its
position embedding and the attention for its causal mask.
"""

from __future__ import annotations

import torch


class LayerCache:
    """Keys and values of one attention layer, shaped (batch, kv_heads, tokens_seen, head_dim)."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[2]

    def update(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new tokens' keys/values; return those of every token seen so far."""
        if self.keys is None:
            self.keys, self.values = keys, values
        else:
            self.keys = torch.cat([self.keys, keys], dim=2)
            self.values = torch.cat([self.values, values], dim=2)
        return self.keys, self.values


class KVCache:
    """One ``LayerCache`` per transformer block."""

    def __init__(self, n_layers: int) -> None:
        self.layers = [LayerCache() for _ in range(n_layers)]

    @property
    def offset(self) -> int:
        return self.layers[0].length if self.layers else 0

    def reset(self) -> None:
        for layer in self.layers:
            layer.keys = layer.values = None
