"""Trusted grading against hostile submissions, with the real sandbox and real nbgrader.

One run grades, in this order: the solved and untouched controls, every attack in ``tests/attacks.py``
and the tampered notebooks, then the controls again. Every attack must earn 0 points (none of them
implements anything), the controls must keep full marks and 0 before and after, the gradebook and
the instructor's folders must not change, nothing may reach a loopback listener, no secret may reach
any output or feedback, and no process of a sandbox may outlive grading.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from llmkit_instructor import course
from tests import attacks, course_sim

pytestmark = pytest.mark.slow
ASSIGNMENT = "04-attention"
SECRET = "LLMKIT-SECRET-7f3a9c"


def _require_bubblewrap():
    if shutil.which("bwrap") is None:
        message = "bubblewrap is not installed (apt-get install -y bubblewrap); the sandbox tests need it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


class Listener:
    """A TCP listener on the grader's loopback that records anything sent to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.received.append(conn.recv(1024) or b"(connected)")
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def _tree_digest(root: Path, skip: tuple = ()) -> dict:
    digests = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_file() and not rel.startswith(skip):
            digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def _attack_notebook(root: Path, source: str):
    nb = course_sim.untouched(root, ASSIGNMENT)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "self-attention-v1":
            cell.source = source
    return nb


def _tampered(root: Path, how: str):
    nb = course_sim.untouched(root, ASSIGNMENT)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    if how == "points-raised":
        for cell in tests:
            cell.metadata["nbgrader"]["points"] = 1000
    elif how == "tests-unlocked-and-emptied":
        for cell in tests:
            cell.metadata["nbgrader"]["locked"] = False
            cell.source = "pass"
    elif how == "grade-flags-dropped":
        for cell in tests:
            cell.metadata["nbgrader"]["grade"] = False
            cell.source = "pass"
    elif how == "duplicate-grade-id":
        extra = nbformat.v4.new_code_cell("print('all good')", metadata={"nbgrader": dict(tests[0].metadata["nbgrader"])})
        nb.cells.insert(1, extra)
    elif how == "fake-test-cell":  # a test cell the gradebook never saw, claiming points and grader privileges
        meta = {"grade": True, "grade_id": "bonus", "locked": True, "points": 50, "schema_version": 3,
                "solution": False, "task": False}
        code = f"import pathlib\npathlib.Path({attacks.PWNED!r}).write_text('the grader ran student code')\n"
        nb.cells.insert(2, nbformat.v4.new_code_cell(code, metadata={"nbgrader": meta}))
    return nb


def _sandbox_processes() -> list[str]:
    """Processes of sandbox user ids started from this test's Python (other graders on the machine aside)."""
    out = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if line.split() and int(line.split()[0]) >= 200000 and sys.prefix in line]


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    _require_bubblewrap()
    mp = pytest.MonkeyPatch()
    mp.setenv("LLMKIT_CELL_TIMEOUT", "20")
    mp.setenv("LLMKIT_NOTEBOOK_TIMEOUT", "180")
    root = course_sim.copy_course(tmp_path_factory.mktemp("attacks"))
    report = course.build(root, only=[ASSIGNMENT], validate=False)
    assert report.problems == []
    listener = Listener()
    course_sim.submit(root, "solution", ASSIGNMENT, course_sim.solved(root, ASSIGNMENT))
    course_sim.submit(root, "untouched", ASSIGNMENT, course_sim.untouched(root, ASSIGNMENT))
    course.grade(root, ASSIGNMENT)  # the controls: solved and untouched
    # Secrets an attacker would love: one in the instructor's folder, one in another student's work.
    (root / "instructor-notes.txt").write_text(f"{SECRET} the answer key lives in source/\n")
    (root / "autograded" / "solution" / ASSIGNMENT / "secret.txt").write_text(SECRET)
    before_grades = {(r["student"], r["assignment"]): r["score"] for r in course.scores(root)}
    protected = ("source", "release", "autograded/solution", "autograded/untouched", "feedback/solution",
                 "feedback/untouched", "nbgrader_config.py", "instructor-notes.txt")
    before_files = {p: _tree_digest(root / p) if (root / p).is_dir() else (root / p).read_bytes()
                    for p in protected}
    students = []
    for name, source in attacks.ATTACKS.items():
        text = source.replace("{course}", str(root)).replace("{port}", str(listener.port))
        course_sim.submit(root, f"attack-{name}", ASSIGNMENT, _attack_notebook(root, text))
        students.append(f"attack-{name}")
    for how in attacks.TAMPERING:
        course_sim.submit(root, f"tamper-{how}", ASSIGNMENT, _tampered(root, how))
        students.append(f"tamper-{how}")
    # Files that try to shadow the kit and Python's start-up, next to an untouched notebook.
    shadow = course_sim.submit(root, "attack-shadow-files", ASSIGNMENT, course_sim.untouched(root, ASSIGNMENT)).parent
    for rel in ("torch.py", "llmkit/__init__.py", "llmkit_instructor/grading/__init__.py", "sitecustomize.py",
                "usercustomize.py", "nbgrader_config.py"):
        (shadow / rel).parent.mkdir(parents=True, exist_ok=True)
        (shadow / rel).write_text("raise SystemExit('shadowed')\n")
    students.append("attack-shadow-files")
    # Every attack in one run on the worker pool, as `llmkit course grade` grades a class: attacks run
    # side by side, so one may also try to reach the other's kernel.
    run = course.grade(root, ASSIGNMENT)
    failed_pairs = {(f[0], f[1]) for f in run.get("failed", [])}
    outcomes = {}
    for student in students:
        graded = [pair for pair in run["graded"] if pair[0] == student]
        failed = [f for f in run.get("failed", []) if f[0] == student]
        outcomes[student] = {"graded": graded, "failed": failed,
                             "failed_pairs": {pair for pair in failed_pairs if pair[0] == student}}
    # The controls again, after every attack: nothing may have persisted.
    course_sim.submit(root, "solution-after", ASSIGNMENT, course_sim.solved(root, ASSIGNMENT))
    course_sim.submit(root, "untouched-after", ASSIGNMENT, course_sim.untouched(root, ASSIGNMENT))
    course.grade(root, ASSIGNMENT)  # only the two new controls are new or changed
    leftovers = _sandbox_processes()
    listener.close()
    yield dict(root=root, students=students, outcomes=outcomes, before_grades=before_grades,
               before_files=before_files, protected=protected, listener=listener, leftovers=leftovers)
    mp.undo()


def _total(root, student):
    cells = course.grade_cells(root, ASSIGNMENT, student)
    return sum(v[0] for v in cells.values()), sum(v[1] for v in cells.values())


def test_every_attack_earns_nothing(attacked):
    root = attacked["root"]
    forged = {}
    for student in attacked["students"]:
        assert student in [s for s, _ in attacked["outcomes"][student]["graded"]] or attacked["outcomes"][student]["failed"]
        if (student, ASSIGNMENT) in attacked["outcomes"][student]["graded"]:
            earned, _ = _total(root, student)
            if earned:
                forged[student] = earned
    assert not forged, f"attacks earned points: {forged}"


def test_controls_keep_their_scores_before_and_after(attacked):
    root = attacked["root"]
    for student in ("solution", "solution-after"):
        earned, top = _total(root, student)
        assert earned == top > 0, student
    for student in ("untouched", "untouched-after"):
        assert _total(root, student)[0] == 0, student


def test_max_points_come_from_the_gradebook(attacked):
    _, full = _total(attacked["root"], "solution")
    for student in ("tamper-points-raised", "tamper-duplicate-grade-id"):
        outcome = attacked["outcomes"][student]
        if (student, ASSIGNMENT) in outcome["failed_pairs"]:
            continue  # nbgrader refused the notebook outright: nothing recorded, nothing earned
        assert _total(attacked["root"], student)[1] == full


def test_gradebook_and_instructor_folders_unchanged(attacked):
    root = attacked["root"]
    after = {(r["student"], r["assignment"]): r["score"] for r in course.scores(root)}
    for key, score in attacked["before_grades"].items():
        assert after[key] == score, f"{key} changed"
    for rel, digest in attacked["before_files"].items():
        now = _tree_digest(root / rel) if (root / rel).is_dir() else (root / rel).read_bytes()
        assert now == digest, f"{rel} changed"
    assert not (root / "exchange" / "evil.txt").exists()
    assert not (root.parent / "evil-persist.py").exists()
    assert not Path("/tmp/evil-persist.py").exists()
    assert not Path(attacks.PWNED).exists(), "a student's cell ran in the grader"


def test_nothing_reaches_the_network(attacked):
    assert attacked["listener"].received == []


def test_no_secret_or_hidden_test_reaches_any_output_or_feedback(attacked):
    root = attacked["root"]
    for student in attacked["students"]:
        for folder in ("autograded", "feedback"):
            for path in (root / folder / student).rglob("*"):
                if path.suffix not in (".ipynb", ".html"):
                    continue
                text = path.read_text(errors="ignore")
                assert SECRET not in text, f"{student}: a secret reached {path.name}"
                if folder == "feedback":
                    assert "BEGIN HIDDEN TESTS" not in text and "check_multi_head_attention(" not in text, \
                        f"{student}: hidden test code in feedback"
                    assert "llmkit_instructor/grading/" not in text, f"{student}: a grader path in feedback"
    reach = (root / "autograded" / "attack-reach-reference" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "reference found: None" in reach


class _ActiveContent(HTMLParser):
    """Elements of a page that would run the marker: a script that calls it, an attribute that holds it."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        self.found += [f"<{tag} {name}=...>" for name, value in attrs if value and ACTIVE in value]

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and ACTIVE in data:
            self.found.append("<script> calling it")


ACTIVE = "ACTIVE_CONTENT_RAN"


def _active_elements(html: str) -> list[str]:
    parser = _ActiveContent()
    parser.feed(html)
    return parser.found


def test_active_content_reaches_no_browser(attacked):
    """Escaped text may show the attack's source (it is the student's cell); no element may run it."""
    root = attacked["root"]
    checked = 0
    for folder in ("autograded", "feedback"):
        for path in (root / folder / "attack-active-content").rglob("*"):
            if path.suffix == ".html":
                pages = [path.read_text(errors="ignore")]
            elif path.suffix == ".ipynb":  # what the formgrader renders: outputs and the non-code cells
                nb = nbformat.reads(path.read_text(errors="ignore"), as_version=4)
                outputs = [o for c in nb.cells for o in c.get("outputs", [])]
                assert not any(k for o in outputs for k in o.get("data", {}) if "javascript" in k), path.name
                pages = [v for o in outputs for k, v in o.get("data", {}).items() if k in ("text/html", "text/markdown",
                                                                                      "image/svg+xml")]
                pages += [c.source for c in nb.cells if c.cell_type != "code"]
            else:
                continue
            for page in pages:
                checked += 1
                page = "".join(page) if isinstance(page, list) else page
                assert _active_elements(page) == [], f"{path.name} carries the student's {_active_elements(page)}"
                if path.suffix == ".ipynb":  # markdown renders a [link](javascript:...) as a live link
                    assert f"javascript:{ACTIVE}" not in page, f"{path.name} carries a javascript: link"
    assert checked, "no graded notebook or feedback page to check"


def test_failures_are_explained(attacked):
    root = attacked["root"]
    for student, words in {"attack-exit": "not graded", "attack-sigint-proof-loop": "not graded",
                           "attack-kill-parent": ""}.items():
        html = course_sim.feedback_html(root, student, ASSIGNMENT)
        assert words in html, f"{student}: feedback lacks {words!r}"


def test_no_process_outlives_grading(attacked):
    assert attacked["leftovers"] == []
