"""Checks for the book's model config dict, so a typo fails with one line instead of deep in torch."""

from __future__ import annotations

from typing import Any, Mapping

from .errors import LLMKitError

GPT_CONFIG_KEYS = {
    "vocab_size": int,
    "context_length": int,
    "emb_dim": int,
    "n_heads": int,
    "n_layers": int,
    "drop_rate": (int, float),
    "qkv_bias": bool,
}

# Keys the kit adds beside the book's; GPTModel(cfg) keeps its signature.
OPTIONAL_KEYS = {"attention": str, "attention_options": dict}

EXAMPLE = {
    "vocab_size": 50257, "context_length": 1024, "emb_dim": 768, "n_heads": 12,
    "n_layers": 12, "drop_rate": 0.1, "qkv_bias": False,
}


def check_gpt_config(cfg: Mapping[str, Any]) -> None:
    """Raise ``LLMKitError`` naming the first problem in ``cfg`` and how to fix it."""
    if not isinstance(cfg, Mapping):
        raise LLMKitError(
            f"cfg must be a dict like GPT_CONFIG_124M, got {type(cfg).__name__}."
        )
    for key, kind in GPT_CONFIG_KEYS.items():
        if key not in cfg:
            raise LLMKitError(
                f"cfg is missing '{key}'; add it (GPT_CONFIG_124M uses {key}={EXAMPLE[key]!r})."
            )
        value = cfg[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise LLMKitError(
                f"cfg['{key}'] must be {getattr(kind, '__name__', 'a number')}, got {value!r}."
            )
    for key in ("vocab_size", "context_length", "emb_dim", "n_heads", "n_layers"):
        if cfg[key] <= 0:
            raise LLMKitError(f"cfg['{key}'] must be positive, got {cfg[key]}.")
    if cfg["emb_dim"] % cfg["n_heads"]:
        raise LLMKitError(
            f"emb_dim ({cfg['emb_dim']}) must be divisible by n_heads ({cfg['n_heads']}); "
            f"change one of them, e.g. emb_dim={cfg['n_heads'] * max(1, cfg['emb_dim'] // cfg['n_heads'])}."
        )
    if not 0.0 <= cfg["drop_rate"] < 1.0:
        raise LLMKitError(f"cfg['drop_rate'] must be in [0, 1), got {cfg['drop_rate']}.")
    for key, kind in OPTIONAL_KEYS.items():
        if key in cfg and not isinstance(cfg[key], kind):
            raise LLMKitError(f"cfg['{key}'] must be a {kind.__name__}, got {cfg[key]!r}.")


def check_attention_args(d_in: int, d_out: int, num_heads: int) -> None:
    if num_heads <= 0:
        raise LLMKitError(f"num_heads must be positive, got {num_heads}.")
    if d_out % num_heads:
        raise LLMKitError(
            f"d_out ({d_out}) must be divisible by num_heads ({num_heads}); "
            f"pick d_out as a multiple of num_heads, e.g. {num_heads * max(1, d_out // num_heads)}."
        )
