"""First-party plugin: sliding-window (local) causal attention, as in Mistral 7B.

Each token attends to itself and to at most ``window_size - 1`` tokens before it. Information
still travels further than the window, one window per layer, so n layers see about
n * window_size tokens back. ``window_size=None`` (or any window of at least ``context_length``)
is full causal attention and matches the reference ``MultiHeadAttention`` exactly; the parameters
and buffer keep the reference's names. Registered as attention ``"sliding-window"``.

This version shows the masking only: it still computes all (T, S) scores and keeps every key and
value in the KV cache. Mistral's speed and memory gains come from also skipping the out-of-window
scores and keeping a rolling cache of ``window_size`` entries.
"""

from __future__ import annotations

import torch
from torch import nn

from llmkit.config import check_attention_args
from llmkit.errors import LLMKitError
from llmkit.hookspecs import hookimpl


class SlidingWindowAttention(nn.Module):
    """Causal multi-head attention in which each token sees only the last ``window_size`` tokens."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False,
                 window_size=None):
        super().__init__()
        check_attention_args(d_in, d_out, num_heads)
        if window_size is not None and (
            not isinstance(window_size, int) or isinstance(window_size, bool) or window_size < 1
        ):
            raise LLMKitError(
                f"window_size must be a positive int (1 = each token sees only itself) or None for "
                f"full causal attention, got {window_size!r}."
            )
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.window_size = window_size
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        # The plain causal mask, as in the reference. The window is applied in forward rather than
        # baked into this buffer: loading a reference checkpoint would otherwise overwrite it with
        # the full causal mask and silently turn the window off.
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def split_heads(self, t, b, num_tokens):
        # (B, T, d_out) -> (B, heads, T, head_dim)
        return t.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

    def blocked(self, start, num_tokens, device):
        """(T, S) boolean mask, True where query start+i may NOT see key j: future or out of window."""
        future = self.mask.bool()[start : start + num_tokens, : start + num_tokens]
        if self.window_size is None:
            return future
        q_pos = torch.arange(start, start + num_tokens, device=device).unsqueeze(1)  # (T, 1)
        k_pos = torch.arange(start + num_tokens, device=device).unsqueeze(0)  # (1, S)
        too_old = q_pos - k_pos >= self.window_size  # the token itself is distance 0
        return future | too_old

    def forward(self, x, kv_cache=None):
        b, num_tokens, _ = x.shape
        queries = self.split_heads(self.W_query(x), b, num_tokens)  # (B, H, T, hd)
        keys = self.split_heads(self.W_key(x), b, num_tokens)  # (B, H, T, hd)
        values = self.split_heads(self.W_value(x), b, num_tokens)  # (B, H, T, hd)

        start = 0
        if kv_cache is not None:
            # The whole history stays cached: LayerCache.length doubles as the absolute position
            # (and KVCache.offset feeds the position embedding), so trimming it would shift both.
            start = kv_cache.length
            keys, values = kv_cache.update(keys, values)  # (B, H, S, hd) with S = start + T

        scores = queries @ keys.transpose(2, 3)  # (B, H, T, S)
        scores = scores.masked_fill(self.blocked(start, num_tokens, x.device), -torch.inf)
        # Every row keeps at least its own token (window_size >= 1), so softmax never sees all -inf.
        weights = torch.softmax(scores / self.head_dim**0.5, dim=-1)
        weights = self.dropout(weights)

        context = (weights @ values).transpose(1, 2)  # (B, T, H, hd)
        context = context.contiguous().view(b, num_tokens, self.d_out)  # (B, T, d_out)
        return self.out_proj(context)


@hookimpl
def register_attention(register):
    register("sliding-window", SlidingWindowAttention)
