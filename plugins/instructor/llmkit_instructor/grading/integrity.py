"""Integrity decided on the trusted side, from the submitted source alone.

A graded class or function must be written in the notebook: bound by a ``class``/``def`` statement
(or assigned from the student's own definitions), not imported from, subclassed from or leaning on
the reference solutions. Nothing here asks the kernel anything: the kernel could lie, the source
the student submitted cannot. (Dynamic tricks that the source does not show, ``importlib`` with a
built string for instance, find nothing to import: the sandbox leaves the answers out.)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from llmkit.i18n.runtime import _

from . import REFERENCE_MODULES, GradingError


def _is_answer_module(module: str | None) -> bool:
    return bool(module) and any(module == p or module.startswith(p + ".") for p in REFERENCE_MODULES)


def _top_level(tree: ast.Module):
    """Top-level statements, looking into if/try/with blocks as Python's module scope does."""
    stack = list(reversed(tree.body))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            inner = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                inner += handler.body
            stack.extend(reversed(inner))


def _bound_names(node) -> dict[str, ast.AST]:
    names: dict[str, ast.AST] = {}
    if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        names[node.name] = node
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            names[(alias.asname or alias.name).split(".")[0]] = node
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names[sub.id] = node
    return names


@dataclass
class Cell:
    index: int
    source: str
    by_student: bool


class SourceIntegrity:
    """Where each notebook name was bound, read from the submitted code cells."""

    def __init__(self, cells: list[Cell]):
        self.statements: list[tuple[int, ast.AST, bool]] = []  # (cell index, statement, by_student)
        self.answer_imports: dict[str, str] = {}  # local name -> answer module it came from
        for cell in cells:
            try:
                tree = ast.parse(_strip_magics(cell.source))
            except SyntaxError:
                continue
            for node in _top_level(tree):
                self.statements.append((cell.index, node, cell.by_student))
                if isinstance(node, (ast.Import, ast.ImportFrom)) and cell.by_student:
                    for alias in node.names:
                        module = node.module if isinstance(node, ast.ImportFrom) else alias.name
                        if _is_answer_module(module):
                            self.answer_imports[(alias.asname or alias.name).split(".")[0]] = module

    def binding(self, name: str, before: int):
        found = None
        for index, node, by_student in self.statements:
            if index >= before:
                break
            if name in _bound_names(node):
                found = (node, by_student)
        return found

    def check(self, name: str, before: int) -> None:
        """Raise GradingError unless ``name`` was written in the notebook before cell ``before``."""
        found = self.binding(name, before)
        if found is None:
            # TRANSLATORS: {name} is the class or function the exercise asks for (code: keep as is).
            raise GradingError(_("{name} is not defined by a class or def statement in this notebook; "
                                 "write `class {name}` or `def {name}` in the exercise cell.").format(name=name))
        node, by_student = found
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else next(
                a.name for a in node.names if (a.asname or a.name).split(".")[0] == name)
            # TRANSLATORS: {name} is the graded class or function, {module} the Python module it was imported from.
            raise GradingError(_("{name} is imported from {module}; write it yourself in this notebook to earn "
                                 "these points.").format(name=name, module=module))
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                for sub in ast.walk(base):
                    if isinstance(sub, ast.Name) and sub.id in self.answer_imports:
                        # TRANSLATORS: {name} is the student's class, {base} the reference class it derives
                        # from and {module} the reference module that class was imported from.
                        raise GradingError(_("{name} subclasses {base} from {module}; write the class yourself, "
                                             "deriving only from torch.nn.Module.").format(
                            name=name, base=sub.id, module=self.answer_imports[sub.id]))
        leaned = sorted(used & set(self.answer_imports))
        if leaned:
            # TRANSLATORS: {name} is the graded code, {reference} a reference-solution name it uses and
            # {module} the reference module that name came from.
            raise GradingError(_("{name} calls the reference solution {reference} (from {module}); "
                                 "implement it yourself.").format(
                name=name, reference=leaned[0], module=self.answer_imports[leaned[0]]))


def _strip_magics(source: str) -> str:
    """IPython lines (``%time``, ``!ls``) are not Python; blank them so the rest still parses."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
