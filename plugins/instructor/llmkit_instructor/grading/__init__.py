"""Grading helpers for the course's hidden tests: compare a student's component with the reference.

Principles:
- Grade behaviour, not our implementation. Weights move from the student's module into the
  reference by parameter name, else by splitting a fused QKV projection, else by shape order, so a
  correct solution written differently earns full marks wherever the book's interface holds.
- Name the likely mistake. When the outputs differ, the student's output is compared with
  known-wrong variants (no 1/sqrt(d_k) scaling, a shifted mask, ...); the closest one names the fix.
- Integrity: a graded object must be written in the notebook, not imported, re-exported, subclassed
  or wrapped from the reference solutions; otherwise it earns no points.

Each stage's checks live in a submodule (``llmkit_instructor.grading.attention`` ...) and are one call in a
hidden test cell, e.g. ``check_multi_head_attention(MultiHeadAttention)``.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import types
from typing import Any, Callable, Iterable

import torch

# The integrity helpers live beside the notebooks' own code; grading re-exports them.
from llmkit.exercise import REFERENCE_MODULES, GradingError, assert_defined_in_notebook  # noqa: F401
from llmkit.i18n.runtime import _

TOLERANCES = {torch.float32: (1e-5, 1e-4), torch.float64: (1e-9, 1e-7), torch.bfloat16: (1e-2, 1e-2),
              torch.float16: (1e-3, 1e-3)}


def tolerance(dtype: torch.dtype) -> tuple[float, float]:
    return TOLERANCES.get(dtype, (1e-5, 1e-4))


def close(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return False
    atol, rtol = tolerance(b.dtype)
    return torch.allclose(a.to(b.dtype), b, atol=atol, rtol=rtol, equal_nan=True)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item() if a.shape == b.shape else float("inf")


# --------------------------------------------------------------------------- weights


def _params(module: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return list(module.named_parameters())


def _copy_by_name(source, target) -> bool:
    src, dst = dict(_params(source)), dict(_params(target))
    if set(src) != set(dst) or any(src[k].shape != dst[k].shape for k in dst):
        return False
    with torch.no_grad():
        for k in dst:
            dst[k].copy_(src[k])
    return True


def _copy_fused_qkv(source, target) -> bool:
    """Split a fused (3*d_out, d_in) projection into the reference's W_query/W_key/W_value."""
    dst = dict(_params(target))
    if "W_query.weight" not in dst:
        return False
    d_out, d_in = dst["W_query.weight"].shape
    fused_w = [(n, p) for n, p in _params(source) if p.shape == (3 * d_out, d_in)]
    if len(fused_w) != 1:
        return False
    prefix = fused_w[0][0].rsplit(".", 1)[0]
    src = dict(_params(source))
    rest = {n: p for n, p in src.items() if not n.startswith(prefix + ".")}
    mapping = {}
    for i, part in enumerate(("W_query", "W_key", "W_value")):
        mapping[f"{part}.weight"] = fused_w[0][1][i * d_out:(i + 1) * d_out]
        if f"{prefix}.bias" in src:
            mapping[f"{part}.bias"] = src[f"{prefix}.bias"][i * d_out:(i + 1) * d_out]
    remaining_dst = [n for n in dst if n not in mapping]
    remaining_src = list(rest.items())
    if len(remaining_dst) != len(remaining_src):
        return False
    for n, (_src_name, p) in zip(remaining_dst, remaining_src):
        if dst[n].shape != p.shape:
            return False
        mapping[n] = p
    if set(mapping) != set(dst) or any(mapping[k].shape != dst[k].shape for k in dst):
        return False
    with torch.no_grad():
        for k, value in mapping.items():
            dst[k].copy_(value)
    return True


def _copy_by_shape_order(source, target) -> bool:
    src, dst = _params(source), _params(target)
    if len(src) != len(dst) or any(a.shape != b.shape for (_a_name, a), (_b_name, b) in zip(src, dst)):
        # Same parameters, possibly stored transposed (x @ W instead of nn.Linear): try that too.
        return False
    with torch.no_grad():
        for (_a_name, a), (_b_name, b) in zip(src, dst):
            b.copy_(a)
    return True


def transplant(source: torch.nn.Module, target: torch.nn.Module) -> str:
    """Copy ``source``'s weights into ``target``; return the method that fitted, or raise GradingError."""
    for method, copy in (("name", _copy_by_name), ("fused-qkv", _copy_fused_qkv), ("shape-order", _copy_by_shape_order)):
        if copy(source, target):
            return method
    names = lambda m: ", ".join(f"{n}{tuple(p.shape)}" for n, p in _params(m))
    # TRANSLATORS: {yours} and {books} list parameters as name(shape), e.g. W_query.weight(4, 5).
    raise GradingError(_("Could not match your parameters [{yours}] to the book's [{books}]; "
                         "keep the book's layer names (W_query, W_key, W_value, out_proj, ...).")
                       .format(yours=names(source), books=names(target)))


# --------------------------------------------------------------------------- comparison


def diagnose(student_out: torch.Tensor, variants: dict[str, tuple[torch.Tensor, str]]) -> str | None:
    """The hint of the known-wrong variant whose output matches the student's, if one does."""
    for output, hint in variants.values():
        if close(student_out, output):
            return hint
    return None


def with_hint(detail: str, hint: str | None) -> str:
    """``detail`` (already translated), then the likely mistake's hint in the current language, if there is one.

    Hints stay English (``N_``) until shown; they are translated here, once.
    """
    # TRANSLATORS: {detail} says what is wrong (one or more sentences); {hint} names the likely fix.
    return _("{detail} Likely mistake: {hint}").format(detail=detail, hint=_(hint)) if hint else detail


def text_difference(got: str, expected: str) -> str:
    """Where two strings first differ, shown with a little context on both sides."""
    i = next((k for k, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    start = max(0, i - 25)
    # TRANSLATORS: {index} is a character position; {got} and {expected} are quoted excerpts of two texts.
    return _("at character {index}: yours {got!r}, expected {expected!r}").format(
        index=i, got=got[start:i + 25], expected=expected[start:i + 25])


def first_difference(got: torch.Tensor, expected: torch.Tensor) -> str:
    """Where two same-shaped tensors first differ beyond the tolerance: the index and both values."""
    atol, rtol = tolerance(expected.dtype)
    got, expected = got.detach().to(expected.dtype), expected.detach()
    bad = ~torch.isclose(got, expected, atol=atol, rtol=rtol, equal_nan=True)
    if not bad.any():
        return _("no entry differs beyond the tolerance")
    index = tuple(int(i) for i in bad.nonzero()[0])
    # TRANSLATORS: {index} is a tuple of positions in a tensor, e.g. (0, 3, 1).
    where = _("index {index}").format(index=index) if index else _("the single value")
    # TRANSLATORS: {where} is "index (0, 3)" or "the single value"; {got} and {expected} are numbers.
    return (_("first at {where}: got {got:.6g}, expected {expected:.6g}; {count} of {total} entries differ")
            .format(where=where, got=float(got[index]), expected=float(expected[index]), count=int(bad.sum()),
                    total=bad.numel()))


def fail_with_diagnosis(what: str, student_out, expected, variants=None) -> None:
    hint = diagnose(student_out, variants or {})
    if student_out.shape != expected.shape:
        # TRANSLATORS: {what} names the checked output, e.g. "MultiHeadAttention's output".
        raise GradingError(_("{what} has shape {got}, expected {want}.").format(
            what=what, got=tuple(student_out.shape), want=tuple(expected.shape)))
    # TRANSLATORS: {what} names the checked output; {where} says where it first differs ("first at index ...").
    detail = _("{what} differs from the reference {where} (largest difference {diff:.3g}).").format(
        what=what, where=first_difference(student_out, expected), diff=max_diff(student_out, expected))
    raise GradingError(with_hint(detail, hint))


# A course's secret, mixed into every seed a hidden check draws its inputs from while the trusted
# grader runs it (``salted_seeds``): the kit's source is public, the inputs a check feeds a student's
# code are not, so a table of precomputed answers for the published seeds finds nothing to match.
_SALT = [0]


def _salted(seed: int) -> int:
    return (int(seed) * 1_000_003 + _SALT[0]) % (2**63 - 1) if _SALT[0] else int(seed)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(_salted(seed))


def seeded_random(seed: int) -> random.Random:
    """A ``random.Random`` for a check's inputs, salted like ``seeded``."""
    return random.Random(_salted(seed))


@contextlib.contextmanager
def salted_seeds(salt: int):
    """Within the block, ``seeded`` and ``torch.manual_seed`` mix in ``salt`` (0 leaves them alone)."""
    real = torch.manual_seed
    _SALT[0] = int(salt)
    if salt:
        torch.manual_seed = lambda seed: real(_salted(seed))
    try:
        yield
    finally:
        torch.manual_seed = real
        _SALT[0] = 0


def call_checked(what: str, fn: Callable, *args, **kwargs):
    """Call student code; an exception becomes a GradingError naming the call."""
    try:
        return fn(*args, **kwargs)
    except GradingError:
        raise
    except Exception as exc:  # the student's code raised: report it as a failed check, not a crash
        # TRANSLATORS: {what} names the call, e.g. "MultiHeadAttention.forward"; {error} is Python's own message.
        raise GradingError(_("{what} raised {error_type}: {error}").format(
            what=what, error_type=type(exc).__name__, error=exc)) from exc
