"""An edition is graded like its English assignment, and its feedback speaks the edition's language.

Real build of the Spanish edition of 04-attention, real sandboxed grading: the solved notebook earns
full marks, the untouched one 0, and a realistic mistake from the English table loses the same points,
with its hint in Spanish (looked up in the course's catalog, so the test follows the translation).
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import nbformat
import pytest

from llmkit_instructor import course
from llmkit_instructor.grading import mistakes
from llmkit.i18n import runtime
from llmkit_instructor.editions import build as build_editions
from tests import course_sim

pytestmark = pytest.mark.slow
ENGLISH = "04-attention"
LANG = "es"
EDITION = f"{ENGLISH}-{LANG}"


def _by_id(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def _solved(root: Path) -> nbformat.NotebookNode:
    source = nbformat.read(next((root / f"source-{LANG}" / EDITION).glob("*.ipynb")), 4)
    release = nbformat.read(next((root / "release" / EDITION).glob("*.ipynb")), 4)
    answers = _by_id(source)
    for cell in release.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[cell.metadata["nbgrader"]["grade_id"]].source
    return release


def _translated_mistake() -> dict:
    """The first realistic mistake of the English table whose hint the Spanish catalog translates."""
    hints = mistakes.hints(ENGLISH)
    for entry in course_sim.mutants(ENGLISH):
        hint = hints.get(entry.get("mistake", ""))
        if entry["student"].startswith("mutant-") and hint and "{" not in hint \
                and runtime.gettext(hint, LANG) != hint:
            return entry
    pytest.fail(f"no hint of {ENGLISH}'s mistake table is translated in the {LANG} catalog")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed (apt-get install -y bubblewrap); the sandbox tests need it")
    root = course_sim.copy_course(tmp_path_factory.mktemp("edition"))
    shutil.copytree(course_sim.COURSE / "locale", root / "locale")  # the catalogs the edition is built from
    build_editions(root, LANG, [ENGLISH], False)
    spec = _translated_mistake()
    solved = _solved(root)
    mutant = _solved(root)
    cell = _by_id(mutant)[spec["cell"]]
    assert spec["old"] in cell.source, "the edition's code differs from the English"
    cell.source = cell.source.replace(spec["old"], spec["new"], 1)
    course_sim.submit(root, "solution", EDITION, solved)
    course_sim.submit(root, "untouched", EDITION, nbformat.read(next((root / "release" / EDITION).glob("*.ipynb")), 4))
    course_sim.submit(root, "mistaken", EDITION, mutant)
    outcome = course.grade(root, EDITION, progress=False)
    return dict(root=root, spec=spec, outcome=outcome)


def _points(root, student):
    return course.grade_cells(root, EDITION, student)


def test_the_edition_grades_like_the_english(graded):
    root = graded["root"]
    solution = _points(root, "solution")
    assert solution and all(earned == top for earned, top in solution.values()), solution
    assert sum(earned for earned, _top in _points(root, "untouched").values()) == 0
    mistaken = _points(root, "mistaken")
    lost = {grade_id for grade_id, (earned, top) in mistaken.items() if earned < top}
    assert lost == set(graded["spec"]["fails"]), f"{graded['spec']['student']} lost {lost}"


def test_the_edition_feedback_names_the_mistake_in_its_language(graded):
    hint = mistakes.hints(ENGLISH)[graded["spec"]["mistake"]]
    spanish = runtime.gettext(hint, LANG)
    page = html.unescape(course_sim.feedback_html(graded["root"], "mistaken", EDITION))
    assert spanish in page, f"the Spanish hint {spanish!r} is not in the feedback"
    assert hint not in page, "the English hint is in the Spanish edition's feedback"
