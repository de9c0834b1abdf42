"""One source of truth: every graded definition in a source notebook equals its twin in solutions/.

Also: every source notebook is valid nbgrader (unique grade ids, points on graded cells, at least
four exercises with a visible and a hidden test each) and is committed without outputs.
"""

import ast
import functools
import inspect
import pkgutil
import re
from pathlib import Path

import nbformat
import pytest

import llmkit_solutions

COURSE = Path(__file__).resolve().parent.parent / "course"
NOTEBOOKS = sorted((COURSE / "source").glob("*/*.ipynb"))
EXPECTED = ["01-tokenization", "02-data-sampling", "03-embeddings", "04-attention", "05-gpt-architecture",
            "06-pretraining", "07-lora", "08-classification-finetuning", "09-instruction-finetuning",
            "10-encoders-and-masked-lm", "11-retrieval-augmented-generation"]


@functools.cache
def reference_definitions() -> dict[str, ast.AST]:
    found = {}
    for info in pkgutil.iter_modules(llmkit_solutions.__path__):
        module = __import__(f"llmkit_solutions.{info.name}", fromlist=["_"])
        tree = ast.parse(inspect.getsource(module))
        for node in tree.body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                found.setdefault(node.name, []).append((info.name, node))
    return found


def graded_definitions(path: Path):
    nb = nbformat.read(path, 4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            for node in ast.parse(cell.source).body:
                if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                    yield meta["grade_id"], node


def test_the_course_has_the_nine_stages():
    assert [p.parent.name for p in NOTEBOOKS] == EXPECTED
    assert all(p.stem == p.parent.name for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_graded_definitions_equal_their_twins_in_solutions(path):
    references = reference_definitions()
    checked = 0
    for grade_id, node in graded_definitions(path):
        twins = references.get(node.name)
        assert twins, f"{path.name} [{grade_id}]: {node.name} has no twin in llmkit_solutions"
        dumps = {ast.dump(twin) for _, twin in twins}
        assert ast.dump(node) in dumps, (f"{path.name} [{grade_id}]: {node.name} differs from "
                                         f"llmkit_solutions.{twins[0][0]}.{node.name}; change both together")
        checked += 1
    assert checked >= 4, f"{path.name} grades fewer than four definitions"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_notebook_structure(path):
    nb = nbformat.read(path, 4)
    metas = [c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata]
    ids = [m["grade_id"] for m in metas]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    graded = [m for m in metas if m.get("grade")]
    assert all(m.get("points", 0) > 0 for m in graded)
    solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    hidden = [c for c in nb.cells if "BEGIN HIDDEN TESTS" in c.source]
    visible = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and "BEGIN HIDDEN" not in c.source]
    assert len(solutions) >= 4 and len(hidden) >= 4 and len(visible) >= 4
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code"), "commit without outputs"
    # The last part (after the last graded cell) runs the student's work inside the kit: it registers a
    # component by name, or calls the kit's own pipeline on the student's functions.
    last_graded = max(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade"))
    tail = "".join(c.source for c in nb.cells[last_graded + 1:] if c.cell_type == "code")
    assert re.search(r"\bllmkit\.register\(|^\s*(from|import) llmkit", tail, re.M), \
        "the last part runs the student's work inside the kit"
