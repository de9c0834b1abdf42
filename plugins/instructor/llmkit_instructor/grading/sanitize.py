"""Active content out of graded notebooks: what a student wrote is shown, never run.

The autograded notebook is opened by the instructor (formgrader) and, as feedback, by the student.
Both render it as HTML in a Jupyter origin, so a ``<script>``, an ``onerror=`` handler, an SVG with
a script or a JavaScript output from a student's cell would run with the instructor's session and
could call the server's API (grades, terminals). So, after grading, every output of every cell keeps
only inert types (text, PNG/JPEG, JSON, LaTeX); HTML and Markdown outputs pass through bleach
(nbconvert's ``SanitizeHTML``) with an allow-list wide enough for tables and formatted text; and
every markdown or raw cell that is not the instructor's, byte for byte, is sanitized the same way
once it renders to anything the allow-list changes (a student's plain Markdown stays as written).
Attachments stay: the page shows them through ``<img src="data:...">``, where even an SVG runs nothing.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Callable
from urllib.parse import urlsplit

import bleach
from nbconvert.filters.markdown import markdown2html
from nbconvert.preprocessors.sanitize import SanitizeHTML

# Formatting and tables; no script, style, iframe, object, embed, form, svg, link or base elements.
SAFE_TAGS = sorted(set(bleach.ALLOWED_TAGS) | {
    "p", "br", "hr", "div", "span", "pre", "code", "kbd", "samp", "var", "sub", "sup", "small", "del", "ins",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
    "dl", "dt", "dd", "img", "details", "summary", "mark", "u", "s", "q", "cite", "figure", "figcaption",
})
SAFE_ATTRIBUTES = {
    "*": ["class", "title", "align", "id"],
    "a": ["href", "title"],
    "img": ["src", "alt", "width", "height"],
    "th": ["colspan", "rowspan", "scope"], "td": ["colspan", "rowspan"],
}
# Inert output types, kept as they are; everything not listed (JavaScript, SVG, widget views,
# application/* bundles) is dropped.
SAFE_OUTPUT_KEYS = {"metadata", "text/plain", "text/latex", "application/json", "image/png", "image/jpeg"}


def _cleaner() -> SanitizeHTML:
    return SanitizeHTML(tags=SAFE_TAGS, attributes=SAFE_ATTRIBUTES, strip=False,
                        safe_output_keys=SAFE_OUTPUT_KEYS, sanitized_output_types={"text/html", "text/markdown"})


class _ActiveContent(HTMLParser):
    """Notes the first element, attribute or link that the allow-list would not keep."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag not in SAFE_TAGS:
            self.found = self.found or f"<{tag}>"
        allowed = set(SAFE_ATTRIBUTES["*"]) | set(SAFE_ATTRIBUTES.get(tag, ()))
        for name, value in attrs:
            if name not in allowed:
                self.found = self.found or f"{tag} {name}="
            elif name in ("href", "src") and value and not _safe_url(value):
                self.found = self.found or f"{tag} {name}={value[:30]}"

    handle_startendtag = handle_starttag


def _safe_url(url: str) -> bool:
    scheme = urlsplit(url.strip()).scheme.lower()
    if scheme == "data":
        return url.strip().lower().startswith(("data:image/png", "data:image/jpeg"))
    return scheme in ("", "http", "https", "mailto", "attachment")


def _active(html: str) -> str | None:
    parser = _ActiveContent()
    parser.feed(html)
    parser.close()
    return parser.found


def _safe_markdown(source: str, cleaner: SanitizeHTML) -> str:
    """``source`` unchanged when the HTML it renders to is inert; else that HTML, sanitized."""
    try:
        html = markdown2html(source)
    except Exception:  # noqa: BLE001 - e.g. a link to an attachment that is not there: judge the text itself
        html = source
    return cleaner.sanitize_html_tags(html) if _active(html) else source


def sanitize_notebook(nb, is_instructor: Callable[[object], bool]) -> int:
    """Make ``nb`` inert in place; returns how many cells changed. ``is_instructor(cell)`` is true only
    for a cell the gradebook holds byte for byte (those are the course's own, and stay as they are)."""
    cleaner = _cleaner()
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            before = repr(cell.get("outputs", []))
            kinds = [sorted(o.get("data", {})) for o in cell.get("outputs", [])]
            cell.outputs = cleaner.sanitize_code_outputs(cell.get("outputs", []))
            for output in cell.outputs:  # Markdown syntax can make a javascript: link that bleach never sees as HTML
                if isinstance(output.get("data", {}).get("text/markdown"), str):
                    output.data["text/markdown"] = _safe_markdown(output.data["text/markdown"], cleaner)
            for output, was in zip(cell.outputs, kinds):
                if "data" in output and not set(output.data) - {"metadata"}:
                    output.data["text/plain"] = f"[{', '.join(was)} output not shown: it could run code]"
            changed += repr(cell.outputs) != before
        elif cell.cell_type in ("markdown", "raw") and not is_instructor(cell):
            source = cell.source if cell.cell_type == "markdown" else cleaner.sanitize_html_tags(cell.source)
            new = _safe_markdown(source, cleaner) if cell.cell_type == "markdown" else source
            if new != cell.source:
                cell.source = new
                changed += 1
    nb.metadata.pop("widgets", None)  # saved widget state renders HTML widgets' values
    return changed
