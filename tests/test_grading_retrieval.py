"""The stage-11 checks: the reference and correct rewrites pass; every mistake in the table, and a few
more, fail by name (in-process here; tests/test_course_e2e.py grades the same table through the sandbox)."""

import json
import re

import pytest

from llmkit.visible_checks import CheckFailed
from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading import retrieval as grading
from llmkit_instructor.grading.mistakes import TABLES
from llmkit_solutions import retrieval as ref
from tests.grading_helpers import mutate, notebook, reference_source, source_cells

NAME = "11-retrieval-augmented-generation"
CELLS = source_cells(NAME)
TABLE = json.loads((TABLES / f"{NAME}.json").read_text())
CHECKS = {"chunk-text": (grading.check_chunk_text, "chunk_text"),
          "mean-pool": (grading.check_mean_pool, "mean_pool"),
          "top-k-cosine": (grading.check_top_k_cosine, "top_k_cosine"),
          "build-prompt": (grading.check_build_prompt, "build_prompt"),
          "recall-at-k": (grading.check_recall_at_k, "recall_at_k")}


def run_exercise(cell: str, source: str) -> dict:
    """Run the setup, one solution cell's ``source`` and its visible test; returns {grade_id: error or None}."""
    namespace = notebook(CELLS["setup"] + "\n" + source)
    outcome = {}
    try:
        exec(compile(CELLS[f"{cell}-visible"], "<test cell>", "exec"), namespace)
        outcome[f"{cell}-visible"] = None
    except (CheckFailed, GradingError, Exception) as exc:  # noqa: BLE001 - any failure loses the cell
        outcome[f"{cell}-visible"] = str(exc)
    check, name = CHECKS[cell]
    try:
        check(namespace[name])
        outcome[f"{cell}-hidden"] = None
    except (GradingError, KeyError) as exc:
        outcome[f"{cell}-hidden"] = str(exc)
    return outcome


def entry_source(entry: dict) -> str:
    if entry.get("replace_cell") is not None:
        return entry["replace_cell"]
    return mutate(CELLS[entry["cell"]], entry["old"], entry["new"])


@pytest.mark.parametrize("cell", list(CHECKS))
def test_the_solution_cells_pass_their_visible_and_hidden_tests(cell):
    assert run_exercise(cell, CELLS[cell]) == {f"{cell}-visible": None, f"{cell}-hidden": None}


@pytest.mark.parametrize("cell", list(CHECKS))
def test_the_reference_written_in_a_notebook_passes(cell):
    check, name = CHECKS[cell]
    check(notebook("import re\nimport torch\n" + f"PROMPT = {ref.PROMPT!r}\nCLOSED_BOOK = {ref.CLOSED_BOOK!r}\n"
                   + reference_source(getattr(ref, name)))[name])


@pytest.mark.parametrize("entry", TABLE, ids=lambda e: e["student"])
def test_each_table_entry_loses_exactly_its_cells_and_names_its_mistake(entry):
    outcome = run_exercise(entry["cell"], entry_source(entry))
    failed = sorted(cell for cell, error in outcome.items() if error is not None)
    assert failed == sorted(entry["fails"]), outcome
    if entry["mistake"] is not None:
        assert entry["feedback"] in outcome[f"{entry['cell']}-hidden"], outcome
        assert entry["feedback"] in grading.HINTS[entry["mistake"]]
    elif entry["fails"]:
        assert entry["feedback"] in outcome[f"{entry['cell']}-hidden"], outcome


def test_the_table_has_enough_mutants_rewrites_and_an_import():
    kinds = [re.match(r"[a-z]+-", e["student"]).group() for e in TABLE]
    assert kinds.count("mutant-") >= 10 and kinds.count("rewrite-") >= 2 and kinds.count("imports-") == 1


# --------------------------------------------------------------------------- hints the table does not simulate


def hidden_error(cell: str, old: str, new: str) -> str:
    check, name = CHECKS[cell]
    with pytest.raises(GradingError) as raised:
        check(notebook(CELLS["setup"] + "\n" + mutate(CELLS[cell], old, new))[name])
    return str(raised.value)


def test_chunks_without_the_title_are_named():
    error = hidden_error("chunk-text", 'return [f"{title}. {p}" if title else p for p in passages]', "return passages")
    assert grading.HINTS["title_missing"] in error


def test_the_title_counted_in_the_budget_is_named():
    error = hidden_error("chunk-text", "if current and len(\" \".join(current + [sentence]).split()) > max_words:",
                         "if current and len(\" \".join([title + '.'] + current + [sentence]).split()) > max_words:")
    assert grading.HINTS["title_counted"] in error


def test_fixed_word_windows_are_named():
    windows = '''def chunk_text(text, max_words=80):
    """Fixed windows of words."""
    first, _, body = text.strip().partition("\\n")
    title = first.lstrip("# ").strip()
    words = body.split()
    return [f"{title}. " + " ".join(words[i:i + max_words]) for i in range(0, len(words), max_words)]
'''
    with pytest.raises(GradingError, match="sentences are cut in the middle"):
        grading.check_chunk_text(notebook(windows)["chunk_text"])


def test_k_beyond_the_corpus_that_raises_is_named():
    error = hidden_error("top-k-cosine", "k = min(k, vectors.shape[0])  # a corpus smaller than k gives all it has",
                         "assert k <= vectors.shape[0]")
    assert grading.HINTS["k_too_large"] in error


def test_a_passage_cut_to_fit_is_named():
    cut_to_fit = ("        if used + words > max_words:\n            if max_words > used:\n"
                  "                kept.append(\" \".join(passage.split()[:max_words - used]))\n            break\n")
    error = hidden_error("build-prompt", "        if used + words > max_words:\n            break\n", cut_to_fit)
    assert grading.HINTS["passage_cut"] in error


def test_the_ranking_matches_a_faiss_index():
    """The hidden check's FAISS comparison is real: a ranking FAISS disagrees with fails there."""
    import torch

    corpus = torch.nn.functional.normalize(torch.randn(20, 8, generator=torch.Generator().manual_seed(3)), dim=-1)
    asks = torch.randn(3, 8, generator=torch.Generator().manual_seed(4))
    scores, ids = grading._faiss_top_k(corpus, asks, 4)
    want_scores, want_ids = ref.top_k_cosine(corpus, asks, 4)
    assert torch.equal(ids, want_ids) and torch.allclose(scores, want_scores, atol=1e-5)


def test_a_wrong_type_is_one_clear_line():
    with pytest.raises(GradingError, match="return a list of passages"):
        grading.check_chunk_text(notebook('def chunk_text(text, max_words=80):\n    return text\n')["chunk_text"])
    with pytest.raises(GradingError, match="return a number between 0 and 1"):
        grading.check_recall_at_k(notebook('def recall_at_k(retrieved, gold, k):\n    return "1"\n')["recall_at_k"])
