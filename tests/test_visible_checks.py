"""Visible tests that explain: every failing visible test cell says one sentence, never a tensor dump.

Fast and without nbgrader's machinery: a notebook's cells run in this process, the release (solution
regions cleared by nbgrader's own ClearSolutions) or the solution with one known mistake put in.
Heavy demo cells (a GPT trained with the student's work) are left out; the notebooks skip their
other long cells when NBGRADER_EXECUTION=autograde, as during grading.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import nbformat
import pytest
import torch

from llmkit.visible_checks import (CheckFailed, expect, expect_causal, expect_close, expect_equal, expect_shape,
                                   mistake, short, visible_test)

COURSE = Path(__file__).resolve().parent.parent / "course"
NOTEBOOKS = sorted((COURSE / "source").glob("*/*.ipynb"))
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
HEAVY = ("try_component(", "llmkit.register(")  # the closing demo cells: a tiny GPT trained for seconds


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _is_visible_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and "BEGIN HIDDEN TESTS" not in cell.source


def release(nb):
    from nbgrader.preprocessors import ClearSolutions

    stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    return ClearSolutions(code_stub=stub).preprocess(nb, {})[0]


def run_visible_tests(nb, monkeypatch, tmp_path) -> dict[str, BaseException | None]:
    """Run the notebook's cells in order; grade id -> what each visible test cell raised (None: passed)."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv("LLMKIT_NO_WIDGETS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)  # cells that save files write them here
    import matplotlib

    matplotlib.use("Agg")
    namespace = {"__name__": "__main__"}
    outcome = {}
    torch.manual_seed(0)
    for cell in nb.cells:
        if cell.cell_type != "code" or any(marker in cell.source for marker in HEAVY):
            continue
        raised = None
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(HIDDEN.sub("", cell.source), f"<cell {_grade_id(cell)}>", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - what the cell raised is the result
            raised = exc
        if _is_visible_test(cell):
            outcome[_grade_id(cell)] = raised
    import matplotlib.pyplot as plt

    plt.close("all")
    return outcome


def assert_one_sentence(grade_id: str, exc: BaseException | None) -> str:
    assert isinstance(exc, CheckFailed), f"{grade_id}: raised {type(exc).__name__}: {exc}"
    message = str(exc)
    assert "\n" not in message and message.endswith("."), f"{grade_id}: not one sentence: {message!r}"
    assert "tensor(" not in message and "Traceback" not in message, f"{grade_id}: {message!r}"
    assert len(message) < 600, f"{grade_id}: {len(message)} characters: {message!r}"
    assert exc._render_traceback_() == [f"CheckFailed: {message}"]  # what Jupyter shows: that one line
    return message


# --------------------------------------------------------------------------- the helpers


def test_short_never_dumps_a_tensor():
    assert short(torch.tensor([-0.07379, 0.0663])) == "[-0.0738, 0.0663]"
    big = short(torch.rand(2, 6, 2))
    assert big.startswith("a tensor of shape (2, 6, 2) starting [") and big.endswith(", …]")
    assert short(torch.tensor(2.5)) == "2.5" and short([1, 2, 3, 4, 5, 6, 7, 8]) == "[1, 2, 3, 4, 5, 6, …]"
    assert len(short("word " * 100)) <= 72


def test_a_known_mistake_is_named_and_an_unknown_one_is_not():
    known = [mistake("the scores are not divided by sqrt(d_out)", [0.3071, 0.8230])]
    with pytest.raises(CheckFailed, match=r"first token: your code gave \[0.3071, 0.823\], expected \[0.2996, "
                                          r"0.8053\]; likely mistake: the scores are not divided by sqrt\(d_out\)\.$"):
        expect_close(torch.tensor([0.30712, 0.82301]), [0.2996, 0.8053], what="first token", mistakes=known)
    with pytest.raises(CheckFailed) as caught:
        expect_close(torch.tensor([1.0, 2.0]), [0.2996, 0.8053], what="first token", mistakes=known)
    assert "likely mistake" not in str(caught.value)
    expect_close(torch.tensor([0.29961, 0.80529]), [0.2996, 0.8053], what="first token", mistakes=known)


def test_structure_is_checked_before_values():
    with pytest.raises(CheckFailed, match=r"your code gave shape \(6, 3\), expected shape \(6, 2\)"):
        expect_close(torch.zeros(6, 3), torch.zeros(6, 2), what="the output")
    with pytest.raises(CheckFailed, match=r"your code gave \[1, 2\], expected a tensor of shape \(2,\)"):
        expect_shape([1, 2], (2,), what="the output")
    with pytest.raises(CheckFailed, match=r"^ids: your code gave \[1, 2\], expected \[1, 2, 3\]\.$"):
        expect_equal(torch.tensor([1, 2]), [1, 2, 3], what="ids")
    with pytest.raises(CheckFailed, match=r"^n: your code gave 2, expected 3; likely mistake: count again\.$"):
        expect(False, what="n", got=2, expected=3, hint="count again.")


def test_causality_names_how_far_the_mask_is_off():
    x = torch.rand(1, 5, 2)
    sees_next = lambda t: t + torch.cat([t[:, 1:], torch.zeros_like(t[:, :1])], dim=1)  # noqa: E731
    with pytest.raises(CheckFailed, match=r"positions \[3\].*diagonal=1"):
        expect_causal(sees_next, x, what="earlier outputs")
    with pytest.raises(CheckFailed, match=r"positions \[0, 1, 2, 3\].*-inf before the softmax"):
        expect_causal(lambda t: t + t.sum(dim=1, keepdim=True), x, what="earlier outputs")
    expect_causal(lambda t: t.cumsum(dim=1), x, what="earlier outputs")


def test_the_cell_around_the_checks_turns_any_error_into_one_sentence():
    def forward():
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match=r"^Model is not written yet: replace `raise NotImplementedError\(\)`"):
        with visible_test("Model"):
            forward()
    with pytest.raises(CheckFailed, match=r"^undefined_name is not defined: run the cell that defines it"):
        with visible_test("Model"):
            undefined_name  # noqa: B018, F821
    with pytest.raises(CheckFailed, match=r"^While testing Model, your code raised RuntimeError: shapes differ"):
        with visible_test("Model"):
            raise RuntimeError("shapes differ\nsecond line of detail")
    with pytest.raises(CheckFailed, match=r"^Model: the ids must run 0, 1, 2\.$"):
        with visible_test("Model"):
            assert False, "the ids must run 0, 1, 2"


# --------------------------------------------------------------------------- every released notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_every_visible_test_of_the_release_fails_with_one_sentence(path, monkeypatch, tmp_path):
    outcome = run_visible_tests(release(nbformat.read(path, 4)), monkeypatch, tmp_path)
    assert len(outcome) >= 4
    for grade_id, exc in outcome.items():
        message = assert_one_sentence(grade_id, exc)
        assert "not written yet" in message or "not defined" in message or "raised" in message, message


# --------------------------------------------------------------------------- known mistakes, named

# (assignment, solution cell, old, new, visible test, phrase its sentence must contain)
MISTAKES = [
    ("04-attention", "self-attention-v1", "weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)",
     "weights = torch.softmax(scores, dim=-1)", "self-attention-v1-visible", "not divided by sqrt(d_out)"),
    ("04-attention", "self-attention-v2", "weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)",
     "weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=0)", "self-attention-v2-visible",
     "normalise each row with dim=-1"),
    ("04-attention", "causal-attention", "scores = scores.masked_fill(", "scores.masked_fill(",
     "causal-attention-visible", "the future is not masked"),
    ("04-attention", "causal-attention", "diagonal=1", "diagonal=2", "causal-attention-visible",
     "each token sees the next one"),
    ("04-attention", "causal-attention",
     "scores = scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)\n"
     "        weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)",
     "weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)\n"
     "        weights = weights.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], 0.0)",
     "causal-attention-visible", "-inf before the softmax"),
    ("04-attention", "mha", "self.mask.bool()[start : start + num_tokens, : start + num_tokens]", "self.mask.bool()",
     "mha-visible", "slice the mask rows start:start + num_tokens"),
]


@pytest.mark.parametrize("case", MISTAKES, ids=lambda c: f"{c[0]}:{c[4]}:{c[5][:24]}")
def test_a_known_mistake_is_named_by_its_visible_test(case, monkeypatch, tmp_path):
    assignment, cell_id, old, new, test_id, phrase = case
    nb = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", 4)
    cell = next(c for c in nb.cells if _grade_id(c) == cell_id)
    assert old in cell.source, f"{cell_id} no longer contains {old!r}"
    cell.source = cell.source.replace(old, new, 1)
    outcome = run_visible_tests(nb, monkeypatch, tmp_path)
    message = assert_one_sentence(test_id, outcome[test_id])
    assert phrase in message, message
    passed = [g for g, exc in outcome.items() if exc is None]
    assert passed, "the other visible tests still pass with the solution"
