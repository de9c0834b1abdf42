"""Run student code the way a notebook kernel does: definitions land in ``__main__``."""

import inspect
import textwrap
from pathlib import Path

import nbformat

COURSE_SOURCE = Path(__file__).resolve().parent.parent / "course" / "source"


def notebook(code: str) -> dict:
    namespace = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(code), "<notebook cell>", "exec"), namespace)
    return namespace


def reference_source(obj) -> str:
    """The reference's own source, as a student who wrote the same thing would have it."""
    return inspect.getsource(obj)


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"mutation target not found: {old!r}"
    return source.replace(old, new, 1)


def source_cells(assignment: str) -> dict[str, str]:
    """grade_id -> source of every nbgrader cell in a course source notebook (e.g. its "helpers" cell)."""
    nb = nbformat.read(COURSE_SOURCE / assignment / f"{assignment}.ipynb", 4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}
