"""``nbgrader validate`` -- nbgrader's own command, as an instructor would type it -- on every source notebook.

Validation executes the notebook top to bottom with the course's config (per-cell timeout included)
and runs every test cell, hidden ones too, against the solution. A mutated solution must fail, so
the check itself can fail.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests import course_sim

pytestmark = pytest.mark.slow

SOURCES = sorted(course_sim.COURSE.glob("source/*/*.ipynb"))
NAMES = [p.parent.name for p in SOURCES]
SUCCESS = "Success! Your notebook passes all the tests."
TIMINGS = Path(__file__).resolve().parent.parent / "test-artifacts" / "validate-timing.txt"  # for the notes


def nbgrader_validate(notebook: Path, course_root: Path, threads: int | None = None) -> subprocess.CompletedProcess:
    # cwd = the course root, so nbgrader reads course/nbgrader_config.py like it does for an instructor.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    return subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(notebook)], cwd=course_root,
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="module")
def course_copy(tmp_path_factory):
    """Notebooks may write files beside themselves; keep the repository's course/ clean."""
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text("")
    return course_sim.copy_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def validated(course_copy):
    """Every source notebook validated, two at a time (one per core: each kernel computes on one thread)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name):
        started = time.perf_counter()
        result = nbgrader_validate(course_copy / "source" / name / f"{name}.ipynb", course_copy, threads=1)
        return name, result, time.perf_counter() - started

    with ThreadPoolExecutor(2) as pool:
        done = {name: (result, seconds) for name, result, seconds in pool.map(one, NAMES)}
    with TIMINGS.open("a") as out:
        for name in NAMES:
            out.write(f"{name}: nbgrader validate took {done[name][1]:.1f} s (two notebooks at a time)\n")
    return done


def test_every_stage_has_a_source_notebook():
    from tests.test_course_sources import EXPECTED

    assert NAMES == EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_nbgrader_validate_passes_on_the_solution(name, validated):
    result, _seconds = validated[name]
    assert SUCCESS in result.stdout, (result.stdout + result.stderr)[-3000:]


def test_nbgrader_validate_fails_on_a_wrong_solution(course_copy):
    source = course_copy / "source" / "04-attention" / "04-attention.ipynb"
    nb = nbformat.read(source, as_version=4)
    spec = json.loads((course_sim.COURSE / "mutants" / "04-attention.json").read_text())[0]  # no 1/sqrt(d_k)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == spec["cell"])
    assert spec["old"] in cell.source
    cell.source = cell.source.replace(spec["old"], spec["new"], 1)
    broken = source.with_name("04-attention-broken.ipynb")
    nbformat.write(nb, broken)
    result = nbgrader_validate(broken, course_copy)
    assert SUCCESS not in result.stdout
    assert "VALIDATION FAILED" in result.stdout, (result.stdout + result.stderr)[-3000:]
