"""Simulated students for the end-to-end course test: solved, untouched, mutated and broken submissions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat

COURSE = Path(__file__).resolve().parent.parent / "course"


def copy_course(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(COURSE / "nbgrader_config.py", dest / "nbgrader_config.py")
    # A fixed, non-zero salt: the hidden checks draw other inputs than their published seeds, the same in every run.
    (dest / ".llmkit-salt").write_text("20261203")
    shutil.copytree(COURSE / "source", dest / "source")
    return dest


def _cells_by_id(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def solved(course_root: Path, assignment: str, source_dir: str = "source") -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled in from the source (``source-es``: an edition's)."""
    source = nbformat.read(next((course_root / source_dir / assignment).glob("*.ipynb")), 4)
    release = nbformat.read(next((course_root / "release" / assignment).glob("*.ipynb")), 4)
    answers = _cells_by_id(source)
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = answers[meta["grade_id"]].source
    return release


def untouched(course_root: Path, assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(next((course_root / "release" / assignment).glob("*.ipynb")), 4)


def mutants(assignment: str) -> list[dict]:
    path = COURSE / "mutants" / f"{assignment}.json"
    return json.loads(path.read_text()) if path.exists() else []


def mutated(course_root: Path, assignment: str, spec: dict, source_dir: str = "source") -> nbformat.NotebookNode:
    nb = solved(course_root, assignment, source_dir)
    cell = _cells_by_id(nb)[spec["cell"]]
    if "replace_cell" in spec:
        cell.source = spec["replace_cell"]
    else:
        assert spec["old"] in cell.source, f"{assignment}/{spec['student']}: {spec['old']!r} not in {spec['cell']}"
        cell.source = cell.source.replace(spec["old"], spec["new"], 1)
    return nb


def submit(course_root: Path, student: str, assignment: str, nb_or_text) -> Path:
    folder = course_root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    if isinstance(nb_or_text, str):
        path.write_text(nb_or_text)
    else:
        nbformat.write(nb_or_text, path)
    (folder / "timestamp.txt").write_text("2026-11-20 12:00:00.000000 UTC")
    return path


def feedback_html(course_root: Path, student: str, assignment: str) -> str:
    files = list((course_root / "feedback" / student / assignment).glob("*.html"))
    return files[0].read_text() if files else ""
