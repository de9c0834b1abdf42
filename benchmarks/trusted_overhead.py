"""Seconds to grade one submission: nbgrader's own path (hidden tests in the student's kernel) against
llmkit's protected path (sandboxed kernel, every test judged in the grader), measured in one run.

    python benchmarks/trusted_overhead.py --assignment 04-attention --rounds 3

Both paths grade the same solved notebook, alternating (A, B, A, B, ...) so that a busy machine slows
both alike; the medians and their ratio are printed. Both must give the same score.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llmkit_instructor import course  # noqa: E402
from tests import course_sim  # noqa: E402

NBGRADER_DEFAULT = """
# Benchmark only: nbgrader's own executor, hidden tests inside the student's kernel, no sandbox.
from nbgrader.preprocessors import Execute
c.Autograde.autograde_preprocessors = [Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.GenerateFeedback.preprocessors = ["nbgrader.preprocessors.GetGrades",
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]
"""


def _course(base: Path, name: str, assignment: str, plain: bool) -> Path:
    root = course_sim.copy_course(base / name)
    if plain:
        with open(root / "nbgrader_config.py", "a") as f:
            f.write(NBGRADER_DEFAULT)
    course.build(root, only=[assignment], validate=False)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="04-attention")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"nbgrader": _course(Path(tmp), "plain", args.assignment, plain=True),
                 "protected": _course(Path(tmp), "protected", args.assignment, plain=False)}
        seconds = {k: [] for k in paths}
        scores = {}
        for i in range(args.rounds):
            for kind, root in paths.items():
                student = f"student{i}"
                course_sim.submit(root, student, args.assignment, course_sim.solved(root, args.assignment))
                started = time.perf_counter()
                course.grade(root, args.assignment, student=student)
                seconds[kind].append(time.perf_counter() - started)
                cells = course.grade_cells(root, args.assignment, student)
                scores[kind] = (sum(v[0] for v in cells.values()), sum(v[1] for v in cells.values()))
        for kind in paths:
            print(f"{kind:>10}: median {statistics.median(seconds[kind]):6.2f} s per submission "
                  f"({', '.join(f'{s:.1f}' for s in seconds[kind])}); score {scores[kind][0]:g}/{scores[kind][1]:g}")
        ratio = statistics.median(seconds["protected"]) / statistics.median(seconds["nbgrader"])
        print(f"protected / nbgrader: {ratio:.2f}x")


if __name__ == "__main__":
    main()
