"""A student's environment: the kit without the instructor package (``plugins/instructor``).

The kit's wheel holds no grading internals, and with ``llmkit_instructor`` impossible to import (as
if it were not installed) a student still sets up the course and uses the kit, while every
instructor verb answers with one line that names the package.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

WITHOUT_INSTRUCTOR = """
import sys

class NoInstructor:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "llmkit_instructor":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoInstructor())
import importlib.util
importlib.util.find_spec = (lambda find: lambda name, *a: None if name.split(".")[0] == "llmkit_instructor"
                            else find(name, *a))(importlib.util.find_spec)
exec(sys.argv[1])
assert not [m for m in sys.modules if m.startswith("llmkit_instructor")], "the instructor package was imported"
"""
CLI = "from llmkit.cli import main\nsys.exit(main(sys.argv[2:]))"


def as_student(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_INSTRUCTOR, code, *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})


INSTRUCTOR_VERBS = [["course", "grade", "--course", "x"], ["course", "build"], ["course", "release"],
                    ["course", "status"], ["course", "export", "--format", "canvas"], ["course", "translate"],
                    ["bench", "grade", "--students", "2"]]
EACH_VERB = """
import contextlib, io, json
from llmkit.cli import main
answers = []
for verb in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(verb)
    answers.append([verb, code, err.getvalue()])
print(json.dumps(answers))
"""


def test_instructor_verbs_name_the_instructor_package():
    import json

    result = as_student(EACH_VERB, json.dumps(INSTRUCTOR_VERBS))
    assert result.returncode == 0, result.stderr[-3000:]
    for verb, code, err in json.loads(result.stdout):
        assert code == 2, (verb, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, (verb, err)
        assert "instructor package" in err and "pip install -e plugins/instructor" in err, (verb, err)


def test_a_student_sets_up_the_course_and_uses_the_kit(tmp_path):
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    config = tmp_path / "jupyter" / "nbgrader_config.py"
    result = as_student(CLI, "course", "student-setup", "--course-id", "llmkit", "--exchange", str(exchange),
                        "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"c.Exchange.root = {str(exchange.resolve())!r}" in config.read_text()

    kit = """
import torch
from llmkit.exercise import assert_defined_in_notebook
from llmkit.visible_checks import expect_equal
from llmkit.widgets import tokenizer_explorer
import llmkit.probe, llmkit.validate_summary

def mine(x):
    return x + 1

assert_defined_in_notebook(mine)
expect_equal(mine(1), 2, what="mine(1)")
print(tokenizer_explorer("Hello", tokenizers=["char"]))
"""
    result = as_student(kit)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TokenizerExplorer('Hello'" in result.stdout


@pytest.mark.slow
def test_the_kits_wheel_holds_no_grading_internals(tmp_path):
    """What ``pip install .`` puts in a student's environment: the kit, its plugins and the reference, no grader."""
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("llmkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "llmkit/student.py" in names and "llmkit/visible_checks.py" in names and "llmkit/probe.py" in names
    grader = [n for n in names if n.startswith("llmkit_instructor/") or "/grading/" in n
              or n.rsplit("/", 1)[-1] in ("course.py", "gradebook.py", "sandbox.py", "trusted.py")]
    assert not grader, f"the student's wheel holds grading internals: {grader[:10]}"
