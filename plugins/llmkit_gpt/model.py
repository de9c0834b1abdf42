"""The production GPT: the book's GPTModel, computed the fast way.

Same modules, names, shapes and construction order as the book's ``GPTModel``, so
``torch.manual_seed(s); GPT(cfg)`` holds exactly the weights ``GPTModel(cfg)`` gets from the same
seed, and state dicts (the book's, GPT-2's through ``load_weights_into_gpt``, LoRA-wrapped ones)
move between the two unchanged. What changes is only how each piece is computed:

- LayerNorm and GELU are PyTorch's fused kernels (``F.layer_norm``, ``gelu(approximate="tanh")``),
  the same formulas in one pass over memory instead of five or six;
- Q, K and V come from one matmul over the three weights side by side;
- attention is ``F.scaled_dot_product_attention(is_causal=True)``: no (T, T) mask or weights stored;
- ``model(idx, targets=...)`` returns the loss through ``linear_cross_entropy``, which never holds
  the full (B*T, vocab) logits;
- ``cfg["tie_weights"] = True`` shares ``tok_emb.weight`` with ``out_head.weight`` (as GPT-2 did);
- nothing in ``forward`` leaves the graph (no ``.item()``, no data-dependent Python branches), so
  ``torch.compile(model, fullgraph=True)`` compiles it whole.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from llmkit.config import check_gpt_config
from llmkit.errors import LLMKitError

from .loss import IGNORE_INDEX, linear_cross_entropy, reference_loss

# Attentions whose maths this model already computes; any other name belongs to the book's model.
SAME_ATTENTION = (None, "mha", "sdpa")
FUSE_QKV = True  # one (E, 3E) matmul for Q, K and V when training; see CausalSelfAttention.qkv


@dataclass
class GPTConfig:
    """The book's cfg dict as a dataclass, plus this model's own options."""

    vocab_size: int = 50257
    context_length: int = 1024
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.1
    qkv_bias: bool = False
    tie_weights: bool = False  # out_head.weight is tok_emb.weight
    loss_chunk_rows: int = 512  # rows of logits alive at once in the training loss (103 MB for GPT-2's vocab)
    loss_softmax_rows: int = 32  # rows of those whose fp32 softmax runs at once, in cache (6 MB for GPT-2's)

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> "GPTConfig":
        check_gpt_config(cfg)
        if cfg.get("attention") not in SAME_ATTENTION or cfg.get("attention_options"):
            raise LLMKitError(
                f"model 'gpt' computes its own sdpa attention and takes no cfg['attention']="
                f"{cfg.get('attention')!r}; use model 'gpt-book' to plug in another attention."
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in fields})


class LayerNorm(nn.Module):
    """The book's LayerNorm (eps 1e-5, biased variance, ``scale``/``shift``) as one fused kernel."""

    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        return F.layer_norm(x, self.scale.shape, self.scale, self.shift, self.eps)


class CausalSelfAttention(nn.Module):
    """The book's MultiHeadAttention (same parameters and ``mask`` buffer), computed by sdpa."""

    def __init__(self, cfg: GPTConfig, mask: torch.Tensor):
        super().__init__()
        e = cfg.emb_dim
        self.n_heads, self.head_dim = cfg.n_heads, e // cfg.n_heads
        self.W_query = nn.Linear(e, e, bias=cfg.qkv_bias)
        self.W_key = nn.Linear(e, e, bias=cfg.qkv_bias)
        self.W_value = nn.Linear(e, e, bias=cfg.qkv_bias)
        self.out_proj = nn.Linear(e, e)
        self.dropout = nn.Dropout(cfg.drop_rate)  # its rate goes to sdpa; kept for the module tree
        # The book's buffer, so its state dicts load strictly. Every layer shares one tensor; it is
        # read only when a chunk of several tokens follows a KV cache.
        self.register_buffer("mask", mask)

    def qkv(self, x):
        """(B, T, E) -> three (B, T, E): one matmul when the projections are plain Linears."""
        lins = (self.W_query, self.W_key, self.W_value)
        if not FUSE_QKV or x.shape[0] * x.shape[1] < 64 or not all(type(lin) is nn.Linear for lin in lins):
            # LoRA-wrapped or int8 projections call each one; so does decoding, where a few rows
            # make the matmuls read the weights anyway and the concatenation would only add copying.
            return tuple(lin(x) for lin in lins)
        # Concatenating three (E, E) weights copies 3*E*E floats; the one (E, 3E) matmul that
        # follows reads x once instead of three times and keeps the BLAS kernel busier.
        weight = torch.cat([lin.weight for lin in lins])  # (3E, E)
        bias = None if lins[0].bias is None else torch.cat([lin.bias for lin in lins])  # (3E,)
        return F.linear(x, weight, bias).chunk(3, dim=-1)

    def padded_mask(self, pad, start, t):
        """(B, 1, T, S) True where a query may attend: causal, past the row's padding, or itself."""
        s = start + t
        causal = self.mask[start:s, :s] == 0  # (T, S)
        real = torch.arange(s, device=pad.device)[None, :] >= pad[:, None]  # (B, S)
        # A padding query would see no key at all (softmax over nothing is NaN): let it see itself.
        itself = torch.arange(s, device=pad.device)[None, :] == torch.arange(start, s, device=pad.device)[:, None]
        return ((causal & real[:, None, :]) | itself)[:, None]  # (B, 1, T, S)

    def forward(self, x, kv_cache=None):
        b, t, e = x.shape
        q, k, v = (z.view(b, t, self.n_heads, self.head_dim).transpose(1, 2) for z in self.qkv(x))  # (B, H, T, hd)

        start = 0
        if kv_cache is not None:
            start = kv_cache.length  # absolute position of the first new token
            k, v = kv_cache.update(k, v)  # (B, H, S, hd) with S = start + T

        # is_causal aligns the triangle top-left, right only when queries and keys start together.
        # After a cache one new token sees every key; several new tokens need the absolute-position
        # rows of the book's mask; left-padded prompts also hide each row's padding.
        attn_mask = None
        pad = getattr(kv_cache, "pad", None)  # (B,) padding tokens per row, or None
        if pad is not None:
            attn_mask = self.padded_mask(pad, start, t)  # (B, 1, T, S)
        elif start > 0 and t > 1:
            attn_mask = self.mask[start:start + t, :start + t] == 0  # (T, S): True where allowed
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask,
            dropout_p=self.dropout.p if self.training else 0.0,
            is_causal=attn_mask is None and start == 0 and t > 1,
        )  # (B, H, T, hd), scaled by 1/sqrt(hd) as in the book
        y = y.transpose(1, 2).reshape(b, t, e)  # (B, T, E)
        return self.out_proj(y)


class FeedForward(nn.Module):
    """emb_dim -> 4*emb_dim -> GELU (tanh approximation, fused) -> emb_dim; the book's ``layers``."""

    def __init__(self, e):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(e, 4 * e), nn.GELU(approximate="tanh"), nn.Linear(4 * e, e))

    def forward(self, x):
        return self.layers(x)


class TransformerBlock(nn.Module):
    """Pre-norm block: x + att(norm1(x)), then x + ff(norm2(x)); the book's names and order."""

    def __init__(self, cfg: GPTConfig, mask: torch.Tensor):
        super().__init__()
        e = cfg.emb_dim
        self.att = CausalSelfAttention(cfg, mask)
        self.ff = FeedForward(e)
        self.norm1 = LayerNorm(e)
        self.norm2 = LayerNorm(e)
        self.drop_shortcut = nn.Dropout(cfg.drop_rate)

    def forward(self, x, kv_cache=None):
        x = x + self.drop_shortcut(self.att(self.norm1(x), kv_cache=kv_cache))  # (B, T, E)
        return x + self.drop_shortcut(self.ff(self.norm2(x)))  # (B, T, E)


class GPT(nn.Module):
    """GPT-2-style decoder: (B, T) ids -> (B, T, vocab) logits, or the mean loss given ``targets``."""

    def __init__(self, cfg: Mapping[str, Any] | GPTConfig):
        super().__init__()
        self.config = cfg if isinstance(cfg, GPTConfig) else GPTConfig.from_cfg(cfg)
        c = self.config
        self.tok_emb = nn.Embedding(c.vocab_size, c.emb_dim)
        self.pos_emb = nn.Embedding(c.context_length, c.emb_dim)
        self.drop_emb = nn.Dropout(c.drop_rate)
        mask = torch.triu(torch.ones(c.context_length, c.context_length), diagonal=1)
        # ModuleList keeps the book's keys (trf_blocks.N...) and lets forward loop with a cache.
        self.trf_blocks = nn.ModuleList([TransformerBlock(c, mask) for _ in range(c.n_layers)])
        self.final_norm = LayerNorm(c.emb_dim)
        self.out_head = nn.Linear(c.emb_dim, c.vocab_size, bias=False)
        if c.tie_weights:
            self.out_head.weight = self.tok_emb.weight  # (V, E), one tensor, two names in the state dict
            # The book's N(0, 1) embedding as a head gives logits of std ~sqrt(emb_dim) and a first
            # loss far above ln(vocab); GPT-2 started its tied matrix at N(0, 0.02).
            nn.init.normal_(self.tok_emb.weight, std=0.02)
            self._register_load_state_dict_pre_hook(self._check_tied)

    @property
    def context_length(self) -> int:
        return self.pos_emb.num_embeddings

    def _check_tied(self, state_dict, prefix, *args):
        emb, head = state_dict.get(prefix + "tok_emb.weight"), state_dict.get(prefix + "out_head.weight")
        if emb is not None and head is not None and emb is not head and not torch.equal(emb, head):
            raise LLMKitError(
                "this state dict has an out_head different from tok_emb, but the model ties them; "
                "build it with cfg['tie_weights']=False to load it."
            )

    def hidden(self, in_idx, kv_cache=None):
        """(B, T) ids -> (B, T, E) hidden states after the final norm."""
        b, t = in_idx.shape
        start = 0 if kv_cache is None else kv_cache.offset
        if start + t > self.context_length:
            raise LLMKitError(
                f"The input has {start + t} tokens but the model's context_length is {self.context_length}; "
                f"keep only the last {self.context_length}: idx[:, -{self.context_length}:]."
            )
        pos = torch.arange(start, start + t, device=in_idx.device)  # (T,)
        pad = getattr(kv_cache, "pad", None)
        if pad is not None:  # left-padded prompts: each row's positions start where its prompt does
            pos = (pos[None, :] - pad[:, None]).clamp(min=0)  # (B, T)
        x = self.drop_emb(self.tok_emb(in_idx) + self.pos_emb(pos))  # (B, T, E)
        layers = [None] * len(self.trf_blocks) if kv_cache is None else kv_cache.layers
        for block, layer_cache in zip(self.trf_blocks, layers):
            x = block(x, kv_cache=layer_cache)
        return self.final_norm(x)

    def forward(self, in_idx, targets=None, kv_cache=None, ignore_index=IGNORE_INDEX):
        x = self.hidden(in_idx, kv_cache)  # (B, T, E)
        if targets is None:
            return self.out_head(x)  # (B, T, V)
        head = self.out_head
        if type(head) is not nn.Linear or head.bias is not None:  # a replaced head: the plain loss
            return reference_loss(head(x), targets, ignore_index)
        return linear_cross_entropy(x.flatten(0, 1), head.weight, targets.flatten(),
                                    self.config.loss_chunk_rows, ignore_index,
                                    self.config.loss_softmax_rows)  # () mean loss


def configure_optimizer(model: nn.Module, lr: float = 4e-4, weight_decay: float = 0.1,
                        betas=(0.9, 0.95), fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW where matrices decay and biases/norms do not, with the fused kernel where torch has it.

    The fused step updates all four state tensors of a parameter in one pass (the default
    ``foreach`` kernel makes about ten passes), which matters on a CPU where the optimizer step is
    pure memory traffic. ``fused=None`` picks it whenever this torch supports it for the device.
    """
    decay, no_decay = [], []
    for p in model.parameters():  # parameters() yields a tied weight once
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if fused is None:
        fused = "fused" in inspect.signature(torch.optim.AdamW).parameters and all(
            p.device.type in ("cpu", "cuda", "mps", "xpu") for p in decay + no_decay)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, **({"fused": True} if fused else {}))
