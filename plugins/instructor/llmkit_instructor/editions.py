"""``llmkit course translate`` and ``llmkit course build --lang``: the commands behind the editions."""

from __future__ import annotations

from pathlib import Path

from llmkit.errors import LLMKitError
from llmkit.i18n import catalog as cat
from llmkit.i18n.edition import build_edition, edition_root

GAPS_SHOWN = 12  # a build lists this many of the texts left in English, then counts the rest


def languages(course_root: Path, option: str | None) -> list[str]:
    """``--lang``: one code, a comma-separated list, or ``all`` (every language with a catalog)."""
    if option in (None, "all"):
        found = cat.catalog_languages(course_root)
        if option == "all" and not found:
            raise LLMKitError(f"no catalogs in {cat.locale_dir(course_root)}; start one with "
                              "`llmkit course translate --lang es`")
        return found
    langs = [part.strip() for part in option.split(",") if part.strip()]
    for lang in langs:
        if lang not in cat.LANGUAGES and not (cat.po_path(course_root, lang)).is_file():
            raise LLMKitError(f"unknown language {lang!r}; the editions are {', '.join(cat.LANGUAGES)} "
                              "(a new one: add it to llmkit.i18n.catalog.LANGUAGES)")
    return langs


def translate(course_root: Path, option: str | None) -> list[str]:
    """Extract the English and merge it into the catalogs; one line per language."""
    langs = languages(course_root, option)
    result = cat.update(course_root, langs)
    lines = [f"template: {cat.template_path(course_root)} ({sum(1 for m in cat.read(cat.template_path(course_root)) if m.id)} texts)"]
    for lang, counts in result.items():
        lines.append(f"{lang}: {cat.po_path(course_root, lang)}: {counts}")
    if not result:
        lines.append("no catalogs yet: `llmkit course translate --lang es` starts the Spanish one")
    return lines


def _nbgrader(course_root: Path, lang: str, names: list[str], validate: bool) -> tuple[list[str], list[str]]:
    """Validate and generate the edition's assignments with nbgrader, its source folder being source-<lang>."""
    from . import gradebook
    from .course import _in_dir, _validate, api, check_release

    generated, problems = [], []
    getattr(gradebook, "quiet_nbgrader_warnings", lambda: None)()
    with _in_dir(course_root):
        nbapi = api(course_root)
        nbapi.coursedir.source_directory = edition_root(course_root, lang).name
        for name in names:
            if validate:
                for nb in sorted((edition_root(course_root, lang) / name).glob("*.ipynb")):
                    problems += _validate(nb, nbapi.config)
            result = nbapi.generate_assignment(name, force=True)
            if not result["success"]:
                problems.append(f"{name}: generate_assignment failed: {result['error'][-400:]}")
                continue
            generated.append(name)
            problems += check_release(course_root / "release" / name)
    return generated, problems


def build(course_root: Path, option: str, only: list[str] | None, validate: bool, nbgrader: bool = True) -> list[str]:
    """Write each edition from the English and its catalog, then validate and generate it with nbgrader.

    Returns the lines to print; raises LLMKitError when nbgrader finds a problem. Texts left in English
    are a warning (with their count and where), never an error: a new English paragraph must not stop
    a course from being built.
    """
    lines, problems = [], []
    for lang in languages(course_root, option):
        report = build_edition(course_root, lang, only)
        lines.append(f"wrote {len(report.written)} notebooks to {edition_root(course_root, lang)}")
        if report.gaps:
            lines.append(f"warning: {report.summary()}; `llmkit course translate --lang {lang}` then edit "
                         f"{cat.po_path(course_root, lang)}:")
            lines += [f"  {gap}" for gap in report.gaps[:GAPS_SHOWN]]
            if len(report.gaps) > GAPS_SHOWN:
                lines.append(f"  ... and {len(report.gaps) - GAPS_SHOWN} more")
        else:
            lines.append(report.summary())
        if nbgrader:
            names = [f"{name}" for name in report.written]
            generated, found = _nbgrader(course_root, lang, names, validate)
            lines.append(f"generated {len(generated)} assignments: {', '.join(generated)}")
            problems += found
    for problem in problems:
        lines.append(f"problem: {problem}")
    if problems:
        print("\n".join(lines))
        raise LLMKitError(f"{len(problems)} problem(s) in the editions; fix them before releasing.")
    if nbgrader:
        lines.append("every edition validates; no release contains solution code or hidden tests" if validate else
                     "editions NOT validated (--no-validate); no release contains solution code or hidden tests")
    return lines
