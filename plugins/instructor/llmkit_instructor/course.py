"""The instructor's side of the course, over nbgrader's Python API.

``build``: validate every source notebook (the solution passes its own tests), generate the student
versions, and check that no release contains solution code or hidden tests. ``release``: publish
built assignments to the exchange. ``grade``: collect submissions from the exchange, grade what is
new or changed on parallel workers (``llmkit_instructor.grading.parallel``), return feedback to the exchange,
export grades.csv. ``status``: what is waiting, graded and returned. Student code runs only in the
sandboxed kernels of nbgrader's executor configured in ``course/nbgrader_config.py``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from llmkit.errors import LLMKitError

HIDDEN_MARK = "BEGIN HIDDEN TESTS"
SOLUTION_MARK = "BEGIN SOLUTION"


def kit_checkout() -> Path:
    """The folder holding the kit's checkout (its course/, docs/): where ``pip install -e .`` points ``llmkit``."""
    import llmkit

    return Path(llmkit.__file__).resolve().parent.parent


def default_course_root() -> Path:
    here = Path.cwd()
    for candidate in (here, here / "course", kit_checkout() / "course"):
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
    """The English assignments (``source/NN-name``)."""
    return sorted(p.name for p in (course_root / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


def edition_assignments(course_root: Path) -> list[str]:
    """The assignments of the editions written so far (``source-es/04-attention-es``; ``build --lang``)."""
    return sorted(p.name for folder in Path(course_root).glob("source-*") if folder.is_dir()
                  for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def every_assignment(course_root: Path) -> list[str]:
    """English and editions: what release and grade look at when no assignment is named."""
    return assignments(course_root) + edition_assignments(course_root)


@dataclass
class BuildReport:
    generated: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    validated: bool = False  # whether every solution ran against its tests


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
    from .gradebook import quiet_nbgrader_warnings

    course_root = Path(course_root or default_course_root()).resolve()
    report = BuildReport(validated=validate)
    names = only or assignments(course_root)
    quiet_nbgrader_warnings()
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


def built(course_root: Path) -> list[str]:
    """Assignments (editions included) whose student version exists in release/."""
    return [a for a in every_assignment(course_root) if any((course_root / "release" / a).glob("*.ipynb"))]


def release(course_root: Path | None = None, only: list[str] | None = None, force: bool = False) -> dict:
    """Copy generated assignments to the exchange, where JupyterLab's Assignments tab finds them.

    Without ``only``, every built assignment goes out and the unbuilt ones are listed in
    ``not_built``; a named assignment that is not built is an error naming ``llmkit course build``.
    """
    from nbgrader.utils import capture_log, temp_attrs

    course_root = Path(course_root or default_course_root()).resolve()
    ready = built(course_root)
    if only:
        missing = [a for a in only if a not in ready]
        if missing:
            raise LLMKitError(f"{', '.join(missing)} not built yet; "
                              f"run `llmkit course build {' '.join(missing)}` first.")
    names = only or ready
    done = {"released": [], "already": [], "not_built": [a for a in assignments(course_root) if a not in ready]}
    with _in_dir(course_root):
        nbapi = api(course_root)
        outbound = Path(nbapi.exchange_root) / nbapi.course_id / "outbound"
        for name in names:
            if (outbound / name).is_dir() and not force:
                done["already"].append(name)
                continue
            with temp_attrs(nbapi.coursedir, assignment_id=name):
                app = nbapi.exchange.ReleaseAssignment(coursedir=nbapi.coursedir, authenticator=nbapi.authenticator,
                                                       parent=nbapi)
                app.force = force
                result = capture_log(app)
            if not result["success"]:
                raise LLMKitError(f"Releasing {name} failed: {result['error'].strip().splitlines()[-1]}")
            done["released"].append(name)
    done["exchange"] = str(outbound.parent.parent)
    return done


def submitted(course_root: Path) -> list[tuple[str, str]]:
    """(student, assignment) pairs found in submitted/."""
    root = course_root / "submitted"
    if not root.is_dir():
        return []
    return sorted((s.name, a.name) for s in root.iterdir() if s.is_dir() for a in s.iterdir() if a.is_dir())


def default_workers() -> int:
    """One grading worker per core when Dask is installed, else grading in this process (0)."""
    from .grading.parallel import cores, have_dask

    return cores() if have_dask() else 0


def grade(course_root: Path | None = None, assignment: str | None = None, student: str | None = None,
          csv_path: Path | None = None, sandbox: bool = True, workers: int | None = None,
          cluster: str | None = None, force: bool = False, progress: bool = True) -> dict:
    """Collect from the exchange, grade what is new or changed, return feedback, export grades.csv.

    ``workers`` local worker processes run the notebooks (default: one per core; 0: this process);
    ``cluster`` sends them to a running Dask scheduler instead. One coordinator, this process, alone
    writes the gradebook. One broken submission never stops the others; ``force`` grades again what
    is unchanged. Student kernels run in the bubblewrap sandbox and every test cell is judged in the
    grader (``llmkit_instructor.grading.trusted``); ``sandbox=False`` keeps the trusted verdicts but lets kernels
    see the machine: for trying a course on a laptop, never for a real class.

    Returns a dict: ``graded``, ``unchanged``, ``returned``, ``collected`` [(student, assignment)],
    ``failed`` [(student, assignment, reason)], ``seconds`` per stage, ``notebooks``, ``wall_seconds``.
    """
    from .grading import exchange, parallel
    from .gradebook import export, install_sqlite_pragmas, quiet_nbgrader_warnings

    course_root = Path(course_root or default_course_root()).resolve()
    if sandbox:
        os.environ.pop("LLMKIT_NO_SANDBOX", None)
        if not cluster:
            from .grading.sandbox import preflight

            preflight()  # one line naming the fix, before any submission is touched
    else:
        os.environ["LLMKIT_NO_SANDBOX"] = "1"
    quiet_nbgrader_warnings()
    install_sqlite_pragmas()
    with _in_dir(course_root):
        nbapi = api(course_root)
        names = [assignment] if assignment else every_assignment(course_root)
        collected = exchange.collect(nbapi, names, student)
        pairs = [(s, a) for s, a in submitted(course_root)
                 if (assignment is None or a == assignment) and (student is None or s == student)]
        if not pairs:
            raise LLMKitError(f"No submissions to grade: none waiting in the exchange ({nbapi.exchange_root}) "
                              f"and none in {course_root / 'submitted'} (STUDENT/ASSIGNMENT/*.ipynb).")
        todo, unchanged = parallel.plan(course_root, nbapi, pairs, force)
        if workers is None:
            workers = default_workers()
        if not cluster:
            workers = min(workers, len(todo)) if len(todo) > 1 else 0  # one submission: no pool to start
        outcome = parallel.grade_all(course_root, nbapi, todo, workers, cluster, progress=progress,
                                     after_record=lambda s, a: exchange.return_feedback(nbapi, s, a))
        outcome.unchanged = unchanged
        export(nbapi, csv_path or course_root / "grades.csv", "csv")
    result = dict(vars(outcome))
    result["collected"] = collected
    return result


def export_csv(course_root: Path, path: Path, nbapi=None) -> Path:
    """grades.csv: one row per student and assignment; 'not submitted' is never a 0."""
    from .gradebook import export

    return export(nbapi or api(course_root), path, "csv")


def status(course_root: Path | None = None) -> list[dict]:
    """Every (student, assignment) seen in the exchange, submitted/ or the gradebook, with its state:
    ``waiting`` (in the exchange, or collected but not graded as it is now), ``graded``, or
    ``returned`` (graded, and the feedback is in the exchange for Fetch Feedback); and its score."""
    from .grading import exchange, parallel

    course_root = Path(course_root or default_course_root()).resolve()
    with _in_dir(course_root):
        nbapi = api(course_root)
        inbound = exchange.waiting(nbapi)
        logged = parallel.GradingLog(course_root).entries()
        scored = {(r["student"], r["assignment"]): r for r in _scores(nbapi)}
        here = set(submitted(course_root))
        rows = []
        for student, assignment in sorted(set(inbound) | here | set(scored)):
            pair = (student, assignment)
            collected = exchange._timestamp(course_root, student, assignment)
            entry = logged.get(pair)
            if pair in inbound and inbound[pair] > collected:
                state, note = "waiting", "in the exchange"
            elif pair in here and pair in logged and \
                    entry["hash"] != parallel.submission_hash(course_root, student, assignment):
                state, note = "waiting", "changed since graded"
            elif pair in here and pair not in scored:
                state, note = "waiting", "collected"
            elif exchange.returned(nbapi, student, assignment):
                state, note = "returned", ""
            else:
                state, note = "graded", ""
            row = scored.get(pair, {})
            rows.append({"student": student, "assignment": assignment, "state": state, "note": note,
                         "score": row.get("score"), "max_score": row.get("max_score")})
    return rows


def _scores(nbapi) -> list[dict]:
    rows = []
    with nbapi.gradebook as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                rows.append({"student": submission.student.id, "assignment": assignment.name,
                             "score": submission.score, "max_score": submission.max_score,
                             "timestamp": str(submission.timestamp or "")})
    return rows


def scores(course_root: Path | None = None) -> list[dict]:
    """One row per (student, assignment) in the gradebook, with points and max points."""
    course_root = Path(course_root or default_course_root()).resolve()
    with _in_dir(course_root):
        return _scores(api(course_root))


def grade_cells(course_root: Path, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """grade_id -> (points earned, max points) for one autograded submission."""
    with _in_dir(course_root):
        nbapi = api(course_root)
        with nbapi.gradebook as gb:
            submission = gb.find_submission(assignment, student)
            return {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}
