"""The whole nbgrader cycle, no mocks: generate -> submissions -> autograde -> feedback -> gradebook.

Per assignment: the solution filled in (full marks), the release untouched (zero, no crash), and
realistic mutants from ``course/mutants/`` (each loses exactly the points of the tests it should
fail, and the feedback names the mistake). Broken submissions are graded without crashing the
grader or touching other students' grades.
"""

import csv
import html as html_text
import os
import re
import time
from pathlib import Path

import pytest

from llmkit_instructor import course
from llmkit_instructor.grading import mistakes
from tests import course_sim

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # the timing lands here for the notes
# LLMKIT_COURSE_ONLY=04-attention,05-gpt-architecture grades a subset (for authors iterating on one).
ASSIGNMENTS = [a for a in course.assignments(course_sim.COURSE)
               if not os.environ.get("LLMKIT_COURSE_ONLY") or a in os.environ["LLMKIT_COURSE_ONLY"].split(",")]

# The tables hold 13-30 entries per assignment; grading every one through the sandbox takes about an
# hour on two cores. CI (45 minutes for everything) grades, of each table, the integrity cases, the
# first REWRITES_PER_ASSIGNMENT correct rewrites and the first MUTANTS_PER_ASSIGNMENT mutants;
# LLMKIT_E2E_MUTANTS=all grades them all (run it after editing a table or a check).
MUTANTS_PER_ASSIGNMENT = 2
REWRITES_PER_ASSIGNMENT = 1


def graded_entries(assignment: str) -> list[dict]:
    entries = course_sim.mutants(assignment)
    if os.environ.get("LLMKIT_E2E_MUTANTS") == "all":
        return entries
    kept = []
    for kind, limit in (("mutant-", MUTANTS_PER_ASSIGNMENT), ("rewrite-", REWRITES_PER_ASSIGNMENT)):
        kept += [e for e in entries if e["student"].startswith(kind)][:limit]
    return [e for e in entries if e in kept or not e["student"].startswith(("mutant-", "rewrite-"))]


BROKEN = {
    "invalid-json": "{ this is not a notebook",
    "raises-at-import": ("cell", "mha", "import definitely_not_a_module_llmkit\n"),
    "infinite-loop": ("cell", "self-attention-v1", "while True:\n    pass\n"),
    "changed-metadata": ("metadata", "self-attention-v1-visible"),
    "deleted-tests": ("delete", "mha-visible"),
}


def _broken_notebook(root, assignment, how):
    nb = course_sim.solved(root, assignment)
    kind, grade_id = how[0], how[1]
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    if kind == "cell":
        cells[grade_id].source = how[2] + cells[grade_id].source
    elif kind == "metadata":
        cells[grade_id].metadata["nbgrader"]["points"] = 100  # a student tries to raise the stakes
        cells[grade_id].source = "pass  # tests removed by the student"
    elif kind == "delete":
        nb.cells.remove(cells[grade_id])
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("LLMKIT_CELL_TIMEOUT", "60")
    root = course_sim.copy_course(tmp_path_factory.mktemp("course"))
    report = course.build(root, only=ASSIGNMENTS, validate=False)
    assert report.problems == [] and report.generated == ASSIGNMENTS
    expected = {}
    for assignment in ASSIGNMENTS:
        course_sim.submit(root, "solution", assignment, course_sim.solved(root, assignment))
        course_sim.submit(root, "untouched", assignment, course_sim.untouched(root, assignment))
        for spec in graded_entries(assignment):
            course_sim.submit(root, spec["student"], assignment, course_sim.mutated(root, assignment, spec))
            expected[(spec["student"], assignment)] = spec
    # Everyone in one run on the worker pool (one per core), as `llmkit course grade` does.
    started = time.perf_counter()
    result = course.grade(root)
    seconds = time.perf_counter() - started
    timing = f"autograding {len(result['graded'])} notebooks on the worker pool took {seconds:.1f} s"
    print("\n" + timing)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "autograde-timing.txt").write_text(timing + f" ({', '.join(ASSIGNMENTS)})\n")
    outcome = {"graded": result["graded"], "failed": result["failed"]}
    return root, outcome, expected, outcome


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _points(root, assignment, student):
    return course.grade_cells(root, assignment, student)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_earns_full_marks(graded, assignment):
    root, outcome, _, solution_outcome = graded
    assert ("solution", assignment) in solution_outcome["graded"]
    cells = _points(root, assignment, "solution")
    lost = {k: v for k, v in cells.items() if v[0] != v[1]}
    assert not lost, f"the solution lost points on {lost}: {course_sim.feedback_html(root, 'solution', assignment)[:0]}"
    assert sum(v[1] for v in cells.values()) > 0


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_scores_zero_without_crashing(graded, assignment):
    root, outcome, _, _ = graded
    assert ("untouched", assignment) in outcome["graded"]
    assert sum(v[0] for v in _points(root, assignment, "untouched").values()) == 0


def test_every_assignment_has_eight_realistic_mutants():
    for assignment in ASSIGNMENTS:
        realistic = [m for m in mistakes.load(assignment) if m.is_mutant and (m.old is not None or m.replace_cell)]
        assert len(realistic) >= 8, f"{assignment} has {len(realistic)} realistic mutants, needs 8"


REPO = Path(__file__).resolve().parent.parent


def _visible_text(page: str) -> str:
    """The feedback page without its style sheets and scripts (the CSS names a "Generic.Traceback" style), unescaped."""
    return html_text.unescape(re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S | re.I))


def _leaks(feedback: str, root: Path, submitted: str) -> list[str]:
    """What of the grader's internals a student's feedback shows: tracebacks, instructor paths, grader source."""
    leaks = [what for what, marker in (("a traceback", "Traceback"), ("the course root", str(root)),
                                       ("an instructor path", "/work/"), ("the repository path", str(REPO)),
                                       ("grader source", "def check_"), ("a grader file", "llmkit_instructor/grading/"),
                                       ("a reference file", "llmkit_solutions/"))
             if marker in feedback]
    # The reference package's name may appear only where the student's own code names it.
    if "llmkit_solutions" in feedback and "llmkit_solutions" not in submitted:
        leaks.append("the reference package's name")
    return leaks


def test_mutants_lose_exactly_their_points_and_feedback_names_the_mistake(graded):
    root, outcome, expected, _ = graded
    for (student, assignment), spec in expected.items():
        cells = _points(root, assignment, student)
        lost = sorted(k for k, (score, top) in cells.items() if score != top)
        assert lost == sorted(spec["fails"]), f"{assignment}/{student} lost {lost}, expected {spec['fails']}"
        assert all(cells[k][0] == 0 for k in spec["fails"])
        feedback = _visible_text(course_sim.feedback_html(root, student, assignment))
        assert spec["feedback"] in feedback, f"{assignment}/{student}: feedback lacks {spec['feedback']!r}"
        submitted = (root / "submitted" / student / assignment / f"{assignment}.ipynb").read_text()
        leaks = _leaks(feedback, root, submitted)
        assert not leaks, f"{assignment}/{student}: the feedback shows {', '.join(leaks)}"


def test_scores_are_read_back_from_the_gradebook_and_exported(graded):
    root, _, _, _ = graded
    rows = course.scores(root)
    by_key = {(r["student"], r["assignment"]): r for r in rows}
    for assignment in ASSIGNMENTS:
        row = by_key[("solution", assignment)]
        assert row["score"] == row["max_score"] > 0
        assert by_key[("untouched", assignment)]["score"] == 0
    with open(root / "grades.csv", newline="") as f:
        exported = list(csv.DictReader(f))
    assert {(r["student_id"], r["assignment"]) for r in exported} >= set(by_key)


def test_broken_submissions_are_graded_without_losing_other_grades(graded, tmp_path):
    root, _, _, _ = graded
    assignment = "04-attention"
    if assignment not in ASSIGNMENTS:
        pytest.skip("LLMKIT_COURSE_ONLY leaves out 04-attention, where the broken submissions are tried")
    before = course.scores(root)
    for student, how in BROKEN.items():
        nb = how if isinstance(how, str) else _broken_notebook(root, assignment, how)
        course_sim.submit(root, student, assignment, nb)
    outcome = course.grade(root, assignment)  # all five side by side on the pool; must not raise
    handled = {pair[0] for pair in outcome["graded"]} | {f[0] for f in outcome["failed"]}
    assert set(BROKEN) <= handled, f"not graded and not reported as failed: {set(BROKEN) - handled}"
    after = {(r["student"], r["assignment"]): r["score"] for r in course.scores(root)}
    for row in before:
        assert after[(row["student"], row["assignment"])] == row["score"], "another student's grade changed"
    full = sum(v[1] for v in _points(root, assignment, "solution").values())
    # The infinite loop is interrupted by the per-cell timeout; the rest of the notebook still counts.
    loop = _points(root, assignment, "infinite-loop")
    assert loop["self-attention-v1-visible"][0] == 0 and loop["mha-hidden"][0] == loop["mha-hidden"][1]
    # Changed metadata and deleted tests: nbgrader restores the instructor's test cells.
    for student in ("changed-metadata", "deleted-tests"):
        cells = _points(root, assignment, student)
        assert sum(v[1] for v in cells.values()) == full, "max points come from the gradebook, not the submission"
    assert _points(root, assignment, "changed-metadata")["self-attention-v1-visible"][0] == 1
    # A cell that raises costs only what depends on it; the rest of the notebook is still graded.
    raising = _points(root, assignment, "raises-at-import")
    assert raising["mha-hidden"][0] == 0 and raising["mha-visible"][0] == 0
    assert raising["self-attention-v1-hidden"][0] == raising["self-attention-v1-hidden"][1]
    # Read-only cells are restored from the gradebook: breaking the setup cell changes nothing.
