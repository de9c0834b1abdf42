"""The course's gradebook: which database it is, opening it safely, and exports an LMS can import.

nbgrader keeps grades in any SQLAlchemy database. One instructor uses SQLite beside the course
(``course/gradebook.db``); a large class sets ``LLMKIT_GRADEBOOK_URL`` to a PostgreSQL URL.

    url = gradebook_url(course_root)        # LLMKIT_GRADEBOOK_URL, else the course's own SQLite file
    with open_gradebook(url) as gb: ...     # nbgrader's Gradebook; SQLite in WAL mode
    export(url, "grades.csv", "csv")         # or "canvas", "moodle"

SQLite's default rollback journal lets a reader block the one writer, so a status query during
grading can fail with "database is locked". In WAL mode readers never block the writer; the mode
is stored in the file, so every later connection (nbgrader's own included) gets it. WAL needs a
local disk, not a network share: put a shared gradebook in PostgreSQL instead.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from llmkit.errors import LLMKitError

URL_ENV = "LLMKIT_GRADEBOOK_URL"
COURSE_ID = "llmkit"  # nbgrader_config.py's CourseDirectory.course_id
FORMATS = ("csv", "canvas", "moodle")
NOT_SUBMITTED = "not submitted"
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another one instead of failing at once


# --------------------------------------------------------------------------- which database


def gradebook_url(course_root: Path | str | None = None) -> str:
    """``LLMKIT_GRADEBOOK_URL`` if set, else ``sqlite:///COURSE_ROOT/gradebook.db`` (as nbgrader_config.py)."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url:
        if course_root is None:
            raise LLMKitError(f"No gradebook: set {URL_ENV} or pass the course folder.")
        url = "sqlite:///" + str(Path(course_root).resolve() / "gradebook.db")
    return normalize_url(url)


def normalize_url(url: str) -> str:
    """Check a gradebook URL and name its PostgreSQL driver, so any SQLAlchemy 2.x finds psycopg 3."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if url.startswith("postgres://"):  # the short form some hosts print; SQLAlchemy rejects it
        url = "postgresql://" + url[len("postgres://"):]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise LLMKitError(f"{url!r} is not a database URL; use e.g. sqlite:///gradebook.db or "
                          "postgresql://user:password@host/llmkit.") from None
    # SQLAlchemy 2.0 maps a bare postgresql:// to psycopg2, 2.1 to psycopg 3; the kit ships psycopg 3.
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------- opening it


def enable_wal(url: str) -> str | None:
    """Switch a SQLite gradebook file to WAL mode (kept in the file); returns the journal mode, None if not SQLite."""
    path = sqlite_path(url)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        conn.close()


def _sqlite_on_connect(dbapi_connection, connection_record) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")


def install_sqlite_pragmas() -> None:
    """Give every SQLite connection SQLAlchemy opens in this process WAL mode and a busy timeout.

    nbgrader creates its engines itself, deep inside its apps; a listener on the Engine class is the
    one place that reaches them. Safe to call more than once.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_on_connect):
        event.listen(Engine, "connect", _sqlite_on_connect)


def quiet_nbgrader_warnings() -> None:
    """Hide SQLAlchemy 2.x's notice about how nbgrader adds a new submission, and nothing else.

    nbgrader builds a submission's notebooks and grades before adding them to its session, and
    SQLAlchemy 2.x warns ("Object of type <SubmittedAssignment> not in session, add operation ...
    will not proceed") although nbgrader adds them right after; the grades are stored either way.
    """
    import warnings

    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session",
                            category=SAWarning, module=r"nbgrader\.")


def open_gradebook(url: str, course_id: str = COURSE_ID, must_exist: bool = False):
    """nbgrader's ``Gradebook`` on ``url`` (use it in a ``with``); SQLite in WAL mode.

    With ``must_exist``, a missing SQLite file is an error instead of a new empty gradebook.
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import OperationalError

    url = normalize_url(url)
    path = sqlite_path(url)
    if must_exist and path is not None and not path.is_file():
        raise LLMKitError(f"No gradebook at {path}; grade some submissions first (llmkit course grade).")
    install_sqlite_pragmas()
    enable_wal(url)
    try:
        return Gradebook(url, course_id=course_id)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise LLMKitError(f"Cannot open the gradebook {safe_url(url)}: {reason}") from None


# --------------------------------------------------------------------------- reading it


@dataclass(frozen=True)
class Row:
    """One student's result on one assignment; ``score`` is None when nothing was submitted."""

    student: str
    first_name: str
    last_name: str
    email: str
    lms_user_id: str
    assignment: str
    status: str  # "graded", "needs manual grading" or "not submitted"
    score: float | None  # points after any late penalty
    max_score: float
    late_penalty: float


def rows(gb) -> list[Row]:
    """Every student x every assignment of an open nbgrader Gradebook, students and assignments sorted."""
    results = {}
    max_scores = {}
    for assignment in gb.assignments:
        max_scores[assignment.name] = float(assignment.max_score or 0)
        for sub in assignment.submissions:
            penalty = float(sub.late_submission_penalty or 0)
            status = "needs manual grading" if sub.needs_manual_grade else "graded"
            results[sub.student_id, assignment.name] = (status, max(float(sub.score or 0) - penalty, 0.0), penalty)
    out = []
    for student in sorted(gb.students, key=lambda s: s.id):
        for name in sorted(max_scores):
            status, score, penalty = results.get((student.id, name), (NOT_SUBMITTED, None, 0.0))
            out.append(Row(student.id, student.first_name or "", student.last_name or "", student.email or "",
                           student.lms_user_id or "", name, status, score, max_scores[name], penalty))
    return out


def _points(value: float | None) -> str:
    """A score as an LMS reads it: '7.5', '10', '0'; empty for not submitted (never a 0)."""
    if value is None:
        return ""
    return f"{value:.4f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- exports


def _write_csv(table: list[Row], out) -> None:
    """One row per student x assignment; a status column tells 'not submitted' from a score of 0."""
    writer = csv.writer(out)
    writer.writerow(["student_id", "first_name", "last_name", "email", "assignment", "status",
                     "score", "max_score", "late_penalty"])
    for r in table:
        writer.writerow([r.student, r.first_name, r.last_name, r.email, r.assignment, r.status,
                         _points(r.score), _points(r.max_score), _points(r.late_penalty)])


def _by_student(table: list[Row]) -> tuple[list[str], dict[str, float], dict[str, list[Row]]]:
    assignments = sorted({r.assignment for r in table})
    max_scores = {r.assignment: r.max_score for r in table}
    students: dict[str, list[Row]] = {}
    for r in table:
        students.setdefault(r.student, []).append(r)
    return assignments, max_scores, students


def _write_canvas(table: list[Row], out, section: str = "") -> None:
    """Canvas's gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, one column per
    assignment (its total points), and a 'Points Possible' row under the header. 'Not submitted' is
    a blank cell, never a 0; a column whose name matches no Canvas assignment creates one."""
    assignments, max_scores, students = _by_student(table)
    writer = csv.writer(out)
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignments])
    writer.writerow(["Points Possible", "", "", "", "", *(_points(max_scores[a]) for a in assignments)])
    for student, results in students.items():
        first = results[0]
        name = f"{first.last_name}, {first.first_name}" if first.last_name and first.first_name else \
            (first.last_name or first.first_name or student)
        scores = {r.assignment: _points(r.score) for r in results}
        # nbgrader's student id is the login name students use; Canvas's own numeric id is known
        # only when the instructor stored it as the student's lms_user_id.
        writer.writerow([name, first.lms_user_id, "", student, section, *(scores[a] for a in assignments)])


def _write_moodle(table: list[Row], out) -> None:
    """Moodle's CSV grade import: identity columns (map 'Username' or 'Email address' to the user
    in Moodle's import form), then one column per grade item; no total, which Moodle computes."""
    assignments, _, students = _by_student(table)
    writer = csv.writer(out)
    writer.writerow(["First name", "Last name", "Username", "Email address", *assignments])
    for student, results in students.items():
        first = results[0]
        scores = {r.assignment: _points(r.score) for r in results}
        writer.writerow([first.first_name, first.last_name, student, first.email, *(scores[a] for a in assignments)])


def export(source, path: Path | str, format: str = "csv", section: str = "") -> Path:
    """Write the gradebook as ``csv``, ``canvas`` or ``moodle`` CSV to ``path``; returns the path.

    ``source`` is a gradebook URL, an open nbgrader ``Gradebook``, or an ``NbGraderAPI`` (its
    ``.gradebook``). ``section`` fills Canvas's Section column.
    """
    if format not in FORMATS:
        raise LLMKitError(f"Unknown export format {format!r}; choose one of: {', '.join(FORMATS)}.")
    if isinstance(source, (str, os.PathLike)):
        with open_gradebook(str(source), must_exist=True) as gb:
            table = rows(gb)
    elif hasattr(source, "assignments") and hasattr(source, "students"):  # an open Gradebook
        table = rows(source)
    elif hasattr(source, "gradebook"):  # NbGraderAPI
        with source.gradebook as gb:
            table = rows(gb)
    else:
        raise LLMKitError(f"Cannot export from a {type(source).__name__}; pass a gradebook URL, "
                          "a Gradebook or an NbGraderAPI.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        if format == "csv":
            _write_csv(table, out)
        elif format == "canvas":
            _write_canvas(table, out, section)
        else:
            _write_moodle(table, out)
    return path
