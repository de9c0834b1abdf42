"""Run student code the way a notebook kernel does: definitions land in ``__main__``."""

import inspect
import textwrap
from pathlib import Path

import nbformat

COURSE_SOURCE = Path(__file__).resolve().parent.parent / "course" / "source"


def notebook(code: str) -> dict:
    namespace = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(code), "<notebook cell>", "exec"), namespace)
    return namespace


def reference_source(obj) -> str:
    """The reference's own source, as a student who wrote the same thing would have it."""
    return inspect.getsource(obj)


def mutate(source: str, old: str, new: str) -> str:
    assert old in source, f"mutation target not found: {old!r}"
    return source.replace(old, new, 1)


def source_cells(assignment: str) -> dict[str, str]:
    """grade_id -> source of every nbgrader cell in a course source notebook (e.g. its "helpers" cell)."""
    nb = nbformat.read(COURSE_SOURCE / assignment / f"{assignment}.ipynb", 4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells if "nbgrader" in c.metadata}


def install_grading_catalog(tmp_path, monkeypatch, translations: dict, lang: str = "es") -> None:
    """A course catalog in ``tmp_path`` with ``translations`` as its grading entries, found by the runtime.

    A translation starting with "ES-HINT" is itself translated to "TWICE", so a hint looked up twice shows.
    Call ``llmkit.i18n.runtime._messages.cache_clear()`` when done (the fixtures do it)."""
    from babel.messages.catalog import Catalog

    from llmkit.i18n import catalog as cat
    from llmkit.i18n import runtime

    catalog = Catalog(locale=lang)
    for english, translated in translations.items():
        catalog.add(english, translated, context="grading")
        if translated.startswith("ES-HINT"):
            catalog.add(translated, "TWICE", context="grading")
    path = tmp_path / lang / "LC_MESSAGES" / "course.po"
    path.parent.mkdir(parents=True)
    cat.write_if_changed(path, catalog)
    monkeypatch.setenv("LLMKIT_LOCALE_DIR", str(tmp_path))
    monkeypatch.delenv("LLMKIT_LANG", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    runtime._messages.cache_clear()
