"""nbgrader's exchange in the kit's verbs: collect what students submitted, return their feedback.

The exchange is a folder shared by the instructor and the students (``Exchange.root``):

    ROOT/COURSE/outbound/ASSIGNMENT/          released assignments (JupyterLab's Assignments tab)
    ROOT/COURSE/inbound/STUDENT+ASSIGNMENT+TIMESTAMP+RANDOM/   submissions, with submission_secret.txt
    ROOT/COURSE/feedback/HASH.html            returned feedback, found by the submitting student only
                                              (HASH comes from the submission's secret)

``llmkit course grade`` collects, grades and returns feedback in one go; ``student_setup`` writes
the one config file a student needs for the Assignments tab to find the course.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import LLMKitError

SETUP_MARK = "# written by `llmkit course student-setup`"


def _course_path(nbapi) -> Path | None:
    root = getattr(nbapi, "exchange_root", "") or ""
    if not root or not nbapi.coursedir.course_id:
        return None
    return Path(root) / nbapi.coursedir.course_id


def waiting(nbapi) -> dict[tuple[str, str], str]:
    """(student, assignment) -> timestamp of the newest submission in the exchange's inbound folder."""
    course = _course_path(nbapi)
    found: dict[tuple[str, str], str] = {}
    if course is None or not (course / "inbound").is_dir():
        return found
    for entry in (course / "inbound").iterdir():
        parts = entry.name.split("+")
        if len(parts) < 3 or not entry.is_dir():
            continue
        student, assignment, timestamp = parts[0], parts[1], parts[2]
        if timestamp > found.get((student, assignment), ""):
            found[student, assignment] = timestamp
    return found


def collect(nbapi, assignments, student: str | None = None) -> list[tuple[str, str]]:
    """nbgrader's collect for each assignment with submissions waiting; returns the pairs it brought in."""
    from nbgrader.utils import capture_log, temp_attrs

    course_root = Path(nbapi.coursedir.root)
    pending = {pair for pair in waiting(nbapi) if pair[1] in assignments and student in (None, pair[0])}
    before = {pair: _timestamp(course_root, *pair) for pair in pending}
    for assignment in sorted({a for _, a in pending}):
        with temp_attrs(nbapi.coursedir, assignment_id=assignment, student_id=student or "*"):
            app = nbapi.exchange.Collect(coursedir=nbapi.coursedir, authenticator=nbapi.authenticator, parent=nbapi)
            app.update = True  # a newer submission replaces the one collected before
            result = capture_log(app)
        if not result["success"]:
            last = (result.get("error") or "").strip().splitlines()[-1:] or ["unknown error"]
            raise LLMKitError(f"collecting {assignment} from the exchange failed: {last[0]}")
    return sorted(pair for pair in pending if _timestamp(course_root, *pair) != before[pair])


def _timestamp(course_root: Path, student: str, assignment: str) -> str:
    path = course_root / "submitted" / student / assignment / "timestamp.txt"
    return path.read_text().strip() if path.is_file() else ""


def _feedback_files(nbapi, student: str, assignment: str) -> list[Path]:
    """Where the exchange keeps this submission's feedback: one HTML per notebook, named by its secret."""
    from nbgrader.utils import notebook_hash

    course = _course_path(nbapi)
    submitted = Path(nbapi.coursedir.root) / "submitted" / student / assignment
    secret = submitted / "submission_secret.txt"
    if course is None or not secret.is_file():
        return []
    key = secret.read_text()
    return [course / "feedback" / f"{notebook_hash(secret=key, notebook_id=nb.stem)}.html"
            for nb in sorted(submitted.glob("*.ipynb"))]


def returned(nbapi, student: str, assignment: str) -> bool:
    """Whether the exchange holds this submission's feedback (the student's Fetch Feedback finds it)."""
    files = _feedback_files(nbapi, student, assignment)
    return bool(files) and all(f.is_file() for f in files)


def return_feedback(nbapi, student: str, assignment: str) -> bool:
    """Write the feedback HTML and, for a submission that came through the exchange, release it there."""
    result = nbapi.generate_feedback(assignment, student, force=True)
    if not result["success"]:
        last = (result.get("error") or "").strip().splitlines()[-1:] or ["unknown error"]
        raise LLMKitError(f"feedback for {student}/{assignment} failed: {last[0]}")
    if not _feedback_files(nbapi, student, assignment):
        return False  # placed in submitted/ by hand: there is no exchange copy to answer
    result = nbapi.release_feedback(assignment, student)
    if not result["success"]:
        last = (result.get("error") or "").strip().splitlines()[-1:] or ["unknown error"]
        raise LLMKitError(f"returning feedback for {student}/{assignment} to the exchange failed: {last[0]}")
    return returned(nbapi, student, assignment)


# --------------------------------------------------------------------------- the student's side


def student_config_path() -> Path:
    from jupyter_core.paths import jupyter_config_dir

    return Path(jupyter_config_dir()) / "nbgrader_config.py"


def student_config(course_id: str, exchange: Path) -> str:
    return (f"{SETUP_MARK}: where JupyterLab's Assignments tab finds the course.\n"
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {course_id!r}\n"
            f"c.Exchange.root = {str(exchange)!r}\n"
            "# The Validate button: each failed test as its exercise's title and one sentence.\n"
            "from llmkit.validate_summary import use_in_validate\n"
            "use_in_validate(c)\n")


def student_setup(course_id: str, exchange: Path | str, path: Path | str | None = None,
                  force: bool = False) -> Path:
    """Write a student's nbgrader_config.py (default ~/.jupyter/nbgrader_config.py); returns its path."""
    exchange = Path(exchange).expanduser().resolve()
    if not exchange.is_dir():
        raise LLMKitError(f"no exchange folder at {exchange}; ask your instructor for the course's exchange path")
    if not os.access(exchange, os.R_OK | os.X_OK):
        raise LLMKitError(f"cannot read the exchange folder {exchange}; ask your instructor to make it readable "
                          "(nbgrader's exchange is shared: chmod 777)")
    path = Path(path).expanduser() if path else student_config_path()
    text = student_config(course_id, exchange)
    if path.exists() and not force and path.read_text() != text and SETUP_MARK not in path.read_text():
        raise LLMKitError(f"{path} already exists and was not written by llmkit; add --force to replace it, "
                          "or add its two settings yourself (CourseDirectory.course_id, Exchange.root)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
