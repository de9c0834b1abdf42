"""An edition is graded like its English assignment, and its feedback speaks the edition's language.

Real build of the Spanish editions, real sandboxed grading: each solved notebook earns full marks,
each untouched one 0, and a realistic mistake from the English table loses the same points as in
English, with its hint in Spanish (looked up in the course's catalog, so the test follows the
translation). CI grades 04-attention and 08-classification-finetuning; ``LLMKIT_EDITION_E2E=all``
(or a comma-separated list) grades the Spanish edition of every assignment.
"""

from __future__ import annotations

import html
import os
import re
import shutil

import pytest

from llmkit.i18n import runtime
from llmkit_instructor import course
from llmkit_instructor.editions import build as build_editions
from llmkit_instructor.grading import mistakes
from tests import course_sim

pytestmark = pytest.mark.slow
LANG = "es"
_CHOSEN = os.environ.get("LLMKIT_EDITION_E2E", "04-attention,08-classification-finetuning")
ASSIGNMENTS = course.assignments(course_sim.COURSE) if _CHOSEN == "all" else _CHOSEN.split(",")


def edition(english: str) -> str:
    return f"{english}-{LANG}"


def _translated_mistake(english: str) -> dict:
    """The first realistic mistake of the English table whose hint the Spanish catalog translates."""
    hints = mistakes.hints(english)
    for entry in course_sim.mutants(english):
        hint = hints.get(entry.get("mistake", ""))
        if entry["student"].startswith("mutant-") and hint and runtime.gettext(hint, LANG) != hint:
            return entry
    pytest.fail(f"no hint of {english}'s mistake table is translated in the {LANG} catalog")


def _fixed_text(template: str) -> str:
    """The longest stretch of a hint that does not depend on its {fields}: what the page must contain."""
    return max(re.split(r"\{[^{}]*\}", template), key=len).strip()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is not installed (apt-get install -y bubblewrap); the sandbox tests need it")
    root = course_sim.copy_course(tmp_path_factory.mktemp("edition"))
    shutil.copytree(course_sim.COURSE / "locale", root / "locale")  # the catalogs the editions are built from
    build_editions(root, LANG, ASSIGNMENTS, False)
    specs = {}
    for english in ASSIGNMENTS:
        name, source_dir = edition(english), f"source-{LANG}"
        specs[english] = spec = _translated_mistake(english)
        course_sim.submit(root, "solution", name, course_sim.solved(root, name, source_dir))
        course_sim.submit(root, "untouched", name, course_sim.untouched(root, name))
        course_sim.submit(root, "mistaken", name, course_sim.mutated(root, name, spec, source_dir))
    outcome = course.grade(root, progress=False)
    return dict(root=root, specs=specs, outcome=outcome)


@pytest.mark.parametrize("english", ASSIGNMENTS)
def test_the_edition_grades_like_the_english(graded, english):
    root, name = graded["root"], edition(english)
    solution = course.grade_cells(root, name, "solution")
    assert solution and all(earned == top for earned, top in solution.values()), solution
    assert sum(earned for earned, _top in course.grade_cells(root, name, "untouched").values()) == 0
    spec = graded["specs"][english]
    lost = {grade_id for grade_id, (earned, top) in course.grade_cells(root, name, "mistaken").items() if earned < top}
    assert lost == set(spec["fails"]), f"{name}: {spec['student']} lost {lost}, in English it loses {spec['fails']}"


@pytest.mark.parametrize("english", ASSIGNMENTS)
def test_the_edition_feedback_names_the_mistake_in_its_language(graded, english):
    hint = mistakes.hints(english)[graded["specs"][english]["mistake"]]
    spanish = runtime.gettext(hint, LANG)
    page = html.unescape(course_sim.feedback_html(graded["root"], "mistaken", edition(english)))
    assert _fixed_text(spanish) in page, f"the Spanish hint {spanish!r} is not in the feedback"
    assert _fixed_text(hint) not in page, "the English hint is in the Spanish edition's feedback"
