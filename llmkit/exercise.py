"""Helpers a notebook's own cells use: the integrity check of a graded object.

In a student's kernel ``assert_defined_in_notebook`` inspects the object (helpful while working).
When the trusted grader runs a test cell, the object is a handle to the kernel and the answer comes
from the submitted source instead (``llmkit_instructor.grading.integrity``): nothing the kernel reports about
its own objects decides it.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Iterable

# Modules whose objects are exercise answers: a graded object may not come from or lean on them.
REFERENCE_MODULES = ("llmkit_solutions", "llmkit_sdpa", "llmkit_gqa", "llmkit_sliding_window",
                     "llmkit.finetune", "llmkit.training", "llmkit.evaluation", "llmkit.lora",
                     "llmkit.finetune_data", "llmkit_gpt", "llmkit_generate", "llmkit_samplers", "llmkit_tokenizers")



class GradingError(AssertionError):
    """A failed check; the message says what differs and, when known, the likely mistake and its fix."""


def _is_reference(obj: Any) -> str | None:
    module = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    if isinstance(module, str):
        for prefix in REFERENCE_MODULES:
            if module == prefix or module.startswith(prefix + "."):
                return module
    return None


def _code_objects(obj: Any) -> Iterable[tuple[types.CodeType, dict]]:
    """Code objects of a function or of every function defined in a class body, with their globals."""
    if inspect.isclass(obj):
        for value in vars(obj).values():
            func = getattr(value, "__func__", value)
            if inspect.isfunction(func):
                yield from _code_objects(func)
    elif inspect.isfunction(obj):
        stack = [obj.__code__]
        while stack:
            code = stack.pop()
            yield code, obj.__globals__
            stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


def _referenced_reference(code: types.CodeType, globs: dict) -> str | None:
    """The reference module a code object reaches through a global name or attribute chain, if any."""
    for name in code.co_names:
        value = globs.get(name)
        if value is None or isinstance(value, (int, float, str, bool)):
            continue
        found = _is_reference(value)
        if found:
            return f"{name} (from {found})"
        if isinstance(value, types.ModuleType):  # e.g. llmkit.training.train reached as an attribute
            for attr in code.co_names:
                found = _is_reference(getattr(value, attr, None))
                if found:
                    return f"{name}.{attr} (from {found})"
    return None


# type -> its own check: the trusted grader registers its kernel handles here (``register_defined_check``),
# so the kit never imports the grader, and a student's kernel has nothing registered.
_DEFINED_CHECKS: dict[type, Any] = {}


def register_defined_check(cls: type, check) -> None:
    """``check(obj, name)`` decides ``assert_defined_in_notebook`` for objects of type ``cls``."""
    _DEFINED_CHECKS[cls] = check


def assert_defined_in_notebook(obj: Any, name: str | None = None) -> None:
    """Fail unless ``obj`` was written in the notebook itself."""
    check = _DEFINED_CHECKS.get(type(obj))
    if check is not None:
        return check(obj, name)
    name = name or getattr(obj, "__name__", repr(obj))
    found = _is_reference(obj)
    if found:
        raise GradingError(f"{name} is imported from {found}; write it yourself in this notebook to earn these points.")
    if inspect.isclass(obj):
        for base in obj.__mro__[1:]:
            found = _is_reference(base)
            if found:
                raise GradingError(f"{name} subclasses {base.__name__} from {found}; write the class yourself, "
                                   "deriving only from torch.nn.Module.")
    elif not inspect.isfunction(obj):
        raise GradingError(f"{name} should be a class or a function defined in this notebook, got {type(obj).__name__}.")
    module = getattr(obj, "__module__", None)
    if module != "__main__":
        raise GradingError(f"{name} comes from the module {module}; define it in a notebook cell instead.")
    for code, globs in _code_objects(obj):
        leaned = _referenced_reference(code, globs)
        if leaned:
            raise GradingError(f"{name} calls the reference solution {leaned}; implement it yourself.")
