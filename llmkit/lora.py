"""Low-rank adaptation for the ``lora`` fine-tuning strategy: a frozen linear layer plus ``B @ A``.

    y = linear(x) + (alpha / rank) * (x @ A @ B)        A: (in, rank)   B: (rank, out), zeros at first

``B`` starts at zero, so a freshly wrapped model computes exactly what it computed before. The
parameter names (``linear.weight``, ``lora.A``, ``lora.B``) and the order in which layers are
wrapped follow the book's ``LinearWithLoRA``, so with the same seed the same ``A`` values are drawn.
The book's version is the stage-7 exercise; this one is what the kit uses.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import LLMKitError

ATTENTION_LINEARS = ("W_query", "W_key", "W_value", "out_proj")
TARGETS = ("attention", "attention+mlp", "all")


def check_rank_alpha(rank, alpha) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise LLMKitError(f"LoRA rank must be a positive integer, got {rank!r}; pass e.g. rank=8.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise LLMKitError(f"LoRA alpha must be a positive number, got {alpha!r}; pass e.g. alpha=16.")


class LowRank(nn.Module):
    """The update ``alpha / rank * (x @ A @ B)``: (..., in) -> (..., out)."""

    def __init__(self, in_dim: int, out_dim: int, rank: int, alpha: float):
        super().__init__()
        self.A = nn.Parameter(torch.empty(in_dim, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # the spread nn.Linear gives its weights
        self.B = nn.Parameter(torch.zeros(rank, out_dim))
        self.scaling = alpha / rank  # keeps the update's size steady when the rank changes

    def forward(self, x):
        return self.scaling * (x @ self.A @ self.B)  # (..., in) @ (in, r) @ (r, out)


class LoRALinear(nn.Module):
    """A (frozen) ``nn.Linear`` with a trainable low-rank update beside it."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.linear = linear
        # Drawn on the CPU in fp32 (so a seed gives the same A anywhere), then placed beside the weights.
        self.lora = LowRank(linear.in_features, linear.out_features, rank, alpha)
        self.lora.to(device=linear.weight.device, dtype=linear.weight.dtype)

    def forward(self, x):
        return self.linear(x) + self.lora(x)


def _is_target(path: str, target: str) -> bool:
    parts = path.split(".")
    in_attention = parts[-1] in ATTENTION_LINEARS
    if target == "attention":
        return in_attention
    if target == "attention+mlp":
        return in_attention or "ff" in parts[:-1]  # a block's FeedForward lives under ``ff``
    return True  # all: every nn.Linear, the output head included


def target_paths(model: nn.Module, target: str = "all") -> list[str]:
    """Dotted names of the ``nn.Linear`` layers ``apply_lora`` would wrap, in the book's order."""
    if target not in TARGETS:
        raise LLMKitError(f"Unknown LoRA target {target!r}; choose one of: {', '.join(TARGETS)}.")
    paths = []

    def walk(module, prefix):
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                if _is_target(prefix + name, target):
                    paths.append(prefix + name)
            elif not isinstance(child, LoRALinear):  # never wrap an adapted layer twice
                walk(child, f"{prefix}{name}.")

    walk(model, "")
    return paths


def apply_lora(model: nn.Module, rank: int, alpha: float, target: str = "all") -> list[str]:
    """Wrap the chosen ``nn.Linear`` layers in place (freeze first: this freezes nothing); return their names."""
    check_rank_alpha(rank, alpha)
    paths = target_paths(model, target)
    for path in paths:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, name, LoRALinear(getattr(parent, name), rank, alpha))
    return paths
