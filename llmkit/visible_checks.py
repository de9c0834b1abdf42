"""Visible tests that explain: a failing check says in one sentence what went wrong.

The visible test cells of the course call these helpers. Each failure is one sentence: what was
checked, what the student's code gave (short: a shape, a few numbers, never a tensor dump), what
was expected, and the likely mistake::

    with visible_test("CausalAttention"):
        out = ca(batch)
        expect_shape(out, (2, 6, 2), what="the output for a batch of 2 x 6 tokens")
        expect_causal(ca, batch, what="the output of the earlier tokens")
        expect_close(out[0, 0], [-0.4519, 0.2216], what="the first token's output for seed 123",
                     mistakes=[mistake("the softmax runs over dim=0; normalise each row (dim=-1)", [...])])

Known mistakes are recognised from data only: the output a known-wrong variant gives on this one
visible input (computed once by the course authors), never from the reference itself.

The module is kernel-safe (torch and the standard library only, no ``llmkit_instructor.grading``): the same
cell runs in the student's kernel and, from the instructor's source, in the trusted grader, where
objects may be handles to the kernel and tensors arrive as data.
"""

from __future__ import annotations

import contextlib
import linecache
import math
import numbers
import os
from typing import Any, Callable, Iterable, NamedTuple

from llmkit.exercise import GradingError

try:  # the edition's language, when the catalogs are there; English otherwise
    from llmkit.i18n.runtime import N_, _
except Exception:  # noqa: BLE001 - a kernel without the i18n extras still gets English sentences
    def _(message: str) -> str:
        return message

    N_ = _

MAX_SHOWN = 6  # numbers shown of a tensor or list before "…"
MAX_TEXT = 70  # characters shown of a string


class CheckFailed(GradingError):
    """A visible check failed; the message is the whole story, so IPython shows only it."""

    def _render_traceback_(self) -> list[str]:
        # IPython prints these lines instead of a traceback (the helper's frames explain nothing).
        return [f"{type(self).__name__}: {self}"]


class Mistake(NamedTuple):
    hint: str
    output: Any


def mistake(hint: str, output: Any) -> Mistake:
    """A known mistake: its hint, and the output it gives on the visible input (precomputed data)."""
    return Mistake(hint, output)


# --------------------------------------------------------------------------- short descriptions


def _number(x: float) -> str:
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == 0 or 1e-3 <= abs(x) < 1e6:  # four decimals, like the numbers the book prints
        return f"{x:.4f}".rstrip("0").rstrip(".")
    return f"{x:.3g}"


def _numbers(values: list, limit: int = MAX_SHOWN) -> str:
    shown = ", ".join(short(v) for v in values[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "tolist") and hasattr(value, "dtype")


def short(value: Any) -> str:
    """A few words for a value: numbers rounded, long things cut, tensors as their shape and first values."""
    if _is_tensor(value):
        shape = tuple(value.shape)
        if len(shape) == 0:
            return _number(value.item())
        flat = value.detach().reshape(-1)[:MAX_SHOWN + 1].tolist() if hasattr(value, "detach") else \
            list(value.reshape(-1)[:MAX_SHOWN + 1])
        if len(shape) == 1 and shape[0] <= MAX_SHOWN:
            return _numbers(flat)
        return _("a tensor of shape {shape} starting {values}").format(shape=shape, values=_numbers(flat, 3))
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, numbers.Number):
        return _number(value)
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…'"
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, numbers.Number) for v in value):
            return _numbers(list(value)) if isinstance(value, list) else "(" + _numbers(list(value))[1:-1] + ")"
        text = repr(value)
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
    if isinstance(value, (set, frozenset, dict)):
        text = repr(value)
        return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
    return _("a {kind}").format(kind=type(value).__name__)


def _end(text: str) -> str:
    """A hint without its final full stop (the sentence adds one); an ellipsis stays."""
    return text[:-1] if text.endswith(".") and not text.endswith("..") else text


def _fail(what: str, got: str, expected: str, hint: str | None) -> None:
    if hint:
        raise CheckFailed(_("{what}: your code gave {got}, expected {expected}; likely mistake: {hint}")
                          .format(what=what, got=got, expected=expected, hint=_end(_(hint))) + ".")
    raise CheckFailed(_("{what}: your code gave {got}, expected {expected}")
                      .format(what=what, got=got, expected=expected) + ".")


# --------------------------------------------------------------------------- checks


def _as_list(value: Any) -> Any:
    return value.tolist() if _is_tensor(value) else value


def _close(a: Any, b: Any, atol: float) -> bool:
    a, b = _as_list(a), _as_list(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, atol) for x, y in zip(a, b))
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= atol + 1e-4 * abs(b)
    try:
        return bool(a == b)  # strings, dicts, sets: equal or not
    except Exception:  # noqa: BLE001 - values that cannot be compared are not equal
        return False


def _shape(value: Any) -> tuple | None:
    if _is_tensor(value):
        return tuple(value.shape)
    return None


def _matching(got: Any, mistakes: Iterable[Mistake], atol: float) -> str | None:
    for known in mistakes:
        if _close(got, known.output, atol):
            return known.hint
    return None


def expect(ok: bool, *, what: str, got: Any = None, expected: Any = None, hint: str | None = None) -> None:
    """A check of any kind: ``ok`` says whether it held; ``got``/``expected`` are shown as given."""
    if not ok:
        _fail(what, got if isinstance(got, str) else short(got),
              expected if isinstance(expected, str) else short(expected), hint)


def expect_shape(value: Any, shape: tuple, *, what: str, hint: str | None = None) -> None:
    """Structure first: ``value`` must be a tensor of this shape."""
    found = _shape(value)
    if found is None:
        _fail(what, short(value), _("a tensor of shape {shape}").format(shape=tuple(shape)),
              hint or N_("return a torch tensor"))
    if found != tuple(shape):
        _fail(what, _("shape {shape}").format(shape=found), _("shape {shape}").format(shape=tuple(shape)), hint)


def expect_equal(got: Any, expected: Any, *, what: str, hint: str | None = None,
                 mistakes: Iterable[Mistake] = ()) -> None:
    """Exact equality (tensors compared by their values); a known mistake names itself."""
    if _as_list(got) == _as_list(expected):
        return
    hint = _matching(got, mistakes, 0.0) or hint
    got_list, expected_list = _as_list(got), _as_list(expected)
    if isinstance(got_list, list) and isinstance(expected_list, list) and "…" in short(got_list) + short(expected_list):
        _fail_at_first_difference(what, got_list, expected_list, hint)
    _fail(what, short(got), short(expected), hint)


def _fail_at_first_difference(what: str, got: list, expected: list, hint: str | None) -> None:
    """Long lists: the first position where they differ, and both lengths."""
    at = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
    here = short(got[at]) if at < len(got) else _("nothing")
    there = short(expected[at]) if at < len(expected) else _("nothing")
    _fail(what, _("{value} at position {at} ({n} items)").format(value=here, at=at, n=len(got)),
          _("{value} there ({n} items)").format(value=there, n=len(expected)), hint)


def expect_close(got: Any, expected: Any, *, what: str, atol: float = 1e-4, hint: str | None = None,
                 mistakes: Iterable[Mistake] = ()) -> None:
    """Numbers equal up to ``atol``: the shape first, then the values; a known mistake names itself."""
    want = _shape(expected) or _shape_of_list(expected)
    have = _shape(got) or _shape_of_list(got)
    if want is not None and have is not None and want != have:
        _fail(what, _("shape {shape}").format(shape=have), _("shape {shape}").format(shape=want), hint)
    if not _close(got, expected, atol):
        hint = _matching(got, mistakes, atol) or hint
        if _is_tensor(got) and _is_tensor(expected) and got.numel() > MAX_SHOWN:
            # Too many numbers to show: say how far off and where, in a few words.
            difference = (got.detach().double() - expected.detach().double()).abs()
            where = tuple(int(i) for i in _index_of(int(difference.argmax()), tuple(got.shape)))
            _fail(what, _("values off by up to {diff} (the largest at index {where})").format(
                diff=_number(difference.max().item()), where=where), _("the same values"), hint)
        _fail(what, short(got), short(expected), hint)


def _index_of(flat: int, shape: tuple) -> list[int]:
    """The index in ``shape`` of position ``flat`` of the flattened tensor."""
    index = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size)
        index.append(rest)
    return list(reversed(index))


def _shape_of_list(value: Any) -> tuple | None:
    if not isinstance(value, (list, tuple)):
        return None
    shape, level = [], value
    while isinstance(level, (list, tuple)):
        shape.append(len(level))
        level = level[0] if level else None
    return tuple(shape)


def expect_causal(module: Callable, batch: Any, *, what: str) -> None:
    """Changing the last token must leave every earlier position's output unchanged.

    When it does not, the earliest position that changed tells how far the mask is off.
    """
    changed = batch.clone()
    changed[:, -1] += 1.0
    before, after = module(batch), module(changed)
    num_tokens = batch.shape[1]
    moved = [t for t in range(num_tokens - 1) if not _close(before[:, t], after[:, t], 1e-5)]
    if not moved:
        return
    if moved == [num_tokens - 2]:
        hint = N_("each token sees the next one: build the mask with torch.triu(..., diagonal=1)")
    else:
        hint = N_("the future is not masked: fill the scores above the diagonal with -inf before the softmax "
                  "(masked_fill returns a new tensor, keep its result)")
    _fail(what, _("a change at positions {positions}").format(positions=short(moved)),
          _("no change before the last token"), hint)


def expect_runs(fn: Callable, *args, what: str, hint: str | None = None, **kwargs) -> Any:
    """Call ``fn``; if it raises, the sentence says which call, the error in brief and the hint."""
    try:
        return fn(*args, **kwargs)
    except (CheckFailed, GradingError):
        raise
    except Exception as exc:  # noqa: BLE001 - the student's code raised: one sentence about it
        sentence = _("{what}: your code raised {error}").format(what=what, error=_error_words(exc))
        if hint:
            sentence += "; " + _("likely mistake: {hint}").format(hint=_end(_(hint)))
        raise CheckFailed(sentence + ".") from None


# --------------------------------------------------------------------------- the cell around the checks


def _student_frame(tb) -> tuple[str, int, str] | None:
    """The innermost frame of the student's own code in a traceback: (function, line, source)."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        kit = os.path.dirname(os.path.abspath(__file__))
        if "site-packages" not in filename and not filename.startswith(kit) and \
                not filename.startswith(os.path.dirname(os.__file__)) and not filename.startswith("<test cell"):
            line = linecache.getline(filename, tb.tb_lineno).strip()
            if line:
                found = (tb.tb_frame.f_code.co_name, tb.tb_lineno, line)
        tb = tb.tb_next
    return found


def _error_words(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    words = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    where = _student_frame(exc.__traceback__)
    if where:
        name, _line, source = where
        function = name if name != "<module>" else _("the cell")
        words += " " + _("(in {function}: {source})").format(function=function, source=source[:100])
    return words


@contextlib.contextmanager
def visible_test(name: str):
    """Run a visible test's cell; whatever fails comes out as one sentence that names ``name``."""
    try:
        yield
    except CheckFailed:
        raise
    except GradingError as exc:  # the integrity check: already one sentence
        raise CheckFailed(str(exc)) from None
    except NotImplementedError as exc:
        if str(exc).strip():
            raise CheckFailed(_("{name} raised {error}").format(name=name, error=_error_words(exc)) + ".") from None
        raise CheckFailed(_("{name} is not written yet: replace `raise NotImplementedError()` under "
                            "# YOUR CODE HERE with your code and run its cell again").format(name=name) + ".") from None
    except NameError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise CheckFailed(_("{missing} is not defined: run the cell that defines it, and the cells above it, "
                            "first").format(missing=missing) + ".") from None
    except StopIteration:
        raise CheckFailed(_("While testing {name}, an iterator ran out (StopIteration): your code gave fewer items "
                            "than the test asks for").format(name=name) + ".") from None
    except AssertionError as exc:  # a plain assert in a cell: keep its message, drop the traceback
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else _("a check failed")
        raise CheckFailed(_("{name}: {message}").format(name=name, message=message.rstrip(".")) + ".") from None
    except Exception as exc:  # noqa: BLE001 - the student's code raised while the test ran it
        raise CheckFailed(_("While testing {name}, your code raised {error}").format(
            name=name, error=_error_words(exc)) + ".") from None


__all__ = ["CheckFailed", "expect", "expect_causal", "expect_close", "expect_equal", "expect_runs",
           "expect_shape", "mistake", "short", "visible_test"]
