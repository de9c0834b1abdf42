"""nbgrader's exchange in the kit's verbs: collect what students submitted, return their feedback.

The exchange is a folder shared by the instructor and the students (``Exchange.root``):

    ROOT/COURSE/outbound/ASSIGNMENT/          released assignments (JupyterLab's Assignments tab)
    ROOT/COURSE/inbound/STUDENT+ASSIGNMENT+TIMESTAMP+RANDOM/   submissions, with submission_secret.txt
    ROOT/COURSE/feedback/HASH.html            returned feedback, found by the submitting student only
                                              (HASH comes from the submission's secret)

``llmkit course grade`` collects, grades and returns feedback in one go. The student's side, the one
config file the Assignments tab needs to find the course, is ``llmkit.student`` (in the kit).
"""

from __future__ import annotations

from pathlib import Path

from llmkit.errors import LLMKitError

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
