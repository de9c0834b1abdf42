"""Sequence models other than the Transformer, with the GPT's interface: ``rnn``, ``lstm`` and ``ssm``.

    ids (B, T) -> tok_emb -> n_layers x [x + att(norm1(x)); x + ff(norm2(x))] -> final_norm -> out_head -> (B, T, vocab)

The blocks are the GPT's with the attention swapped for a recurrent *sequence mixer*: an Elman RNN
(``nn.RNN``, tanh), an LSTM (``nn.LSTM``) or a selective state space (``ssm.SelectiveSSM``). Each
reads left to right, so the models are causal by construction and need no position embedding.
The mixer keeps the name ``att`` and the MLP ``ff``, the names the kit's fine-tuning strategies
(adapter, lora, classification) look for, so every strategy applies unchanged.

They take the book's cfg dict (``n_heads`` is checked, as for the GPT, and otherwise unused) and
declare ``context_length``: the longest input the kit feeds them. Decoding one token a step carries
the recurrent state in ``RecurrentState`` (the kit's kv-cache decoder asks ``new_kv_cache()``), so
generation costs one step per token and gives the same ids as recomputing the window.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from llmkit.config import check_gpt_config
from llmkit.errors import LLMKitError

from .ssm import SelectiveSSM

MIXERS = ("rnn", "lstm", "ssm")


class RecurrentState:
    """What a recurrent model carries between calls: one state per block and the tokens seen (``offset``)."""

    def __init__(self, n_layers: int):
        self.layers: list[Any] = [None] * n_layers
        self.offset = 0

    def reset(self) -> None:
        self.layers = [None] * len(self.layers)
        self.offset = 0


class Slot:
    """Where a mixer finds its state and leaves the next one (the forward itself returns only (B, T, E),
    so an adapter strategy can wrap the mixer like an attention)."""

    def __init__(self, value=None):
        self.value = value


class Mixer(nn.Module):
    """One recurrent sequence mixer: (B, T, E) -> (B, T, E), its state read from and written to ``slot``."""

    def __init__(self, kind: str, emb_dim: int, ssm_state: int = 16):
        super().__init__()
        self.kind = kind
        if kind == "rnn":
            self.cell = nn.RNN(emb_dim, emb_dim, batch_first=True, nonlinearity="tanh")
        elif kind == "lstm":
            self.cell = nn.LSTM(emb_dim, emb_dim, batch_first=True)
        else:
            self.cell = SelectiveSSM(emb_dim, state_dim=ssm_state)
        self.out_proj = nn.Linear(emb_dim, emb_dim) if kind != "ssm" else nn.Identity()

    def forward(self, x, slot: Slot | None = None):
        out, state = self.cell(x, slot.value if slot is not None else None)  # (B, T, E)
        if slot is not None:
            slot.value = state
        return self.out_proj(out)


class Block(nn.Module):
    def __init__(self, kind: str, emb_dim: int, drop_rate: float, ff_mult: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(emb_dim)
        self.att = Mixer(kind, emb_dim)
        self.norm2 = nn.LayerNorm(emb_dim)
        self.ff = nn.Sequential(nn.Linear(emb_dim, ff_mult * emb_dim), nn.GELU(approximate="tanh"),
                                nn.Linear(ff_mult * emb_dim, emb_dim)) if ff_mult else nn.Identity()
        self.drop = nn.Dropout(drop_rate)
        self.has_ff = bool(ff_mult)

    def forward(self, x, state=None):
        slot = Slot(state)
        x = x + self.drop(self.att(self.norm1(x), slot=slot))
        if self.has_ff:
            x = x + self.drop(self.ff(self.norm2(x)))
        return x, slot.value


class RecurrentLM(nn.Module):
    """A language model whose blocks mix tokens with a recurrence instead of attention."""

    kind = "lstm"
    supports_kv_cache = True  # the "cache" is the recurrent state

    def __init__(self, cfg: Mapping[str, Any]):
        super().__init__()
        check_gpt_config(cfg)
        extra = sorted(set(cfg) - {"vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate",
                                   "qkv_bias", "attention", "attention_options", "ff_mult"})
        if extra:
            raise LLMKitError(f"model '{self.kind}' has no config key(s) {extra}; it takes the book's keys and ff_mult.")
        if cfg.get("attention") not in (None, "mha") or cfg.get("attention_options"):
            raise LLMKitError(f"model '{self.kind}' has no attention to swap; drop model.attention "
                              "(or choose model gpt-book).")
        self.cfg = dict(cfg)
        self.context_length = cfg["context_length"]
        e = cfg["emb_dim"]
        self.tok_emb = nn.Embedding(cfg["vocab_size"], e)
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.ModuleList(Block(self.kind, e, cfg["drop_rate"], cfg.get("ff_mult", 4))
                                        for _ in range(cfg["n_layers"]))
        self.final_norm = nn.LayerNorm(e)
        self.out_head = nn.Linear(e, cfg["vocab_size"], bias=False)

    def new_kv_cache(self) -> RecurrentState:
        return RecurrentState(len(self.trf_blocks))

    def forward(self, idx, kv_cache: RecurrentState | None = None):
        B, T = idx.shape
        seen = kv_cache.offset if kv_cache is not None else 0
        if seen + T > self.context_length:
            raise LLMKitError(f"input has {seen + T} tokens, more than context_length {self.context_length}; "
                              f"keep the last {self.context_length} (or build the model with a longer context).")
        x = self.drop_emb(self.tok_emb(idx))  # (B, T, E)
        for i, block in enumerate(self.trf_blocks):
            state = kv_cache.layers[i] if kv_cache is not None else None
            x, state = block(x, state)
            if kv_cache is not None:
                kv_cache.layers[i] = state
        if kv_cache is not None:
            kv_cache.offset += T
        return self.out_head(self.final_norm(x))  # (B, T, vocab)


class RNNLM(RecurrentLM):
    """Elman RNN language model (tanh recurrence in each block), the GPT's interface."""

    kind = "rnn"


class LSTMLM(RecurrentLM):
    """LSTM language model (gated recurrence in each block), the GPT's interface."""

    kind = "lstm"


class SSMLM(RecurrentLM):
    """Selective state-space (Mamba-style) language model, plain PyTorch with a sequential scan."""

    kind = "ssm"


MODELS = {"rnn": RNNLM, "lstm": LSTMLM, "ssm": SSMLM}
