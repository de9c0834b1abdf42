"""./dev, the two README commands, and CI's use of them.

Fast checks only: nothing here installs anything. The idempotence checks run only in a checkout
that ./dev has already set up (as in CI, where ./dev test runs this file), and then must find
nothing to install.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "dev"


def dev(*args, **env):
    return subprocess.run(["bash", str(DEV), *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


def set_up_by_dev() -> bool:
    """True when this pytest runs from the .venv that ./dev set up for this very checkout."""
    stamp = ROOT / ".venv" / ".llmkit-install-stamp"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + (ROOT / "plugins/instructor/pyproject.toml").read_bytes()
                          + str(ROOT).encode()).hexdigest()
    return (Path(sys.prefix).resolve() == (ROOT / ".venv").resolve() and stamp.is_file()
            and stamp.read_text().strip() == want)


def test_dev_is_an_executable_bash_script_that_parses():
    assert os.access(DEV, os.X_OK)
    assert subprocess.run(["bash", "-n", str(DEV)]).returncode == 0


def test_help_names_both_commands_and_a_wrong_one_is_refused():
    shown = dev("--help")
    assert shown.returncode == 0 and "./dev run" in shown.stdout and "./dev test" in shown.stdout
    wrong = dev("deploy")
    assert wrong.returncode == 2 and "usage:" in wrong.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    assert "./dev run" in first_block and "./dev test" in first_block
    assert re.search(r"^exec bash \./dev test$", ci, re.M)
    first_pytest = re.search(r"(?:python -m )?pytest[^\n`]*", readme).group(0)
    assert first_pytest == "python -m pytest -q" and first_pytest in ci
    assert 'python -m pytest -q "$@"' in DEV.read_text()  # ... and that is what ./dev test runs


@pytest.mark.skipif(not set_up_by_dev(), reason="this checkout's .venv was not set up by ./dev")
def test_a_second_run_installs_nothing():
    result = dev("run", "--help")
    last = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.fullmatch(r"dev run: finished in \d+(m\d\ds|s) \(installed nothing\)", last), last


@pytest.mark.skipif(not set_up_by_dev(), reason="this checkout's .venv was not set up by ./dev")
@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("bwrap") and os.environ.get("LLMKIT_TEST_POSTGRES_URL")),
                    reason="needs the system parts ./dev test installs, so that this test installs none")
def test_no_tests_collected_is_a_failure_with_its_own_closing_line():
    result = dev("test", "-p", "no:cacheprovider", "-k", "no_test_has_this_name", "tests/test_dev_script.py")
    assert result.returncode == 5
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("dev test: no tests ran") and "(installed nothing" in last, last
