"""Meta-tests, as in datasette: every hook is exercised by a test and documented."""

import inspect
import pathlib
import re

import pytest

from llmkit import hookspecs
from llmkit.registry import FAMILIES

ROOT = pathlib.Path(__file__).resolve().parent.parent
HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]


def test_one_hook_per_family():
    assert sorted(HOOKS) == sorted(f"register_{family}" for family in FAMILIES)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_one_line_docstring_and_a_register_argument(hook):
    fn = getattr(hookspecs, hook)
    assert list(inspect.signature(fn).parameters) == ["register"]
    doc = inspect.getdoc(fn)
    assert doc and len(doc.splitlines()) == 1


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert re.search(rf"^#+ `{hook}\(register\)`", docs, re.MULTILINE), f"docs/plugins.md lacks a heading for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook):
    family = hook.removeprefix("register_")
    tests = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_hookspecs.py")
    assert f"@hookimpl\ndef {hook}" in tests or f"def {hook}(register)" in tests, (
        f"no test implements {hook}; add one that registers a {family} component through the hook"
    )
