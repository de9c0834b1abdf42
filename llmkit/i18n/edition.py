"""An edition: the English notebooks with the catalog's translations put in, under a language's name.

``course/source-es/04-attention-es/04-attention-es.ipynb`` is 04-attention in Spanish. The suffix
makes each edition its own nbgrader assignment, so students of every edition sit in one course
and one gradebook, and the folder ``source-es`` keeps generated notebooks out of ``source/``,
which holds the English only. Code cells, names, signatures, grade ids and points are the English
ones byte for byte; only markdown paragraphs, comments and message strings change. A text whose
translation is missing, fuzzy or would change the code stays in English and is reported.
"""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import catalog as cat
from .units import apply_code, apply_markdown, code_spans, markdown_units

EDITION_SUFFIX = re.compile(r"^(?P<base>.+)-(?P<lang>[a-z]{2,3}(?:-[A-Z][A-Za-z]{1,3})?)$")


def edition_name(assignment: str, lang: str) -> str:
    """04-attention, es -> 04-attention-es."""
    return f"{assignment}-{lang}"


def base_assignment(name: str, languages=None) -> tuple[str, str | None]:
    """04-attention-es -> ("04-attention", "es"); an English name -> (name, None)."""
    match = EDITION_SUFFIX.match(name)
    known = set(languages or cat.LANGUAGES)
    if match and match["lang"] in known:
        return match["base"], match["lang"]
    return name, None


def edition_root(course_root: Path, lang: str) -> Path:
    """The nbgrader source folder of one edition: course/source-es."""
    return Path(course_root) / f"source-{lang}"


@dataclass
class Gap:
    """A text the edition shows in English, and why."""

    assignment: str
    cell: int  # counted from 1
    kind: str  # markdown | comment | message
    state: str  # untranslated | fuzzy | breaks the code
    text: str

    def __str__(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"{self.assignment} cell {self.cell} ({self.kind}, {self.state}): {first[:60]}"


@dataclass
class EditionReport:
    lang: str
    written: list = field(default_factory=list)  # assignment names of the edition
    gaps: list = field(default_factory=list)

    def summary(self) -> str:
        if not self.gaps:
            return f"{self.lang}: {len(self.written)} notebooks, every text translated"
        states: dict = {}
        for gap in self.gaps:
            states[gap.state] = states.get(gap.state, 0) + 1
        parts = ", ".join(f"{n} {state}" for state, n in states.items())
        return f"{self.lang}: {len(self.written)} notebooks, {len(self.gaps)} texts left in English ({parts})"


class Translations:
    """A language's usable translations: (context, English) -> text, without fuzzy or empty entries."""

    def __init__(self, catalog):
        self.usable, self.fuzzy = {}, set()
        for message in catalog:
            if not message.id or not isinstance(message.id, str):
                continue
            key = (message.context, message.id)
            if message.fuzzy:
                self.fuzzy.add(key)
            elif message.string:
                self.usable[key] = message.string

    @classmethod
    def load(cls, course_root: Path, lang: str) -> "Translations":
        path = cat.po_path(course_root, lang)
        if not path.is_file():
            raise FileNotFoundError(f"no catalog for {lang!r} at {path}; run `llmkit course translate --lang {lang}`")
        return cls(cat.read(path))

    def state(self, context: str, msgid: str) -> str:
        return "fuzzy" if (context, msgid) in self.fuzzy else "untranslated"


def translate_notebook(nb, context: str, translations: Translations, lang: str) -> tuple[object, list[Gap]]:
    """A translated copy of one English notebook, and the texts left in English."""
    nb = copy.deepcopy(nb)
    gaps: list[Gap] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for text in markdown_units(cell.source):
                if (context, text) not in translations.usable:
                    gaps.append(Gap(context, index + 1, "markdown", translations.state(context, text), text))
            cell.source = apply_markdown(cell.source, lambda t: translations.usable.get((context, t)))
        elif cell.cell_type == "code" and not cat.is_solution(cell):
            spans = code_spans(cell.source)
            for span in spans:
                if (context, span.msgid) not in translations.usable:
                    gaps.append(Gap(context, index + 1, span.kind, translations.state(context, span.msgid), span.msgid))
            cell.source, broken = apply_code(cell.source, lambda t: translations.usable.get((context, t)))
            kinds = {s.msgid: s.kind for s in spans}
            gaps += [Gap(context, index + 1, kinds[m], "breaks the code", m) for m in broken]
    nb.metadata["llmkit"] = {**nb.metadata.get("llmkit", {}), "edition": lang, "english": context}
    return nb, gaps


def build_edition(course_root: Path, lang: str, only: list[str] | None = None) -> EditionReport:
    """Write course/source-<lang>/<name>-<lang>/<name>-<lang>.ipynb for each English assignment.

    ``only``: English or edition names of the assignments to write (default all). Other files in
    an assignment's folder (data files) are copied as they are. The edition folder gets a
    ``.gitignore`` of its own: editions are generated, the catalogs are what is committed.
    """
    course_root = Path(course_root)
    translations = Translations.load(course_root, lang)
    wanted = {base_assignment(name)[0] for name in only} if only else None
    root = edition_root(course_root, lang)
    root.mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("# Generated by `llmkit course build --lang`; the catalogs are the source.\n*\n")
    report = EditionReport(lang)
    for path in cat.english_notebooks(course_root):
        assignment = path.parent.name
        if wanted is not None and assignment not in wanted:
            continue
        name = edition_name(assignment, lang)
        folder = root / name
        folder.mkdir(exist_ok=True)
        for extra in path.parent.iterdir():
            if extra.is_file() and extra.suffix != ".ipynb":
                shutil.copy2(extra, folder / extra.name)
        nb, gaps = translate_notebook(nbformat.read(str(path), as_version=4), assignment, translations, lang)
        target = folder / f"{edition_name(path.stem, lang)}.ipynb"
        text = nbformat.writes(nb) + "\n"
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        report.written.append(name)
        report.gaps += gaps
    return report
