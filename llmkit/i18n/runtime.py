"""Looking texts up at run time: grading messages and widget labels in the edition's language.

Grading checks mark their messages with ``_`` and format *after* translating, so the catalog is keyed
by the English template::

    from llmkit.i18n import _
    raise GradingError(_("the mask is missing: token {i} sees token {j}").format(i=i, j=j))

For a table of hints defined at import time, mark each text with ``N_`` (it returns its argument,
so ``translate`` extracts it) and translate where it is shown: ``_(hint)``.

The language comes, in order, from ``with language("es"):`` (the grader sets it from the
assignment's name: 04-attention-es), from ``LLMKIT_LANG``, or from the notebook a kernel runs
(Jupyter puts its path in ``JPY_SESSION_NAME``; an edition's path ends in -es, -zh-TW, -af).
Without one, or without a translation, the English comes back unchanged.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
from pathlib import Path

from . import catalog as cat

_language: contextvars.ContextVar[str | None] = contextvars.ContextVar("llmkit_language", default=None)


@contextlib.contextmanager
def language(lang: str | None):
    """Texts looked up inside this block are in ``lang`` (None: English)."""
    token = _language.set(lang)
    try:
        yield
    finally:
        _language.reset(token)


def language_of(name: str) -> str | None:
    """The edition language in an assignment or notebook name: 04-attention-es -> es; English -> None."""
    from .edition import base_assignment

    return base_assignment(Path(name).stem)[1]


def current_language() -> str | None:
    lang = _language.get()
    if lang:
        return lang
    if os.environ.get("LLMKIT_LANG"):
        return os.environ["LLMKIT_LANG"]
    session = os.environ.get("JPY_SESSION_NAME")
    return language_of(session) if session else None


def locale_dir() -> Path | None:
    """Where the catalogs are: $LLMKIT_LOCALE_DIR, else the course's locale/ (as found from here)."""
    if os.environ.get("LLMKIT_LOCALE_DIR"):
        return Path(os.environ["LLMKIT_LOCALE_DIR"])
    for candidate in (Path.cwd() / "locale", Path.cwd() / "course" / "locale", cat.PACKAGE.parent / "course" / "locale"):
        if (candidate / f"{cat.DOMAIN}.pot").is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=16)
def _messages(lang: str, where: str) -> dict:
    path = Path(where) / lang / "LC_MESSAGES" / f"{cat.DOMAIN}.po"
    if not path.is_file():
        return {}
    return {(m.context, m.id): m.string for m in cat.read(path)
            if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def messages(lang: str | None, context: str) -> dict:
    """English -> translation for one context of a language's catalog (empty when there is none)."""
    where = locale_dir()
    if not lang or where is None:
        return {}
    return {msgid: text for (ctx, msgid), text in _messages(lang, str(where)).items() if ctx == context}


def gettext(message: str, lang: str | None = None, context: str = "grading") -> str:
    """``message`` in the current (or given) language; the English itself when untranslated."""
    return messages(lang or current_language(), context).get(message, message)


def _(message: str) -> str:
    """The grading checks' lookup: ``_("English template {x}").format(x=...)``."""
    return gettext(message)


def N_(message: str) -> str:
    """Marks a text for extraction without translating it (a hint table's entries)."""
    return message


def translator(lang: str | None, context: str = "grading"):
    """A ``_`` bound to one language, for code that knows its edition (e.g. by assignment name)."""
    table = messages(lang, context)
    return lambda message: table.get(message, message)


# ------------------------------------------------------------------ widgets


@functools.lru_cache(maxsize=256)
def _template_regex(template: str) -> tuple[re.Pattern, list[str]]:
    """'layer {layer}, head {head}' -> a regex matching its rendered text, and the field names in order."""
    parts = re.split(r"(\{[^{}]*\})", template)
    names = [p[1:-1] for p in parts if p.startswith("{") and p.endswith("}")]
    body = "".join(f"(?P<f{i}>.*?)" if p.startswith("{") and p.endswith("}") else re.escape(p)
                   for i, p in enumerate(parts))
    return re.compile(f"^{body}$", re.DOTALL), names


def translate_label(text: str, lang: str | None = None) -> str:
    """A widget label or plot text in the current language: exact, or by its f-string template."""
    table = messages(lang or current_language(), "widgets")
    if not table or not text:
        return text
    if text in table:
        return table[text]
    for template, translated in table.items():
        if "{" not in template:
            continue
        pattern, names = _template_regex(template)
        match = pattern.match(text)
        if match:
            parts = re.split(r"(\{[^{}]*\})", template)
            values = {p: match[f"f{i}"] for i, p in enumerate(parts) if p.startswith("{") and p.endswith("}")}
            return re.sub(r"\{[^{}]*\}", lambda m: values.get(m.group(0), m.group(0)), translated)
    return text


def localize_widget(widget, lang: str | None = None):
    """Translate the labels of an ipywidgets tree in place (description, placeholder, tooltip)."""
    stack = [widget]
    while stack:
        w = stack.pop()
        for attr in ("description", "placeholder", "tooltip"):
            value = getattr(w, attr, None)
            if isinstance(value, str) and value:
                setattr(w, attr, translate_label(value, lang))
        stack += list(getattr(w, "children", ()) or ())
    return widget


def localize_figure(fig, lang: str | None = None):
    """Translate a matplotlib figure's titles, axis labels and legend entries in place."""
    for ax in fig.axes:
        ax.set_title(translate_label(ax.get_title(), lang))
        ax.set_xlabel(translate_label(ax.get_xlabel(), lang))
        ax.set_ylabel(translate_label(ax.get_ylabel(), lang))
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_text(translate_label(text.get_text(), lang))
    return fig
