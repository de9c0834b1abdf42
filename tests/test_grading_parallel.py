"""Parallel grading (``llmkit course grade --workers N``) against one notebook at a time.

- The same grades, cell by cell, from one process and from two worker processes, on SQLite and on
  PostgreSQL; a student who kills its kernel, floods its output or locks every file it can reach
  in the middle of the parallel run changes no other student's grade.
- A coordinator killed with SIGKILL loses no grade it recorded, and the next run grades only the rest.
- A re-run grades only new or changed submissions; a worker that fails records nothing.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from llmkit_instructor import course
from llmkit_instructor.grading import parallel, worker
from tests import course_sim
from tests.grading_sim import (ASSIGNMENT, built_course, cell_grades, check_expected, llmkit, postgres_url,
                               require, require_bubblewrap, submit_all)

pytestmark = pytest.mark.slow
STUDENTS = ["flooder", "killer", "locker", "solution", "untouched"]


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """Every student graded in the coordinator's own process, one at a time."""
    require_bubblewrap()
    root = built_course(tmp_path_factory, "sequential")
    submit_all(root)
    outcome = course.grade(root, workers=0, progress=False)
    return root, outcome, cell_grades(root)


def test_one_at_a_time_grades_every_student_as_expected(sequential):
    root, outcome, grades = sequential
    assert sorted(s for s, _ in outcome["graded"]) == STUDENTS and outcome["failed"] == []
    check_expected(grades)
    exported = (root / "grades.csv").read_text()
    assert "solution,,,,04-attention,graded,16,16,0" in exported


def _log_entries(root):
    path = root / "autograded" / parallel.LOG_NAME
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]


def test_two_workers_match_and_a_killed_coordinator_loses_nothing(sequential, tmp_path_factory):
    require("distributed")
    root = built_course(tmp_path_factory, "parallel")
    submit_all(root)
    proc = subprocess.Popen([sys.executable, "-m", "llmkit.cli", "course", "grade", "--workers", "2",
                             "--course", str(root)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while not _log_entries(root) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)  # the coordinator, mid-run, after its first recorded grade
        proc.wait()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # then its worker processes, as a crash of the machine would
        except ProcessLookupError:
            pass
    recorded = {e["student"] for e in _log_entries(root)}
    assert recorded, "the coordinator recorded nothing before it was killed"
    _, _, expected = sequential
    after_kill = cell_grades(root, recorded)
    for student in recorded:
        assert after_kill[student] == expected[student], f"{student}'s recorded grade was lost or changed"

    again = llmkit("course", "grade", "--workers", "2", "--course", str(root))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    unchanged = int(re.search(r"^unchanged\s+(\d+)", again.stdout, re.M).group(1))
    graded = int(re.search(r"^graded\s+(\d+)", again.stdout, re.M).group(1))
    assert unchanged == len(recorded) and graded == len(STUDENTS) - len(recorded), again.stdout
    assert re.search(r"seconds per notebook: sandbox [\d.]+, kernel start [\d.]+", again.stdout), again.stdout
    assert "Warning" not in again.stdout + again.stderr, "library warnings leaked into the output"
    assert cell_grades(root) == expected, "two workers gave other grades than one process"
    workers = {e["worker"] for e in _log_entries(root)}
    assert len(workers) >= 2, f"one worker did everything: {workers}"


def test_two_workers_on_postgresql_give_the_same_grades(sequential, tmp_path_factory, monkeypatch):
    require("distributed")
    url, drop = postgres_url()
    try:
        monkeypatch.setenv("LLMKIT_GRADEBOOK_URL", url)
        root = course_sim.copy_course(tmp_path_factory.mktemp("postgres"))
        assert course.build(root, only=[ASSIGNMENT], validate=False).problems == []
        assert not (root / "gradebook.db").exists()
        submit_all(root)
        outcome = course.grade(root, workers=2, progress=False)
        assert outcome["failed"] == []
        assert cell_grades(root) == sequential[2]
    finally:
        drop()


def test_a_rerun_grades_only_what_changed(sequential):
    root, _, _ = sequential
    quiet = course.grade(root, workers=0, progress=False)
    assert quiet["graded"] == [] and sorted(s for s, _ in quiet["unchanged"]) == STUDENTS
    with course._in_dir(root):
        todo, unchanged = parallel.plan(root, course.api(root), [(s, ASSIGNMENT) for s in STUDENTS], force=True)
    assert sorted(s for s, _, _ in todo) == STUDENTS and unchanged == []
    course_sim.submit(root, "untouched", ASSIGNMENT, course_sim.solved(root, ASSIGNMENT))  # resubmitted, solved
    again = course.grade(root, workers=0, progress=False)
    assert again["graded"] == [("untouched", ASSIGNMENT)] and len(again["unchanged"]) == len(STUDENTS) - 1
    assert sum(v[0] for v in course.grade_cells(root, ASSIGNMENT, "untouched").values()) == 16


def test_a_failed_worker_records_nothing(sequential, tmp_path, monkeypatch):
    root, _, _ = sequential
    course_sim.submit(root, "unlucky", ASSIGNMENT, course_sim.solved(root, ASSIGNMENT))
    monkeypatch.setattr(worker, "execute", lambda job: worker.Result(job.student, job.assignment,
                                                                      error="OSError: the disk is full"))
    outcome = course.grade(root, student="unlucky", workers=0, progress=False)
    assert outcome["failed"] == [("unlucky", ASSIGNMENT, "the worker failed: OSError: the disk is full")]
    assert ("unlucky", ASSIGNMENT) not in {(r["student"], r["assignment"]) for r in course.scores(root)}
    assert "unlucky" not in {e["student"] for e in _log_entries(root)}
    assert "unlucky,,,,04-attention" not in (root / "grades.csv").read_text()


def test_the_grading_log_survives_a_torn_last_line(tmp_path):
    log = parallel.GradingLog(tmp_path)
    log.append(student="ada", assignment=ASSIGNMENT, hash="h1", score=3)
    log.append(student="ada", assignment=ASSIGNMENT, hash="h2", score=5)  # graded again: the last one wins
    log.append(student="bob", assignment=ASSIGNMENT, hash="h3", score=1)
    with open(log.path, "a") as out:
        out.write('{"student": "cy", "assignment": "04-att')  # the coordinator died mid-line
    assert set(log.entries()) == {("ada", ASSIGNMENT), ("bob", ASSIGNMENT)}
    assert log.entries()["ada", ASSIGNMENT]["hash"] == "h2"
    log.append(student="dan", assignment=ASSIGNMENT, hash="h4", score=2)  # the next run starts a fresh line
    assert set(log.entries()) == {("ada", ASSIGNMENT), ("bob", ASSIGNMENT), ("dan", ASSIGNMENT)}


def test_every_job_runs_with_the_same_torch_threads_whatever_the_workers(sequential, monkeypatch):
    """A grade must not depend on --workers or the machine: every kernel gets LLMKIT_GRADING_THREADS (1)."""
    root, _, _ = sequential
    course_sim.submit(root, "counted", ASSIGNMENT, course_sim.solved(root, ASSIGNMENT))
    jobs = []
    monkeypatch.setattr(worker, "execute", lambda job: jobs.append(job) or worker.Result(
        job.student, job.assignment, error="OSError: only counting threads here"))
    course.grade(root, student="counted", workers=0, progress=False)
    monkeypatch.setenv("LLMKIT_GRADING_THREADS", "3")
    course.grade(root, student="counted", workers=0, progress=False)
    assert [job.threads for job in jobs] == [1, 3]


@pytest.mark.parametrize("text", ["0", "-2", "two", ""])
def test_a_bad_thread_count_is_one_clear_line(monkeypatch, text):
    monkeypatch.setenv("LLMKIT_GRADING_THREADS", text)
    with pytest.raises(parallel.LLMKitError, match="LLMKIT_GRADING_THREADS=.* is not a positive whole number"):
        parallel.kernel_threads()
