"""Stage 7: parameter-efficient fine-tuning with low-rank adaptation (LoRA).

A frozen ``nn.Linear`` computes ``x @ W.T + b``. LoRA learns a correction of rank ``r``:

    y = linear(x) + (alpha / r) * (x @ A @ B)        A: (in_dim, r)   B: (r, out_dim)

``B`` starts at zero, so a freshly wrapped model computes exactly what the base model computed;
training then moves only ``A`` and ``B`` (``r * (in_dim + out_dim)`` numbers per layer instead of
``in_dim * out_dim``). The book's names are ``LoRALayer``, ``LinearWithLoRA`` and
``replace_linear_with_lora`` (``freeze_and_add_lora`` freezes first, the book's recipe); the kit
adds ``apply_lora`` (choose which layers), ``merge_lora`` (fold the update back into plain
``nn.Linear`` layers for export) and ``count_trainable``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from llmkit.errors import LLMKitError

ATTENTION_LINEARS = ("W_query", "W_key", "W_value", "out_proj")
LORA_TARGETS = ("attention", "attention+mlp", "all")


def check_rank_alpha(rank, alpha):
    """Reject ranks and scales that would make the update empty, negative or undefined."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank <= 0:
        raise LLMKitError(f"LoRA rank must be a positive integer, got {rank!r}; pass e.g. rank=16.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise LLMKitError(
            f"LoRA alpha must be a positive number, got {alpha!r}; pass e.g. alpha=16 (often alpha = rank)."
        )


class LoRALayer(nn.Module):
    """The low-rank update ``alpha / rank * (x @ A @ B)``: (..., in_dim) -> (..., out_dim)."""

    def __init__(self, in_dim, out_dim, rank, alpha):
        super().__init__()
        check_rank_alpha(rank, alpha)
        # A first, then B: with a fixed seed the random A values match the book's.
        self.A = nn.Parameter(torch.empty(in_dim, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # same spread nn.Linear gives its weights
        self.B = nn.Parameter(torch.zeros(rank, out_dim))  # zero: the update starts as a no-op
        self.rank = rank
        self.alpha = alpha
        self.scaling = alpha / rank  # keeps the update's size steady when the rank changes

    def forward(self, x):
        return self.scaling * (x @ self.A @ self.B)  # (..., in) @ (in, r) @ (r, out) -> (..., out)

    def delta_weight(self):
        """The update as an ``nn.Linear`` weight: (out_dim, in_dim)."""
        return (self.scaling * (self.A @ self.B)).T


class LinearWithLoRA(nn.Module):
    """A (usually frozen) ``nn.Linear`` plus a trainable ``LoRALayer`` beside it."""

    def __init__(self, linear, rank, alpha):
        super().__init__()
        self.linear = linear
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)
        # Built on the CPU (so a seed gives the book's A), then moved next to the weights it adapts.
        self.lora.to(device=linear.weight.device, dtype=linear.weight.dtype)

    def forward(self, x):
        return self.linear(x) + self.lora(x)

    def merged_linear(self):
        """A plain ``nn.Linear`` computing the same function: W + delta, same bias."""
        with torch.no_grad():
            merged = copy.deepcopy(self.linear)
            delta = self.lora.delta_weight().to(merged.weight.dtype)
            merged.weight.add_(delta)
        return merged


def replace_linear_with_lora(model, rank, alpha):
    """Wrap every ``nn.Linear`` inside ``model`` (recursively, in place) with ``LinearWithLoRA``."""
    for name, module in model.named_children():
        if isinstance(module, nn.Linear):
            setattr(model, name, LinearWithLoRA(module, rank, alpha))
        elif not isinstance(module, LinearWithLoRA):  # never wrap an adapted layer a second time
            replace_linear_with_lora(module, rank, alpha)
    return model


def freeze_and_add_lora(model, rank, alpha):
    """The book's recipe in one call: freeze every parameter, then wrap each ``nn.Linear`` with LoRA.

    Freezing comes first, so only the new ``A`` and ``B`` matrices train; returns ``model``.
    """
    for param in model.parameters():
        param.requires_grad = False
    return replace_linear_with_lora(model, rank, alpha)


# --------------------------------------------------------------------------- kit extras


def _is_target(path, target):
    """Does the ``nn.Linear`` at dotted ``path`` belong to ``target``?"""
    parts = path.split(".")
    in_attention = parts[-1] in ATTENTION_LINEARS
    if target == "attention":
        return in_attention
    if target == "attention+mlp":
        return in_attention or "ff" in parts[:-1]  # the block's FeedForward lives under ``ff``
    return True  # "all": every nn.Linear, the output head included


def lora_target_paths(model, target="all"):
    """Dotted names of the ``nn.Linear`` layers that ``apply_lora(model, ..., target)`` would wrap."""
    if target not in LORA_TARGETS:
        raise LLMKitError(f"Unknown LoRA target {target!r}; choose one of: {', '.join(LORA_TARGETS)}.")
    paths = []

    def walk(module, prefix):
        for name, child in module.named_children():
            path = f"{prefix}{name}"
            if isinstance(child, nn.Linear):
                if _is_target(path, target):
                    paths.append(path)
            elif not isinstance(child, LinearWithLoRA):
                walk(child, path + ".")

    walk(model, "")
    return paths


def apply_lora(model, rank, alpha, target="all"):
    """Wrap the ``nn.Linear`` layers chosen by ``target`` with LoRA, in place; returns ``model``.

    ``target``: ``"attention"`` (W_query, W_key, W_value, out_proj), ``"attention+mlp"`` (also the
    FeedForward layers) or ``"all"`` (every ``nn.Linear``, as ``replace_linear_with_lora`` does).
    Layers are visited in the same order as the book's function, so ``target="all"`` with the same
    seed gives the same ``A`` values. Like the book, this does not freeze anything: freeze first.
    """
    check_rank_alpha(rank, alpha)
    paths = lora_target_paths(model, target)
    if not paths:
        wanted = "/".join(ATTENTION_LINEARS) if target.startswith("attention") else "nn.Linear"
        raise LLMKitError(
            f"LoRA target {target!r} found no {wanted} layer in {type(model).__name__}; "
            f"use target='all' or a model with the book's attention names."
        )
    for path in paths:
        parent_path, _, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        setattr(parent, name, LinearWithLoRA(getattr(parent, name), rank, alpha))
    return model


def merge_lora(model, inplace=True):
    """Fold every LoRA update into its linear layer, leaving plain ``nn.Linear`` modules.

    The merged model has the base architecture (its state dict loads into ``GPTModel``) and gives
    the same outputs. ``inplace=False`` merges a deep copy and leaves ``model`` as it was, ready to
    keep training; that copy is the kit's answer to "unmerge".
    """
    target = model if inplace else copy.deepcopy(model)
    if isinstance(target, LinearWithLoRA):
        return target.merged_linear()

    def walk(module):
        for name, child in module.named_children():
            if isinstance(child, LinearWithLoRA):
                setattr(module, name, child.merged_linear())
            else:
                walk(child)

    walk(target)
    return target


def count_trainable(model):
    """(trainable, total) parameter counts; trainable means ``requires_grad``."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def trainable_report(model):
    """One line for a notebook: ``trainable 2,666,528 of 127,107,874 parameters (2.10%)``."""
    trainable, total = count_trainable(model)
    share = 100.0 * trainable / total if total else 0.0
    return f"trainable {trainable:,} of {total:,} parameters ({share:.2f}%)"
