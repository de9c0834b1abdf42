"""A BERT-style encoder: bidirectional attention with a padding mask, [CLS] pooling and an MLM head.

    ids (B, T) -> tok_emb + pos_emb + type_emb -> emb_norm -> n_layers x EncoderBlock -> hidden (B, T, E)
    EncoderBlock (post-norm, as BERT):  x = norm1(x + att(x, mask));  x = norm2(x + ff(x))

What the head reads depends on the head, so the kit's fine-tuning strategies work unchanged:

- the MLM head (``MLMHead``, the one the model is built with) and an ``nn.Identity`` (what the
  ``feature-extraction`` strategy puts there) read every token: (B, T, vocab) or (B, T, E);
- any other head (the ``Linear(E, classes)`` a strategy swaps in, LoRA-wrapped or not) reads the pooled
  sequence, ``[CLS]``'s state (``pool="cls"``) or the mean over non-padding tokens (``pool="mean"``),
  repeated at every position (B, T, classes), so the kit's last-position classification reads it.

The module names are the book's where the strategies look for them (``tok_emb``, ``pos_emb``,
``trf_blocks`` with ``att``/``ff``, ``final_norm``, ``out_head``; ``W_query``/``W_key``/``W_value``/
``out_proj`` for LoRA's attention targets). BERT normalises after each sub-layer, so ``final_norm`` is
an identity kept for the strategies. ``from_pretrained(folder)`` reads a Hugging Face BERT checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from llmkit.config import check_gpt_config
from llmkit.errors import LLMKitError


@dataclass
class EncoderConfig:
    """The book's cfg dict (``n_heads`` ... ``qkv_bias``) plus the encoder's own keys."""

    vocab_size: int = 30522
    context_length: int = 512
    emb_dim: int = 768
    n_heads: int = 12
    n_layers: int = 12
    drop_rate: float = 0.1
    qkv_bias: bool = True  # BERT has biases on every projection
    ff_dim: int = 0  # 0: 4 * emb_dim
    type_vocab_size: int = 2  # segment A / B embeddings
    norm_eps: float = 1e-12
    pad_token_id: int | None = None  # None: no padding mask unless forward gets attention_mask
    pool: str = "cls"  # what a classification head reads: "cls" or "mean"
    tie_weights: bool = True  # the MLM head's output matrix is tok_emb.weight

    @classmethod
    def from_cfg(cls, cfg: Mapping[str, Any]) -> "EncoderConfig":
        check_gpt_config(cfg)
        names = {f.name for f in fields(cls)}
        extra = sorted(set(cfg) - names - {"attention", "attention_options"})
        if extra:
            raise LLMKitError(f"model 'bert' has no config key(s) {extra}; its keys are: {', '.join(sorted(names))}.")
        if cfg.get("attention") not in (None, "mha") or cfg.get("attention_options"):
            raise LLMKitError("model 'bert' computes its own bidirectional attention; drop model.attention "
                              "(attention plugins are causal, for decoders).")
        config = cls(**{k: v for k, v in cfg.items() if k in names})
        if config.pool not in ("cls", "mean"):
            raise LLMKitError(f"pool must be 'cls' or 'mean', got {config.pool!r}.")
        return config


class BidirectionalAttention(nn.Module):
    """Multi-head self-attention where every token sees every non-padding token: (B, T, E) -> (B, T, E)."""

    def __init__(self, emb_dim: int, n_heads: int, dropout: float, qkv_bias: bool):
        super().__init__()
        self.n_heads, self.head_dim, self.dropout = n_heads, emb_dim // n_heads, dropout
        self.W_query = nn.Linear(emb_dim, emb_dim, bias=qkv_bias)
        self.W_key = nn.Linear(emb_dim, emb_dim, bias=qkv_bias)
        self.W_value = nn.Linear(emb_dim, emb_dim, bias=qkv_bias)
        self.out_proj = nn.Linear(emb_dim, emb_dim)

    def forward(self, x, mask=None):
        B, T, E = x.shape
        q, k, v = (w(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
                   for w in (self.W_query, self.W_key, self.W_value))
        # mask: (B, T) True for real tokens -> (B, 1, 1, T): every query may look at every real key.
        attn_mask = None if mask is None else mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, D)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, E))


class FeedForward(nn.Module):
    """BERT's MLP: Linear(E, F) -> GELU (exact erf) -> Linear(F, E)."""

    def __init__(self, emb_dim: int, ff_dim: int):
        super().__init__()
        self.up = nn.Linear(emb_dim, ff_dim)
        self.down = nn.Linear(ff_dim, emb_dim)

    def forward(self, x):
        return self.down(F.gelu(self.up(x)))  # (B, T, E)


class EncoderBlock(nn.Module):
    def __init__(self, c: EncoderConfig):
        super().__init__()
        self.att = BidirectionalAttention(c.emb_dim, c.n_heads, c.drop_rate, c.qkv_bias)
        self.norm1 = nn.LayerNorm(c.emb_dim, eps=c.norm_eps)
        self.ff = FeedForward(c.emb_dim, c.ff_dim or 4 * c.emb_dim)
        self.norm2 = nn.LayerNorm(c.emb_dim, eps=c.norm_eps)
        self.drop = nn.Dropout(c.drop_rate)

    def forward(self, x, mask=None):
        x = self.norm1(x + self.drop(self.att(x, mask=mask)))  # keyword: an adapter wrapper passes it on
        return self.norm2(x + self.drop(self.ff(x)))  # (B, T, E)


class MLMHead(nn.Linear):
    """Predicts the hidden tokens: transform (Linear, GELU, LayerNorm) then Linear(E, vocab).

    A subclass of ``nn.Linear`` (its ``weight`` is the output matrix, tied to ``tok_emb``), so the
    strategies that look for an ``nn.Linear`` ``out_head`` find one to replace.
    """

    def __init__(self, emb_dim: int, vocab_size: int, eps: float):
        super().__init__(emb_dim, vocab_size)
        self.transform = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.GELU(), nn.LayerNorm(emb_dim, eps=eps))

    def forward(self, x):
        return super().forward(self.transform(x))  # (B, T, E) -> (B, T, vocab)


def reads_tokens(head: nn.Module) -> bool:
    """True for heads that read every position (MLM, features); False for a sequence classifier."""
    head = getattr(head, "linear", head)  # a LoRA-wrapped head
    return isinstance(head, (MLMHead, nn.Identity))


class Encoder(nn.Module):
    """BERT-style encoder: bidirectional, padding-masked, [CLS] pooling, MLM head (model ``bert``)."""

    supports_kv_cache = False  # every position depends on every other one: nothing to cache
    causal = False

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        c = self.config = EncoderConfig.from_cfg(cfg)
        self.context_length = c.context_length
        self.tok_emb = nn.Embedding(c.vocab_size, c.emb_dim)
        self.pos_emb = nn.Embedding(c.context_length, c.emb_dim)
        self.type_emb = nn.Embedding(c.type_vocab_size, c.emb_dim)
        self.emb_norm = nn.LayerNorm(c.emb_dim, eps=c.norm_eps)
        self.drop_emb = nn.Dropout(c.drop_rate)
        self.trf_blocks = nn.ModuleList(EncoderBlock(c) for _ in range(c.n_layers))
        self.final_norm = nn.Identity()  # post-norm blocks already end normalised; here for the strategies
        self.out_head = MLMHead(c.emb_dim, c.vocab_size, c.norm_eps)
        self.apply(self._init)
        if c.tie_weights:
            self.out_head.weight = self.tok_emb.weight

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)  # BERT's initializer_range
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def padding_mask(self, idx, attention_mask=None):
        """(B, T) bool, True for real tokens: ``attention_mask`` if given, else ``idx != pad_token_id``."""
        if attention_mask is not None:
            return attention_mask.bool()
        pad = self.config.pad_token_id
        if pad is None:
            return None
        mask = idx != pad
        return mask | ~mask.any(dim=1, keepdim=True)  # a row of padding only: let it see itself, not NaN

    def encode(self, idx, attention_mask=None, token_type_ids=None):
        """(B, T) ids -> (B, T, E) final hidden states (what ``transformers``' ``last_hidden_state`` holds)."""
        B, T = idx.shape
        if T > self.context_length:
            raise LLMKitError(f"input has {T} tokens, more than context_length {self.context_length}; "
                              f"cut it to the last {self.context_length} (or build the model with a longer context).")
        mask = self.padding_mask(idx, attention_mask)
        types = torch.zeros_like(idx) if token_type_ids is None else token_type_ids
        pos = torch.arange(T, device=idx.device)
        x = self.drop_emb(self.emb_norm(self.tok_emb(idx) + self.pos_emb(pos) + self.type_emb(types)))  # (B, T, E)
        for block in self.trf_blocks:
            x = block(x, mask=mask)
        return self.final_norm(x)

    def pooled(self, hidden, mask=None):
        """(B, T, E) -> (B, E): [CLS]'s state, or the mean over real tokens."""
        if self.config.pool == "cls":
            return hidden[:, 0]
        if mask is None:
            return hidden.mean(dim=1)
        keep = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)

    def forward(self, idx, attention_mask=None, token_type_ids=None):
        hidden = self.encode(idx, attention_mask, token_type_ids)  # (B, T, E)
        if reads_tokens(self.out_head):
            return self.out_head(hidden)  # (B, T, vocab) MLM logits, or (B, T, E) features
        pooled = self.pooled(hidden, self.padding_mask(idx, attention_mask))  # (B, E)
        return self.out_head(pooled).unsqueeze(1).expand(-1, idx.shape[1], -1)  # (B, T, classes)

    @classmethod
    def from_pretrained(cls, path, pool: str = "mean"):
        """``(model, cfg)`` from a Hugging Face BERT folder (model.safetensors + config.json)."""
        from .pretrained import load_bert

        model, cfg, _ = load_bert(path, pool=pool)
        return model, cfg


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
