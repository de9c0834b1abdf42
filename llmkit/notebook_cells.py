"""Build nbgrader notebooks in code: markdown, read-only setup, solution, visible and hidden test cells.

    from llmkit.notebook_cells import notebook, md, setup, solution, tests, hidden_tests
    nb = notebook([md("# Attention"), setup("import torch"), solution("mha", "class ..."), ...])
    nbformat.write(nb, "course/source/04-attention/04-attention.ipynb")

The metadata is nbgrader's schema 3; ``grade_id`` values must be unique within a notebook.
"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _meta(grade_id: str, *, grade=False, solution=False, locked=False, points=None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def md(text: str, grade_id: str | None = None):
    cell = new_markdown_cell(text.strip("\n"))
    if grade_id:
        cell.metadata.update(_meta(grade_id, locked=True))
    return cell


def setup(source: str, grade_id: str = "setup"):
    """A read-only code cell students run but do not edit."""
    cell = new_code_cell(source.strip("\n"))
    cell.metadata.update(_meta(grade_id, locked=True))
    return cell


def code(source: str):
    """A plain cell for the student to play in (not graded)."""
    return new_code_cell(source.strip("\n"))


def solution(grade_id: str, source: str):
    """Where the student writes code; the parts between BEGIN/END SOLUTION are removed on release."""
    cell = new_code_cell(source.strip("\n"))
    cell.metadata.update(_meta(grade_id, solution=True))
    return cell


def tests(grade_id: str, source: str, points: float):
    """A visible, locked, autograded test cell."""
    cell = new_code_cell(source.strip("\n"))
    cell.metadata.update(_meta(grade_id, grade=True, locked=True, points=points))
    return cell


def hidden_tests(grade_id: str, source: str, points: float, note: str = "Hidden tests run when your work is graded."):
    """A graded cell whose tests are stripped from the student version and restored for grading."""
    body = f"# {note}\n### BEGIN HIDDEN TESTS\n{source.strip()}\n### END HIDDEN TESTS"
    return tests(grade_id, body, points)


def notebook(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"grade_id values must be unique, repeated: {sorted(duplicates)}")
    return nb
