"""``llmkit bench grade``: notebooks per minute of the whole grading loop, 1 worker against 2, in one run.

Simulated students on a copy of the course: one in three submits the solution, one the untouched
release, one a known mistake from ``course/mutants/`` (the solution where an assignment has none).
Every worker setting grades all of them from scratch (``force``) on the same copy, and the grades
must come out the same each time. An assignment whose only exercise is ``answer = 1`` measures the
overhead of one notebook: graded the old way (nbgrader's autograde, one notebook at a time in the
grader's process, as ``llmkit course grade`` did before) and through the parallel pipeline.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

EMPTY = "00-empty"
KINDS = ("solved", "untouched", "mutant")


def _course(base: Path, source_course: Path, names: list[str]) -> Path:
    from .. import course

    root = base / "course"
    root.mkdir(parents=True)
    shutil.copy(source_course / "nbgrader_config.py", root / "nbgrader_config.py")
    for name in names:
        shutil.copytree(source_course / "source" / name, root / "source" / name)
    _write_empty_assignment(root / "source" / EMPTY / f"{EMPTY}.ipynb")
    report = course.build(root, only=[*names, EMPTY], validate=False)
    if report.problems:
        raise RuntimeError("; ".join(report.problems))
    return root


def _write_empty_assignment(path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    def meta(grade_id, **kw):
        return {"nbgrader": {"grade": False, "solution": False, "locked": False, "task": False, "schema_version": 3,
                             "grade_id": grade_id, **kw}}

    nb = new_notebook(cells=[
        new_code_cell("### BEGIN SOLUTION\nanswer = 1\n### END SOLUTION", metadata=meta("answer", solution=True)),
        new_code_cell("assert answer == 1", metadata=meta("answer-test", grade=True, locked=True, points=1)),
    ], metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)


def _notebook(root: Path, where: str, assignment: str):
    import nbformat

    return nbformat.read(next((root / where / assignment).glob("*.ipynb")), as_version=4)


def _student_version(root: Path, assignment: str, kind: str, mutant: dict | None):
    """The release with its solution cells filled in (solved, mutant) or as released (untouched)."""
    nb = _notebook(root, "release", assignment)
    if kind == "untouched":
        return nb
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in _notebook(root, "source", assignment).cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answers[grade_id]
            if mutant and grade_id == mutant["cell"]:
                cell.source = mutant.get("replace_cell") or cell.source.replace(mutant["old"], mutant["new"], 1)
    return nb


def submit_students(root: Path, source_course: Path, names: list[str], students: int,
                    prefix: str = "student") -> dict[str, int]:
    """Write submitted/STUDENT/ASSIGNMENT for ``students`` simulated students; returns the count per kind."""
    import nbformat

    counts = dict.fromkeys(KINDS, 0)
    for assignment in names:
        path = source_course / "mutants" / f"{assignment}.json"
        mutants = json.loads(path.read_text()) if path.is_file() else []
        for i in range(students):
            kind = KINDS[i % 3]
            mutant = mutants[(i // 3) % len(mutants)] if kind == "mutant" and mutants else None
            folder = root / "submitted" / f"{prefix}{i:03d}" / assignment
            folder.mkdir(parents=True, exist_ok=True)
            nbformat.write(_student_version(root, assignment, kind, mutant), folder / f"{assignment}.ipynb")
            (folder / "timestamp.txt").write_text("2026-11-20 12:00:00.000000 UTC")
            counts[kind] += 1
    return counts


def _grades(root: Path, names: list[str]) -> dict:
    from .. import course

    return {(r["student"], r["assignment"]): r["score"] for r in course.scores(root) if r["assignment"] in names}


def _old_way(root: Path, students: list[str]) -> float:
    """Seconds per notebook the way ``llmkit course grade`` graded before: nbgrader's autograde in this process."""
    from .. import course

    started = time.perf_counter()
    with course._in_dir(root):
        nbapi = course.api(root)
        for student in students:
            result = nbapi.autograde(EMPTY, student, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(result["error"].strip().splitlines()[-1])
            nbapi.generate_feedback(EMPTY, student, force=True)
    return (time.perf_counter() - started) / len(students)


def bench_grade(source_course: Path, names: list[str], students: int = 30, workers=(1, 2),
                empty_notebooks: int = 3, sandbox: bool = True) -> dict:
    """Grade ``students`` x ``names`` once per worker setting; returns the rows and the empty-notebook figures."""
    from .. import course
    from .parallel import cores, kernel_threads

    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="llmkit-bench-grade-") as tmp:
        root = _course(Path(tmp), source_course, names)
        # The empty notebook first (it also warms the disk caches for both worker settings alike).
        empty = _empty_overhead(root, empty_notebooks, sandbox)
        counts = submit_students(root, source_course, names, students)
        rows, grades = [], []
        for n in workers:
            outcome = course.grade(root, sandbox=sandbox, workers=n, force=True, progress=True)
            grades.append(_grades(root, names))
            done = outcome["notebooks"]
            rows.append({"workers": n, "notebooks": done, "failed": len(outcome["failed"]),
                         "seconds": outcome["wall_seconds"],
                         "per_minute": 60 * done / outcome["wall_seconds"] if outcome["wall_seconds"] else 0.0,
                         "stages": {k: v / max(done, 1) for k, v in outcome["seconds"].items()}})
        for row in rows:
            row["speedup"] = row["per_minute"] / rows[0]["per_minute"] if rows[0]["per_minute"] else 0.0
        load.append(os.getloadavg()[0])
        differences = grade_differences(grades)
        return {"rows": rows, "counts": counts, "same_grades": not differences, "differences": differences,
                "cores": cores(), "threads": kernel_threads(), "load": load, "assignments": names, "students": students,
                **empty}


def grade_differences(grades: list[dict]) -> list[dict]:
    """The (student, assignment) pairs whose score is not the same in every run, with each run's score."""
    keys = sorted(set().union(*grades)) if grades else []
    return [{"student": k[0], "assignment": k[1], "scores": [g.get(k) for g in grades]}
            for k in keys if len({g.get(k) for g in grades}) > 1]


def _empty_overhead(root: Path, rounds: int, sandbox: bool) -> dict:
    """Median seconds for one empty notebook, the old way and the new, alternating so that a busy
    machine slows both alike; the new way's seconds per stage, averaged."""
    import statistics

    from .. import course

    before, after, stages = [], [], {}
    for i in range(rounds):
        for student in (f"empty-old{i}", f"empty-new{i}"):
            folder = root / "submitted" / student / EMPTY
            folder.mkdir(parents=True)
            shutil.copy(root / "release" / EMPTY / f"{EMPTY}.ipynb", folder / f"{EMPTY}.ipynb")
        before.append(_old_way(root, [f"empty-old{i}"]))
        outcome = course.grade(root, EMPTY, student=f"empty-new{i}", sandbox=sandbox, workers=0, progress=False)
        after.append(outcome["wall_seconds"])
        for stage, seconds in outcome["seconds"].items():
            stages[stage] = stages.get(stage, 0.0) + seconds / rounds
        for student in (f"empty-old{i}", f"empty-new{i}"):
            shutil.rmtree(root / "submitted" / student)
    return {"empty_before": statistics.median(before), "empty_after": statistics.median(after),
            "empty_stages": stages, "empty_rounds": rounds}


STAGE_NAMES = (("sandbox", "sandbox"), ("kernel", "kernel start"), ("probe", "probe"), ("execute", "execution"),
               ("stop", "stop"), ("prepare", "prepare"), ("record", "record+feedback"))


def print_report(report: dict) -> None:
    counts = report["counts"]
    total = sum(counts.values())
    print(f"grading benchmark: {report['students']} students x {len(report['assignments'])} assignment(s) = "
          f"{total} notebooks ({', '.join(f'{n} {k}' for k, n in counts.items())}), {report['cores']} cores, "
          f"{report.get('threads', 1)} torch thread(s) per kernel, "
          f"load average {report['load'][0]:.1f} at the start and {report['load'][1]:.1f} at the end")
    print(f"{'workers':>7} {'notebooks':>9} {'failed':>6} {'seconds':>8} {'per min':>8} {'speedup':>7}   "
          "seconds per notebook in each stage (worker stages overlap across workers)")
    for r in report["rows"]:
        stages = ", ".join(f"{name} {r['stages'].get(key, 0):.1f}" for key, name in STAGE_NAMES)
        print(f"{r['workers']:>7} {r['notebooks']:>9} {r['failed']:>6} {r['seconds']:>8.1f} {r['per_minute']:>8.2f} "
              f"{r['speedup']:>6.2f}x   {stages}")
    print(f"same grades in every run: {'yes' if report['same_grades'] else 'NO'}")
    for d in report.get("differences", []):
        print(f"  {d['student']} {d['assignment']}: " + ", ".join(
            f"{r['workers']} worker(s) {score}" for r, score in zip(report["rows"], d["scores"])))
    stages = ", ".join(f"{name} {report['empty_stages'].get(key, 0):.1f}" for key, name in STAGE_NAMES)
    print(f"empty notebook, median of {report['empty_rounds']} alternating rounds: {report['empty_before']:.1f} s "
          f"before (nbgrader's autograde with the trusted executor, as `course grade` did), "
          f"{report['empty_after']:.1f} s after (the pipeline in one process); after: {stages}")
