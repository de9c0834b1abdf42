"""Meta-tests of the layering (docs/plugins.md, "Layout"): what may import what.

- The framework never imports the reference solutions; it reaches components through the registry.
- The reference imports only the kit's small core, and the core only itself, so the answers pull in
  none of the framework.
- The kit's own plugins import only the core and the contracts: no arrow back up into the run.
- No kit module imports the instructor package (``plugins/instructor``): the CLI only looks it up.
- No import loops in the kit, its own plugins or the reference (an optional plugin is a package of its
  own; how it is arranged inside is its business).
- Every family has a protocol in ``llmkit.contracts``, a conformance suite in ``llmkit.testing``,
  and a hook whose docstring names the protocol.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from llmkit import contracts, hookspecs
from llmkit.registry import FAMILIES

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "llmkit_solutions"
INSTRUCTOR = "llmkit_instructor"  # plugins/instructor: grades against the answers on purpose
# The kernel's probe builds what the grader asks for (reference names included), and the suites
# compare with the reference when it is loaded. Everything else under llmkit/ is the framework.
INSTRUCTOR_SIDE = ("probe.py", "testing/")
# The small core the reference may import: errors, config checks, files, the KV cache, the registry
# and its hooks, the tokenizer helpers (encode_text), GPT-2's offline BPE and the data readers.
CORE = {"llmkit", "llmkit.errors", "llmkit.config", "llmkit.io", "llmkit.kv_cache", "llmkit.hookspecs",
        "llmkit.registry", "llmkit.plugins", "llmkit.tokenizers", "llmkit.gpt2_bpe", "llmkit.data"}
OWN_PLUGINS = ("llmkit_tokenizers", "llmkit_samplers", "llmkit_generate")
SUITES = {"finetune_strategies": "strategies"}  # family -> module in llmkit.testing, when the names differ


def module_name(path: Path) -> str:
    for top in (ROOT, ROOT / "solutions", ROOT / "plugins" / "instructor", ROOT / "plugins"):
        try:
            parts = path.relative_to(top).with_suffix("").parts
        except ValueError:
            continue
        if parts and parts[0].startswith("llmkit"):
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise AssertionError(path)


def sources(*folders: str) -> dict[str, Path]:
    found = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "/data/" not in path.as_posix():  # the data folders' generator scripts are not the kit
                found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, known: set[str] | None = None) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            for alias in node.names:  # ``from . import artifacts``: a submodule, when there is one
                if known is not None and f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
    return found


KIT = sources("llmkit", "solutions", "plugins")


def test_the_framework_never_imports_the_reference():
    offenders = []
    for name, path in KIT.items():
        relative = path.relative_to(ROOT / "llmkit").as_posix() if path.is_relative_to(ROOT / "llmkit") else None
        if relative is None or relative.startswith(INSTRUCTOR_SIDE):
            continue
        if any(m == REFERENCE or m.startswith(REFERENCE + ".") for m in imports_of(name, path)):
            offenders.append(name)
    assert not offenders, f"these framework modules import {REFERENCE}; ask the registry by name instead: {offenders}"


def test_the_kit_never_imports_the_instructor_package():
    """A student's environment has no instructor package; only the CLI asks whether it is there."""
    offenders = []
    for name, path in KIT.items():
        if name.split(".")[0] == INSTRUCTOR or name == "llmkit.cli":
            continue
        if any(m == INSTRUCTOR or m.startswith(INSTRUCTOR + ".") for m in imports_of(name, path)):
            offenders.append(name)
    assert not offenders, f"these kit modules import {INSTRUCTOR}, which a student's environment lacks: {offenders}"
    cli = imports_of("llmkit.cli", ROOT / "llmkit" / "cli.py")
    assert {m for m in cli if m.startswith(INSTRUCTOR)} == {f"{INSTRUCTOR}.cli"}


def test_the_reference_and_the_core_import_only_the_core():
    for name, path in KIT.items():
        if not (name.startswith(REFERENCE) or name in CORE):
            continue
        kit = {m for m in imports_of(name, path, set(KIT)) if m == "llmkit" or m.startswith("llmkit.")}
        assert kit <= CORE, f"{name} imports {sorted(kit - CORE)}, beyond the core the reference may use"


@pytest.mark.parametrize("plugin", OWN_PLUGINS)
def test_the_kits_plugins_import_only_the_core_and_the_contracts(plugin):
    for name, path in KIT.items():
        if name == plugin or name.startswith(plugin + "."):
            kit = {m for m in imports_of(name, path, set(KIT)) if m == "llmkit" or m.startswith("llmkit.")}
            assert kit <= CORE | {"llmkit.contracts"}, f"{name} imports {sorted(kit - CORE)}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_there_are_no_import_loops():
    from llmkit.plugins import DEFAULT_PLUGINS

    own = tuple(m for m in DEFAULT_PLUGINS.values() if not m.startswith("llmkit."))
    kit = {name: path for name, path in KIT.items()
           if name.split(".")[0] in ("llmkit", REFERENCE, INSTRUCTOR) or name.split(".")[0] in own}
    known = set(kit)
    graph = {name: {m for m in imports_of(name, path, known) if m in known and m != name}
             for name, path in kit.items()}
    # A package importing its own submodules is how a package exposes them, not a loop.
    graph = {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import loop: " + " -> ".join(cycle)


def test_the_loop_finder_finds_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_a_protocol_a_suite_and_a_hook_that_names_it(family):
    protocol = contracts.PROTOCOLS[family]
    assert getattr(protocol, "_is_protocol", False), f"contracts.PROTOCOLS[{family!r}] is not a typing.Protocol"
    suite = importlib.import_module(f"llmkit.testing.{SUITES.get(family, family)}")
    bases = [obj for name, obj in inspect.getmembers(suite, inspect.isclass)
             if name.startswith("Base") and name.endswith("Tests") and obj.__module__ == suite.__name__]
    assert bases, f"llmkit.testing.{SUITES.get(family, family)} has no Base...Tests class to subclass"
    assert any(name.startswith("test_") for name in dir(bases[0]))
    doc = inspect.getdoc(getattr(hookspecs, f"register_{family}"))
    assert f"contracts.{protocol.__name__}" in doc, f"register_{family}'s docstring must name contracts.{protocol.__name__}"
