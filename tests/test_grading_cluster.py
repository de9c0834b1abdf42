"""Grading on a Dask cluster: a real scheduler and two worker processes on 127.0.0.1.

``llmkit course grade --cluster tcp://127.0.0.1:PORT`` sends each sanitized submission to the
workers as data; they run it in the sandbox and send the executed notebook back; this process, the
coordinator, alone writes the gradebook (SQLite, or a real PostgreSQL through LLMKIT_GRADEBOOK_URL).
The grades are those of grading in one process (``tests/grading_sim.check_expected``, which
``test_grading_parallel`` checks one process against).
Under CI=true a missing Dask is a failure, elsewhere a skip.
"""

import json
import socket
import subprocess
import sys
import time

import pytest

from llmkit_instructor import course
from llmkit_instructor.grading import parallel
from tests import course_sim
from tests.grading_sim import (ASSIGNMENT, built_course, cell_grades, check_expected, llmkit, postgres_url,
                               require, require_bubblewrap, submit_all)

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and two single-thread workers, as `dask scheduler` / `dask worker` on real machines."""
    require("distributed")
    require_bubblewrap()
    address = f"tcp://127.0.0.1:{_free_port()}"
    dask = [sys.executable, "-m"]
    procs = [subprocess.Popen([*dask, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                               address.rsplit(":", 1)[1], "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([*dask, "distributed.cli.dask_worker", address, "--nthreads", "1",
                                           "--name", f"grader-{i}", "--no-dashboard", "--memory-limit", "0"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path))
        from distributed import Client

        deadline = time.monotonic() + 180
        while True:
            try:
                with Client(address, timeout="10s") as client:
                    client.wait_for_workers(2, timeout=180)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_cluster_grades_as_one_process_does(cluster, tmp_path_factory):
    root = built_course(tmp_path_factory, "cluster")
    students = submit_all(root)
    outcome = course.grade(root, cluster=cluster, progress=False)
    assert outcome["failed"] == [] and len(outcome["graded"]) == len(students)
    assert outcome["workers"] == cluster
    check_expected(cell_grades(root))
    log = (root / "autograded" / parallel.LOG_NAME).read_text().splitlines()
    assert len({json.loads(line)["worker"] for line in log}) == 2, "both workers should have graded"


def test_a_cluster_with_a_postgresql_gradebook_grades_as_one_process_does(cluster, tmp_path_factory, monkeypatch):
    # The workers never see the gradebook: the coordinator alone writes it, here to a real PostgreSQL.
    url, drop = postgres_url()
    try:
        monkeypatch.setenv("LLMKIT_GRADEBOOK_URL", url)
        root = course_sim.copy_course(tmp_path_factory.mktemp("cluster-postgres"))
        assert course.build(root, only=[ASSIGNMENT], validate=False).problems == []
        assert not (root / "gradebook.db").exists()
        students = submit_all(root)
        outcome = course.grade(root, cluster=cluster, progress=False)
        assert outcome["failed"] == [] and len(outcome["graded"]) == len(students)
        check_expected(cell_grades(root))
    finally:
        drop()


def test_an_unreachable_scheduler_is_one_line_naming_the_fix(tmp_path_factory):
    require("distributed")
    root = built_course(tmp_path_factory, "nowhere")
    from tests import course_sim

    course_sim.submit(root, "ada", ASSIGNMENT, course_sim.untouched(root, ASSIGNMENT))
    result = llmkit("course", "grade", "--course", str(root), "--cluster", f"tcp://127.0.0.1:{_free_port()}",
                    timeout=300)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:")
    assert "dask scheduler" in result.stderr and len(result.stderr.strip().splitlines()) == 1
