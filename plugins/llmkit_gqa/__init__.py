"""First-party plugin: grouped-query attention (GQA), as in Llama 2/3 and Mistral.

Every query head still has its own projection, but keys and values are computed for only
``num_kv_groups`` heads, each shared by a group of ``num_heads // num_kv_groups`` query heads. The
K/V projections shrink by that factor and so does the KV cache, which stores the un-shared K/V
heads: during generation the cache, not the weights, is what fills memory.

``num_kv_groups == num_heads`` is ordinary multi-head attention (it matches the reference
``MultiHeadAttention`` exactly, parameter names included); ``num_kv_groups == 1`` is multi-query
attention. Registered as attention ``"gqa"``.
"""

from __future__ import annotations

import torch
from torch import nn

from llmkit.config import check_attention_args
from llmkit.errors import LLMKitError
from llmkit.hookspecs import hookimpl

# Llama-3-8B shares each K/V head among 4 query heads (32 query heads, 8 K/V heads).
DEFAULT_QUERIES_PER_KV = 4


def default_kv_groups(num_heads):
    """The fewest K/V heads such that at most 4 query heads share one: 12 -> 3, 6 -> 2, 4 -> 1, 7 -> 7."""
    return next(g for g in range(1, num_heads + 1)
                if num_heads % g == 0 and num_heads // g <= DEFAULT_QUERIES_PER_KV)


class GroupedQueryAttention(nn.Module):
    """Causal attention whose ``num_kv_groups`` key/value heads are shared by groups of query heads.

    ``num_kv_groups=None`` picks ``default_kv_groups(num_heads)``: the fewest K/V heads that keep
    at most 4 query heads per group (e.g. 12 heads -> 3 groups), so any ``num_heads`` works.
    """

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False,
                 num_kv_groups=None):
        super().__init__()
        check_attention_args(d_in, d_out, num_heads)
        if num_kv_groups is None:
            num_kv_groups = default_kv_groups(num_heads)
        divisors = [g for g in range(1, num_heads + 1) if num_heads % g == 0]
        if not isinstance(num_kv_groups, int) or isinstance(num_kv_groups, bool) or num_kv_groups < 1:
            raise LLMKitError(
                f"num_kv_groups must be a positive int, got {num_kv_groups!r}; "
                f"with num_heads={num_heads} pick one of {divisors}."
            )
        if num_heads % num_kv_groups:
            raise LLMKitError(
                f"num_heads ({num_heads}) must be divisible by num_kv_groups ({num_kv_groups}); "
                f"pick num_kv_groups from {divisors}."
            )
        self.d_out = d_out
        self.num_heads = num_heads
        self.num_kv_groups = num_kv_groups
        self.group_size = num_heads // num_kv_groups  # query heads per K/V head
        self.head_dim = d_out // num_heads
        kv_dim = num_kv_groups * self.head_dim
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, kv_dim, bias=qkv_bias)  # the saving: kv_dim <= d_out
        self.W_value = nn.Linear(d_in, kv_dim, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x, kv_cache=None):
        b, num_tokens, _ = x.shape
        g, hd = self.num_kv_groups, self.head_dim
        queries = self.W_query(x).view(b, num_tokens, self.num_heads, hd).transpose(1, 2)  # (B, H, T, hd)
        keys = self.W_key(x).view(b, num_tokens, g, hd).transpose(1, 2)  # (B, G, T, hd)
        values = self.W_value(x).view(b, num_tokens, g, hd).transpose(1, 2)  # (B, G, T, hd)

        start = 0
        if kv_cache is not None:
            start = kv_cache.length  # absolute position of the first new token
            keys, values = kv_cache.update(keys, values)  # (B, G, S, hd): only G heads are stored

        # Query head h uses K/V head h // group_size. Viewing the H query heads as (G, group_size)
        # lets each K/V head broadcast over its group instead of being copied group_size times.
        queries = queries.view(b, g, self.group_size, num_tokens, hd)  # (B, G, Q, T, hd)
        keys, values = keys.unsqueeze(2), values.unsqueeze(2)  # (B, G, 1, S, hd)

        scores = queries @ keys.transpose(-2, -1)  # (B, G, Q, T, S)
        future = self.mask.bool()[start : start + num_tokens, : start + num_tokens]  # (T, S)
        scores = scores.masked_fill(future, -torch.inf)
        weights = torch.softmax(scores / hd**0.5, dim=-1)
        weights = self.dropout(weights)

        context = (weights @ values).view(b, self.num_heads, num_tokens, hd)  # (B, H, T, hd)
        context = context.transpose(1, 2).contiguous().view(b, num_tokens, self.d_out)  # (B, T, d_out)
        return self.out_proj(context)


@hookimpl
def register_attention(register):
    register("gqa", GroupedQueryAttention)
