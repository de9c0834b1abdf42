"""Shared by the parallel, cluster and exchange tests: a built 04-attention course and its students.

Only 04-attention is used (it grades under the trusted path); each notebook takes 10-20 s to grade,
so every test grades as few as it can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from llmkit_instructor import course
from tests import course_sim

ASSIGNMENT = "04-attention"
KILL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)  # the kernel kills itself mid-notebook\n"
FLOOD = "import sys\nfor _ in range(30):\n    sys.stdout.write('A' * 1_000_000 + '\\n')\n"
# Takes an exclusive lock on every file it can open (a gradebook among them, were one in view), an
# exclusive SQLite transaction on every database, and holds them while other students are graded.
LOCK = """import fcntl, os, sqlite3, time
held = []
for top in ('/', os.path.expanduser('~'), os.getcwd(), '/tmp', '/dev/shm'):
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in ('/proc', '/sys', '/usr', '/dev')]
        for name in files:
            path = os.path.join(folder, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held.append(fd)
                if name.endswith(('.db', '.sqlite', '.sqlite3')):
                    db = sqlite3.connect(path, timeout=0)
                    db.execute('BEGIN EXCLUSIVE')
                    held.append(db)
            except Exception:
                pass
for where in ('/tmp', '/dev/shm', os.getcwd()):
    try:
        fd = os.open(os.path.join(where, 'gradebook.db'), os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        held.append(fd)
    except OSError:
        pass
time.sleep(6)  # the locks are held while the other workers grade
"""


def built_course(tmp_path_factory, name: str) -> Path:
    """A fresh copy of a course with 04-attention built (the build is done once per test session)."""
    cached = tmp_path_factory.getbasetemp() / "built-04-attention"
    if not (cached / "release" / ASSIGNMENT).is_dir():
        shutil.rmtree(cached, ignore_errors=True)
        course_sim.copy_course(cached)
        report = course.build(cached, only=[ASSIGNMENT], validate=False)
        assert report.problems == [], report.problems
    dest = tmp_path_factory.mktemp(name)
    shutil.copytree(cached, dest, dirs_exist_ok=True)
    return dest


def _with_cell_before(nb, grade_id: str, source: str):
    """A cell the student added right before the solution cell ``grade_id``."""
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


def students(root: Path) -> dict:
    """solution (full marks), untouched (0), one that kills its kernel before the last exercise, one
    that floods its output (30 MB) in the middle, one that locks every file it can reach for a while."""
    return {
        "solution": course_sim.solved(root, ASSIGNMENT),
        "untouched": course_sim.untouched(root, ASSIGNMENT),
        "killer": _with_cell_before(course_sim.solved(root, ASSIGNMENT), "mha", KILL),
        "flooder": _with_cell_before(course_sim.solved(root, ASSIGNMENT), "mha-wrapper", FLOOD),
        "locker": _with_cell_before(course_sim.solved(root, ASSIGNMENT), "causal-attention", LOCK),
    }


def submit_all(root: Path) -> list[str]:
    for student, nb in students(root).items():
        course_sim.submit(root, student, ASSIGNMENT, nb)
    return sorted(students(root))


def cell_grades(root: Path, students=None) -> dict:
    """student -> {grade_id: (points, max points)} for every submission (or these students')."""
    return {s: course.grade_cells(root, ASSIGNMENT, s) for s, a in course.submitted(root)
            if a == ASSIGNMENT and (students is None or s in students)}


def check_expected(grades: dict) -> None:
    """What each simulated student must earn, whoever graded it."""
    total = lambda cells: sum(v[0] for v in cells.values())  # noqa: E731
    assert total(grades["solution"]) == sum(v[1] for v in grades["solution"].values()) > 0
    assert total(grades["untouched"]) == 0
    killer = grades["killer"]
    assert killer["mha-visible"][0] == killer["mha-hidden"][0] == 0, killer  # after the kill nothing runs
    for before in ("self-attention-v1-visible", "self-attention-v1-hidden", "causal-attention-hidden",
                   "mha-wrapper-visible", "mha-wrapper-hidden"):
        # Tests graded before the kill keep their points, the hidden ones too (a pass has no output).
        assert killer[before][0] == killer[before][1] > 0, (before, killer)
    assert total(grades["flooder"]) == total(grades["solution"])  # its output is cut, its work still counts
    assert total(grades["locker"]) == total(grades["solution"])  # its locks reached nothing the grader needs


def require(module: str) -> None:
    """Fail under CI=true when a test dependency is missing (a green CI must mean it ran); skip otherwise."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed (pip install -e '.[dev]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def require_bubblewrap() -> None:
    if shutil.which("bwrap") is None:
        message = "bubblewrap is not installed (./dev test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def postgres_url():
    """A gradebook URL in a fresh schema of the test PostgreSQL server, and a function that drops it."""
    from sqlalchemy.engine import make_url

    base = os.environ.get("LLMKIT_TEST_POSTGRES_URL")
    if not base:
        message = "LLMKIT_TEST_POSTGRES_URL is not set; ./dev test starts a PostgreSQL server and sets it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    import psycopg

    plain = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"grading_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(plain, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")

    def drop():
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    return url, drop


def llmkit(*args, cwd=None, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "llmkit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)
