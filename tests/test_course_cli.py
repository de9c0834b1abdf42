"""``llmkit course`` commands on a copy of the course."""

import subprocess
import sys

from tests import course_sim


def llmkit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "llmkit.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_build_without_validation_status_and_grade_errors(tmp_path):
    root = course_sim.copy_course(tmp_path / "course")
    result = llmkit("course", "build", "04-attention", "--no-validate", "--course", str(root))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "generated 1 assignments: 04-attention" in result.stdout
    assert "no release contains solution code or hidden tests" in result.stdout
    assert (root / "release" / "04-attention" / "04-attention.ipynb").is_file()
    assert llmkit("course", "status", "--course", str(root)).stdout.strip() == "no submissions yet"
    result = llmkit("course", "grade", "--course", str(root))
    assert result.returncode == 2 and result.stderr.startswith("error: No submissions to grade")


def test_release_puts_assignments_in_the_exchange(tmp_path):
    root = course_sim.copy_course(tmp_path / "course")
    assert llmkit("course", "build", "04-attention", "--no-validate", "--course", str(root)).returncode == 0
    result = llmkit("course", "release", "04-attention", "--course", str(root))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (root / "exchange" / "llmkit" / "outbound" / "04-attention" / "04-attention.ipynb").is_file()


def test_a_release_with_solution_code_is_refused(tmp_path):
    from llmkit.course import check_release

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "a.ipynb").write_text('{"cells": [{"source": "### BEGIN SOLUTION"}]}')
    assert check_release(tmp_path) and "BEGIN SOLUTION" in check_release(tmp_path)[0]
