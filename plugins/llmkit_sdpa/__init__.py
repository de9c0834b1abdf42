"""First-party plugin: causal multi-head attention computed by PyTorch's fused attention kernel.

``SDPAttention`` keeps the reference ``MultiHeadAttention``'s constructor, parameters and buffer
(``W_query``, ``W_key``, ``W_value``, ``out_proj``, ``mask``), so weights and whole checkpoints move
between the two by name. Only the core changes: the explicit
scores -> mask -> softmax -> dropout -> weights @ values becomes one call to
``torch.nn.functional.scaled_dot_product_attention``, which lets PyTorch choose a fused kernel
(FlashAttention or memory-efficient attention) that never stores the (T, T) weight matrix.
Registered as attention ``"sdpa"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmkit.config import check_attention_args
from llmkit.hookspecs import hookimpl


class SDPAttention(nn.Module):
    """Causal multi-head attention via ``F.scaled_dot_product_attention``; a drop-in for the MHA."""

    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        check_attention_args(d_in, d_out, num_heads)
        self.d_out = d_out
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        # The kernel applies dropout itself; the module is kept for its rate and so that the module
        # tree (and printing the model) matches the reference.
        self.dropout = nn.Dropout(dropout)
        # Same buffer as the reference, so a reference state_dict loads strictly. Only needed for a
        # chunk of several tokens after a KV cache; otherwise the kernel masks with is_causal.
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def split_heads(self, t, b, num_tokens):
        # (B, T, d_out) -> (B, heads, T, head_dim)
        return t.view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x, kv_cache=None):
        b, num_tokens, _ = x.shape
        queries = self.split_heads(self.W_query(x), b, num_tokens)  # (B, H, T, hd)
        keys = self.split_heads(self.W_key(x), b, num_tokens)  # (B, H, T, hd)
        values = self.split_heads(self.W_value(x), b, num_tokens)  # (B, H, T, hd)

        start = 0
        if kv_cache is not None:
            start = kv_cache.length  # absolute position of the first new token
            keys, values = kv_cache.update(keys, values)  # (B, H, S, hd) with S = start + T

        # is_causal=True aligns the triangle top-left (query i sees keys 0..i), which is right only
        # when queries and keys start at the same position. After a cache, one new token may see
        # every key (no mask); several new tokens need a mask built from absolute positions.
        attn_mask, is_causal = None, start == 0
        if start > 0 and num_tokens > 1:
            future = self.mask.bool()[start : start + num_tokens, : start + num_tokens]  # (T, S)
            attn_mask = ~future  # SDPA's boolean mask marks the keys a query MAY attend to

        context = F.scaled_dot_product_attention(
            queries, keys, values,
            attn_mask=attn_mask,
            dropout_p=self.dropout.p if self.training else 0.0,
            is_causal=is_causal,
        )  # (B, H, T, hd); scale defaults to 1/sqrt(head_dim), as in the reference

        context = context.transpose(1, 2).contiguous().view(b, num_tokens, self.d_out)  # (B, T, d_out)
        return self.out_proj(context)


@hookimpl
def register_attention(register):
    register("sdpa", SDPAttention)
