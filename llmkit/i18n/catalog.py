"""The gettext catalogs: one template ``course/locale/course.pot``, one ``<lang>/LC_MESSAGES/course.po`` each.

Babel reads and writes the files and merges a template into a language's catalog the way
``msgmerge`` does: an unchanged English text keeps its translation, a changed one is matched to
its old text and marked ``fuzzy`` (its old translation kept as a draft, the old English under
``#|``), a new one arrives empty, and a removed one stays at the end as an obsolete ``#~`` entry.

Every entry has a context (``msgctxt``): the assignment it comes from (``04-attention``), ``widgets``
for the kit's widget labels, or ``grading`` for the messages of the grading checks. Its location
(``#: 04-attention.ipynb:10``) is the cell number in the English notebook.
"""

from __future__ import annotations

import ast
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from .units import code_spans, markdown_units

# The editions, by the code that names their folders and assignments: 04-attention-es.
LANGUAGES = {"es": "Español", "zh-TW": "繁體中文", "af": "Afrikaans"}
DOMAIN = "course"
PACKAGE = Path(__file__).resolve().parent.parent  # llmkit/
GRADING_KEYWORDS = {"_": None, "N_": None, "gettext": None}
_WIDGET_KEYWORDS = {"description", "placeholder", "tooltip", "label"}
_WIDGET_CALLS = {"set_title", "set_xlabel", "set_ylabel", "suptitle", "Label", "Button"}


def locale_dir(course_root: Path) -> Path:
    return Path(course_root) / "locale"


def template_path(course_root: Path) -> Path:
    return locale_dir(course_root) / f"{DOMAIN}.pot"


def po_path(course_root: Path, lang: str) -> Path:
    return locale_dir(course_root) / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def babel_locale(lang: str) -> str:
    return lang.replace("-", "_")


def catalog_languages(course_root: Path) -> list[str]:
    """The languages that have a catalog, in LANGUAGES order, then any others."""
    found = {p.parent.parent.name for p in locale_dir(course_root).glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return [lang for lang in LANGUAGES if lang in found] + sorted(found - set(LANGUAGES))


def english_notebooks(course_root: Path) -> list[Path]:
    """The English source notebooks: source/NN-name/*.ipynb."""
    source = Path(course_root) / "source"
    return sorted(p for p in source.glob("*/*.ipynb") if not p.parent.name.startswith("."))


def is_solution(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("solution"))


@dataclass
class Entry:
    context: str
    msgid: str
    locations: list = field(default_factory=list)
    comments: list = field(default_factory=list)


def notebook_entries(path: Path) -> list[Entry]:
    """What a translator translates in one notebook, in cell order."""
    nb = nbformat.read(str(path), as_version=4)
    context = path.parent.name
    entries = []
    for index, cell in enumerate(nb.cells):
        where = (path.name, index + 1)  # cells counted from 1, as the edition's warnings count them
        if cell.cell_type == "markdown":
            entries += [Entry(context, text, [where], ["markdown paragraph"]) for text in markdown_units(cell.source)]
        elif cell.cell_type == "code" and not is_solution(cell):
            for span in code_spans(cell.source):
                note = ("comment: one line per line you write" if span.kind == "comment" else
                        "Python string, as written between its quotes: keep each {…} field and escape such as "
                        "\\n, and do not use the quote that closes it")
                entries.append(Entry(context, span.msgid, [where], [note]))
    return entries


def _literal_text(node: ast.expr, source: str) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        segment = ast.get_source_segment(source, node) or ""
        quote = segment.lstrip("rRfF")[:1]
        return segment.lstrip("rRfF").strip(quote) if quote else None
    return None


def widget_entries(widgets_dir: Path = PACKAGE / "widgets",
                   files: tuple[Path, ...] = (PACKAGE / "tryout.py",)) -> list[Entry]:
    """The labels a person reads on the kit's widgets: control descriptions, plot titles and axes.

    ``files``: other modules whose plots a notebook shows (``try_component``'s curves).

    Read from the widgets' source, never imported: ``description=``/``placeholder=``/``tooltip=``/
    ``label=`` keywords and the text of ``set_title``/``set_xlabel``/``set_ylabel``/``Label``/
    ``Button``. An f-string is kept as its template (``layer {layer}, head {head}``), which
    ``llmkit.i18n.runtime.translate_label`` matches against the rendered text.
    """
    entries: dict[str, Entry] = {}
    for path in [*sorted(Path(widgets_dir).glob("*.py")), *map(Path, files)]:
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            values = [k.value for k in node.keywords if k.arg in _WIDGET_KEYWORDS]
            if name in _WIDGET_CALLS:
                values += node.args[:1]
            for value in values:
                text = _literal_text(value, source)
                if text and _is_label(text):
                    entry = entries.setdefault(text, Entry("widgets", text, [], ["widget label or plot text"]))
                    entry.locations.append((_location(path), value.lineno))
    return list(entries.values())


def _is_label(text: str) -> bool:
    import re

    return bool(re.search(r"[^\W\d_]{2,}", text)) and not re.fullmatch(r"[a-z]+(_[a-z]+)+", text)


def _grading_dirs() -> tuple[Path, ...]:
    """The hidden checks' folder, in the instructor package (none in a student's environment)."""
    import importlib.util

    spec = importlib.util.find_spec("llmkit_instructor")
    if spec is None or not spec.submodule_search_locations:
        return ()
    return (Path(list(spec.submodule_search_locations)[0]) / "grading",)


def grading_entries(dirs: tuple[Path, ...] | None = None,
                    files: tuple[Path, ...] = (PACKAGE / "visible_checks.py", PACKAGE / "validate_summary.py"))\
        -> list[Entry]:
    """Messages the grading checks mark for translation: ``_("...")``, ``N_("...")`` or ``gettext("...")``.

    ``dirs``: the checks' folders (default: the instructor package's ``grading``); ``files``: modules
    outside them with such messages (the helpers of the visible tests).
    """
    entries: dict[str, Entry] = {}
    dirs = _grading_dirs() if dirs is None else dirs
    paths = [path for folder in dirs for path in sorted(Path(folder).glob("*.py"))] + [Path(f) for f in files]
    for path in paths:
        for lineno, message, comments, _context in extract_from_file(
                "python", str(path), keywords=GRADING_KEYWORDS, comment_tags=("TRANSLATORS:",)):
            if isinstance(message, str) and message:
                entry = entries.setdefault(message, Entry("grading", message, [], list(comments)))
                entry.locations.append((_location(path), lineno))
    return list(entries.values())


def _location(path: Path) -> str:
    """A module's path from its top-level package: llmkit/visible_checks.py, llmkit_instructor/grading/gpt.py."""
    parts = [path.name]
    folder = path.resolve().parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return "/".join(parts)


def template(course_root: Path) -> Catalog:
    """The POT: every translatable English text of the course, the widgets and the grading checks."""
    catalog = Catalog(project="llmkit course", version="1", fuzzy=False, msgid_bugs_address="", header_comment=(
        "# The English text of the llmkit course, its widgets and its grading messages.\n"
        "# Generated by `llmkit course translate`; do not edit: edit the <lang>/LC_MESSAGES/course.po files."))
    entries = [e for nb in english_notebooks(course_root) for e in notebook_entries(nb)]
    entries += widget_entries() + grading_entries()
    for entry in entries:
        existing = catalog.get(entry.msgid, entry.context)
        if existing is not None:
            existing.locations += [loc for loc in entry.locations if loc not in existing.locations]
            continue
        catalog.add(entry.msgid, context=entry.context, locations=entry.locations, auto_comments=entry.comments)
    return catalog


def read(path: Path) -> Catalog:
    with open(path, "rb") as f:
        return read_po(f)


def dump(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, include_previous=True, sort_output=False)
    return buffer.getvalue()


def _comparable(data: bytes) -> bytes:
    return b"\n".join(line for line in data.splitlines()
                      if not line.startswith((b'"POT-Creation-Date:', b'"PO-Revision-Date:')))


def write_if_changed(path: Path, catalog: Catalog) -> bool:
    """Write the catalog unless only its dates would change (no churn in git on a no-op)."""
    data = dump(catalog)
    if path.is_file() and _comparable(path.read_bytes()) == _comparable(data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


@dataclass
class Counts:
    total: int = 0
    translated: int = 0
    fuzzy: int = 0
    untranslated: int = 0
    obsolete: int = 0

    def __str__(self) -> str:
        return (f"{self.translated}/{self.total} translated, {self.fuzzy} fuzzy, {self.untranslated} untranslated"
                + (f", {self.obsolete} obsolete" if self.obsolete else ""))


def counts(catalog: Catalog) -> Counts:
    c = Counts(obsolete=len(catalog.obsolete))
    for message in catalog:
        if not message.id:
            continue
        c.total += 1
        if message.fuzzy:
            c.fuzzy += 1
        elif message.string:
            c.translated += 1
        else:
            c.untranslated += 1
    return c


_PO_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _previous_id(message) -> list[str]:
    """The old English of a fuzzy entry: Babel writes ``#| msgid "..."`` but reads it back as comments.

    Babel joins a long msgid's quoted pieces on one comment line and wraps that over several ``#|``
    lines at spaces; joined again with one space, the pieces are whole quoted strings once more.
    """
    from babel.messages.pofile import unescape

    text = " ".join(c.lstrip()[1:].strip() for c in message.user_comments if c.lstrip().startswith("|"))
    if not text.startswith("msgid "):
        return []
    pieces = _PO_STRING.findall(text[len("msgid "):])
    return ["".join(unescape(piece) for piece in pieces)] if pieces else []


def merge(catalog: Catalog, pot: Catalog) -> Catalog:
    """``catalog`` brought up to the template ``pot``, by msgmerge's rules with one refinement.

    An English text that is unchanged keeps its translation and flags. A new text is matched only
    against the texts that have just disappeared, first in its own notebook (context), then in any:
    an edited paragraph thus finds its own old version, never an unrelated sentence that is still in
    use. The match (difflib ratio >= 0.6) gives a fuzzy draft with the old English as ``#|``; an
    unmatched text arrives empty; a vanished text nobody matched stays as an obsolete ``#~`` entry.
    """
    import difflib

    old = {(m.context, m.id): m for m in catalog if m.id}
    keys = {(m.context, m.id) for m in pot if m.id}
    vanished = {key: m for key, m in old.items() if key not in keys and m.string}
    merged = Catalog(locale=catalog.locale, project=catalog.project, version=catalog.version, fuzzy=False,
                     header_comment=catalog.header_comment, msgid_bugs_address=catalog.msgid_bugs_address,
                     last_translator=catalog.last_translator, language_team=catalog.language_team,
                     creation_date=pot.creation_date, revision_date=catalog.revision_date)
    for message in pot:
        if not message.id:
            continue
        key = (message.context, message.id)
        string, flags, previous, comments = "", set(), [], []
        if key in old:
            string, flags, comments = old[key].string, set(old[key].flags), old[key].user_comments
            previous = _previous_id(old[key]) if "fuzzy" in flags else []
        else:
            for pool in ([k for k in vanished if k[0] == message.context], list(vanished)):
                match = difflib.get_close_matches(message.id, [k[1] for k in pool], n=1, cutoff=0.6)
                if match:
                    found = next(k for k in pool if k[1] == match[0])
                    draft = vanished.pop(found)
                    string, flags, previous, comments = draft.string, {"fuzzy"}, [draft.id], draft.user_comments
                    break
        comments = [c for c in comments if not c.lstrip().startswith("|")]  # Babel reads "#|" as a comment
        merged.add(message.id, string, locations=message.locations, flags=flags,
                   auto_comments=message.auto_comments, user_comments=comments, previous_id=previous,
                   context=message.context)
    for (context, msgid), message in vanished.items():  # translated, gone, matched by nothing
        merged.obsolete[(msgid, context) if context else msgid] = message
    for key, message in catalog.obsolete.items():
        merged.obsolete.setdefault(key, message)
    return merged


def update(course_root: Path, languages: list[str] | None = None) -> dict[str, Counts]:
    """Extract the English into the POT and merge it into each language's PO (see ``merge``).

    ``languages``: the catalogs to update (a new one is created); default every existing catalog.
    Returns each language's counts after the merge.
    """
    course_root = Path(course_root)
    pot = template(course_root)
    write_if_changed(template_path(course_root), pot)
    result = {}
    for lang in languages or catalog_languages(course_root):
        path = po_path(course_root, lang)
        if path.is_file():
            catalog = read(path)
        else:
            catalog = Catalog(locale=babel_locale(lang), project="llmkit course", version="1", fuzzy=False,
                              msgid_bugs_address="", last_translator="", language_team=LANGUAGES.get(lang, lang),
                              header_comment=f"# The llmkit course in {LANGUAGES.get(lang, lang)} ({lang}).\n"
                                             f"# Glossary: {lang}/GLOSSARY.md. Workflow: the README, 'Editions'.")
        catalog = merge(catalog, pot)
        write_if_changed(path, catalog)
        result[lang] = counts(catalog)
    return result
