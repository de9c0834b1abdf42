"""The whole course loop for the browser test: an instructor's course, a student's answers, what to look for.

The instructor's side is the kit's own: a copy of ``course/`` built with ``llmkit_instructor.course.build``,
released with ``llmkit course release`` and graded with ``llmkit course grade``. The student's side
is ``llmkit course student-setup`` plus JupyterLab. The student's mistake is one of the course's
own mutants (``course/mutants/<assignment>.json``), so the diagnosis the feedback must show is the
text those files keep up to date, never a sentence written here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tests import course_sim

COURSE_ID = "llmkit"  # course/nbgrader_config.py
# The mistake each student makes: the first exercise with a mutant that changes a value.
MISTAKES = {"04-attention": "mutant-softmax-dim", "01-tokenization": "mutant-unsorted-vocab"}
_HEADING = re.compile(r"^#{2,3}\s+(.+?)\s*#*\s*$", re.M)
_SOLUTION_MARK = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
_REGION = re.compile(r"### BEGIN SOLUTION(.*?)### END SOLUTION", re.S)


def llmkit_cli(*args, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def build_and_release(root: Path, assignments: list[str]) -> str:
    """The instructor's steps before class: build the assignments, release them to the exchange."""
    from llmkit_instructor import course

    report = course.build(root, only=assignments, validate=False)
    if report.problems:
        raise RuntimeError(f"llmkit course build failed: {report.problems}")
    released = llmkit_cli("course", "release", "--course", str(root))
    if released.returncode != 0:
        raise RuntimeError(f"llmkit course release failed:\n{released.stdout}\n{released.stderr}")
    return released.stdout


def new_course(base: Path) -> Path:
    """A copy of the repository's course with an empty exchange folder (``course/nbgrader_config.py``
    puts the exchange at ``<root>/exchange``)."""
    root = course_sim.copy_course(base / "course")
    (root / "exchange").mkdir()
    return root


def student_setup(exchange: Path, config_dir: Path) -> Path:
    config = config_dir / "nbgrader_config.py"
    done = llmkit_cli("course", "student-setup", "--course-id", COURSE_ID, "--exchange", str(exchange),
                      "--config", str(config))
    if done.returncode != 0:
        raise RuntimeError(f"llmkit course student-setup failed: {done.stderr}")
    return config


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _answer(source: str) -> str:
    """A solution cell as a student would type it: the instructor's markers dropped."""
    return "\n".join(line for line in source.splitlines() if not _SOLUTION_MARK.match(line))


@dataclass
class Attempt:
    """What one student types into one assignment, and what the loop must show for it."""

    assignment: str
    answers: dict  # grade_id -> source, in notebook order; the last one holds the mistake
    mistake: dict  # the course's mutant: its "cell" and the diagnosis ("feedback") the hidden test gives
    code_cells: list  # grade_id (or None) of each code cell of the released notebook, in order
    title: str  # the mistaken exercise's heading, as the Validate summary names it
    first_code_line: str  # the notebook's first line of code: the diagnosis must come before it
    reference_lines: list  # lines only the instructor's solutions have, for exercises the student left

    def code_index(self, grade_id: str) -> int:
        return self.code_cells.index(grade_id)

    @property
    def visible_test(self) -> str:
        return f"{self.mistake['cell']}-visible"


def attempt(assignment: str) -> Attempt:
    """Correct answers up to the mistaken exercise, that exercise with the course's mutant, the rest untouched."""
    source = nbformat.read(next((course_sim.COURSE / "source" / assignment).glob("*.ipynb")), 4)
    spec = next((m for m in course_sim.mutants(assignment) if m["student"] == MISTAKES[assignment]), None)
    if spec is None:
        raise LookupError(f"course/mutants/{assignment}.json has no mutant {MISTAKES[assignment]!r}; "
                          "pick another one in tests/browser/loop.py MISTAKES")
    answers, title, heading = {}, "", ""
    solutions = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")]
    for cell in source.cells:
        if cell.cell_type == "markdown":
            found = _HEADING.search(cell.source)
            heading = found.group(1) if found else heading
        elif cell in solutions and spec["cell"] not in answers:
            answers[_grade_id(cell)] = _answer(cell.source)
            title = heading
    assert spec["old"] in answers[spec["cell"]], f"{assignment}: the mutant no longer applies to {spec['cell']}"
    answers[spec["cell"]] = answers[spec["cell"]].replace(spec["old"], spec["new"], 1)
    code = [c for c in source.cells if c.cell_type == "code"]
    # Lines inside the solution regions of the exercises left untouched, that no code the student
    # sees or wrote has: the reference the grader keeps.
    shown = "\n".join([_REGION.sub("", c.source) for c in code] + list(answers.values()))
    left = [c for c in solutions if _grade_id(c) not in answers]
    reference = sorted({line.strip() for c in left for region in _REGION.findall(c.source)
                        for line in region.splitlines()
                        if len(line.strip()) > 30 and line.strip() not in shown and not line.strip().startswith("#")})
    return Attempt(assignment, answers, spec, [_grade_id(c) for c in code], title,
                   next(line for line in code[0].source.splitlines() if line.strip()), reference)


def page_text(html: str) -> str:
    """What a person reads on an HTML page: no styles or scripts, tags removed, entities decoded."""
    from html import unescape

    html = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", "", html))
