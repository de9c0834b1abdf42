"""The instructor's side of the course, over nbgrader's Python API.

``build``: validate every source notebook (the solution passes its own tests), generate the student
versions, and check that no release contains solution code or hidden tests. ``grade``: autograde
every submission, generate feedback, export grades to CSV. ``status``: who submitted what, scores.
Kernel launch and result collection happen only through nbgrader's executor configured in
``course/nbgrader_config.py``, so grading can later move into a sandbox in one place.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .errors import LLMKitError

HIDDEN_MARK = "BEGIN HIDDEN TESTS"
SOLUTION_MARK = "BEGIN SOLUTION"


def default_course_root() -> Path:
    here = Path.cwd()
    for candidate in (here, here / "course", Path(__file__).resolve().parent.parent / "course"):
        if (candidate / "nbgrader_config.py").is_file():
            return candidate
    raise LLMKitError("No course found; run from the folder holding nbgrader_config.py or pass --course PATH.")


@contextlib.contextmanager
def _in_dir(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def api(course_root: Path):
    """An ``NbGraderAPI`` configured from the course's nbgrader_config.py."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    loader = PyFileConfigLoader("nbgrader_config.py", path=str(course_root))
    config = loader.load_config()
    config.merge(Config({"CourseDirectory": {"root": str(course_root)}}))
    exchange = Path(config.Exchange.root)
    if not exchange.exists() and course_root in exchange.parents:
        exchange.mkdir(parents=True)
        exchange.chmod(0o777)  # nbgrader's exchange is shared by the instructor and the students
    return NbGraderAPI(config=config)


def assignments(course_root: Path) -> list[str]:
    return sorted(p.name for p in (course_root / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass
class BuildReport:
    generated: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def _validate(notebook: Path, config=None) -> list[str]:
    """nbgrader's validator on the source notebook: every test must pass against the solution."""
    from nbgrader.validator import Validator

    validator = Validator(config=config)  # the course's Execute.timeout applies here too
    validator.validate_all_cells = True
    result = validator.validate(str(notebook))
    problems = [f"{notebook.name}: cell type changed: {c['source'][:60]!r}" for c in result.get("type_changed", [])]
    for failure in result.get("failed", []):
        last = (failure.get("raw_error") or "").strip().splitlines()[-1:] or [""]
        problems.append(f"{notebook.name}: a test fails on the solution: {last[0][:300]}")
    return problems


def check_release(release_dir: Path) -> list[str]:
    """Solution code and hidden tests must never reach students."""
    problems = []
    for nb in release_dir.rglob("*.ipynb"):
        text = nb.read_text(encoding="utf-8")
        for mark in (HIDDEN_MARK, SOLUTION_MARK, "END HIDDEN TESTS", "END SOLUTION"):
            if mark in text:
                problems.append(f"{nb}: the release still contains '{mark}'")
    return problems


def build(course_root: Path | None = None, only: list[str] | None = None, validate: bool = True) -> BuildReport:
    course_root = Path(course_root or default_course_root()).resolve()
    report = BuildReport()
    names = only or assignments(course_root)
    with _in_dir(course_root):
        nbapi = api(course_root)
        for name in tqdm(names, desc="build", unit="assignment"):
            if validate:
                for nb in sorted((course_root / "source" / name).glob("*.ipynb")):
                    report.problems += _validate(nb, nbapi.config)
            result = nbapi.generate_assignment(name, force=True)
            if not result["success"]:
                report.problems.append(f"{name}: generate_assignment failed: {result['error'][-400:]}")
                continue
            report.generated.append(name)
            report.problems += check_release(course_root / "release" / name)
    return report


def release(course_root: Path | None = None, only: list[str] | None = None) -> list[str]:
    """Copy the generated assignments to the exchange, where the JupyterLab assignment list finds them."""
    course_root = Path(course_root or default_course_root()).resolve()
    done = []
    with _in_dir(course_root):
        nbapi = api(course_root)
        for name in only or assignments(course_root):
            result = nbapi.release_assignment(name)
            if not result["success"]:
                raise LLMKitError(f"Releasing {name} failed: {result['error'].strip().splitlines()[-1]}")
            done.append(name)
    return done


def submitted(course_root: Path) -> list[tuple[str, str]]:
    """(student, assignment) pairs found in submitted/."""
    root = course_root / "submitted"
    if not root.is_dir():
        return []
    return sorted((s.name, a.name) for s in root.iterdir() if s.is_dir() for a in s.iterdir() if a.is_dir())


def grade(course_root: Path | None = None, assignment: str | None = None, student: str | None = None,
          csv_path: Path | None = None, sandbox: bool = True) -> dict:
    """Autograde, generate feedback and export CSV; one broken submission never stops the others.

    Student kernels run in the bubblewrap sandbox and every test cell is judged in this process
    (``llmkit.grading.trusted``). ``sandbox=False`` keeps the trusted verdicts but lets kernels see
    the machine: for trying a course on a laptop, never for a real class.
    """
    course_root = Path(course_root or default_course_root()).resolve()
    if sandbox:
        from .grading.sandbox import preflight

        os.environ.pop("LLMKIT_NO_SANDBOX", None)
        preflight()  # one line naming the fix, before any submission is touched
    else:
        os.environ["LLMKIT_NO_SANDBOX"] = "1"
    pairs = [(s, a) for s, a in submitted(course_root)
             if (assignment is None or a == assignment) and (student is None or s == student)]
    if not pairs:
        raise LLMKitError(f"No submissions to grade in {course_root / 'submitted'} "
                          "(expected submitted/STUDENT/ASSIGNMENT/*.ipynb).")
    outcome = {"graded": [], "failed": []}
    with _in_dir(course_root):
        nbapi = api(course_root)
        for student_id, assignment_id in tqdm(pairs, desc="grade", unit="submission"):
            result = nbapi.autograde(assignment_id, student_id, force=True, create=True)
            if not result["success"]:
                outcome["failed"].append((student_id, assignment_id, result["error"].strip()[-500:]))
                continue
            nbapi.generate_feedback(assignment_id, student_id, force=True)
            outcome["graded"].append((student_id, assignment_id))
        export_csv(course_root, csv_path or course_root / "grades.csv", nbapi)
    return outcome


def export_csv(course_root: Path, path: Path, nbapi=None) -> Path:
    from nbgrader.plugins import CsvExportPlugin

    nbapi = nbapi or api(course_root)
    plugin = CsvExportPlugin(to=str(path))
    with nbapi.gradebook as gb:
        plugin.export(gb)
    return path


def scores(course_root: Path | None = None) -> list[dict]:
    """One row per (student, assignment) in the gradebook, with points and max points."""
    course_root = Path(course_root or default_course_root()).resolve()
    rows = []
    with _in_dir(course_root):
        nbapi = api(course_root)
        with nbapi.gradebook as gb:
            for assignment in gb.assignments:
                for submission in assignment.submissions:
                    rows.append({"student": submission.student.id, "assignment": assignment.name,
                                 "score": submission.score, "max_score": submission.max_score,
                                 "timestamp": str(submission.timestamp or "")})
    return rows


def grade_cells(course_root: Path, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """grade_id -> (points earned, max points) for one autograded submission."""
    with _in_dir(course_root):
        nbapi = api(course_root)
        with nbapi.gradebook as gb:
            submission = gb.find_submission(assignment, student)
            return {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}
