"""The whole exchange loop without a browser, through nbgrader's own exchange classes.

A student set up with ``llmkit course student-setup`` fetches 04-attention, makes one mistake and
submits it (the Assignments tab does exactly these calls); the instructor's ``llmkit course grade``
collects, grades and returns the feedback; the student's Fetch Feedback gets an HTML page that
names the mistake and shows no grader traceback, instructor path or hidden test. ``llmkit course
status`` tells what is waiting, graded and returned.
"""

import json
import re
from html import unescape

import nbformat
import pytest
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from tests import course_sim
from tests.grading_sim import ASSIGNMENT, built_course, llmkit, require_bubblewrap

pytestmark = pytest.mark.slow
STUDENT = "ada"


def _mistake() -> dict:
    """04-attention's first mutant: the hidden test names it in the feedback."""
    return json.loads((course_sim.COURSE / "mutants" / f"{ASSIGNMENT}.json").read_text())[0]


def _student_config(path, home):
    """The file student-setup wrote, plus what a real student's machine has anyway: their own user
    name (here: a student id, as root runs the test), a cache and a home for assignments."""
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    config.merge(Config({"CourseDirectory": {"student_id": STUDENT},
                         "Exchange": {"cache": str(home / "cache"), "assignment_dir": str(home)}}))
    return config


def _student_does(app_name: str, config, assignment: str = ASSIGNMENT):
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    factory = ExchangeFactory(config=config)
    app = getattr(factory, app_name)(coursedir=coursedir, authenticator=Authenticator(config=config), config=config)
    return app.start()


def _status_of(root) -> str:
    result = llmkit("course", "status", "--course", str(root))
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith(STUDENT))
    return line.split()[2]


def test_submit_collect_grade_and_fetch_feedback(tmp_path_factory):
    require_bubblewrap()
    root = built_course(tmp_path_factory, "exchange")
    released = llmkit("course", "release", "--course", str(root))
    assert released.returncode == 0, released.stderr[-2000:]
    assert f"released {ASSIGNMENT} to {root / 'exchange'}" in released.stdout
    assert "not built, so not released:" in released.stdout and "llmkit course build" in released.stdout

    home = tmp_path_factory.mktemp("ada-home")
    setup = llmkit("course", "student-setup", "--course-id", "llmkit", "--exchange", str(root / "exchange"),
                   "--config", str(home / ".jupyter" / "nbgrader_config.py"))
    assert setup.returncode == 0, setup.stderr
    config = _student_config(home / ".jupyter" / "nbgrader_config.py", home)

    _student_does("FetchAssignment", config)
    fetched = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(fetched, as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in course_sim.solved(root, ASSIGNMENT).cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    mistake = _mistake()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id].replace(mistake["old"], mistake["new"]) if grade_id == mistake["cell"] \
                else answers[grade_id]
    nbformat.write(nb, fetched)
    _student_does("Submit", config)
    assert _status_of(root) == "waiting"

    graded = llmkit("course", "grade", "--course", str(root))
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    assert "collected        1" in graded.stdout and "returned         1" in graded.stdout, graded.stdout
    assert _status_of(root) == "returned"

    _student_does("FetchFeedback", config)
    pages = list((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
    assert len(pages) == 1, list((home / ASSIGNMENT).rglob("*"))
    html = pages[0].read_text()
    page = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S)  # the page's CSS names "Traceback"
    text = unescape(re.sub(r"<[^>]+>", "", page))  # what the student reads (outputs are split into spans)
    assert mistake["feedback"] in text
    for leak in ("Traceback", str(root), "site-packages", "llmkit_instructor/grading", "BEGIN HIDDEN TESTS", "check_multi_head"):
        assert leak not in text, f"the feedback shows {leak!r}"
    assert str(root) not in html
