"""The translatable text of a notebook: markdown paragraphs, comments and message strings.

A *unit* is one catalog entry: a markdown paragraph (blocks between blank lines, so one edited
paragraph changes one entry), a comment (consecutive full-line comments at one indentation form
one unit), or a message string: an ``assert``'s message, an argument of ``print``, of a raised
exception or of a plot title/axis label, a ``label=`` of a plot call, and docstrings. Code is never
a unit. Solution cells are left alone, and so are the hidden parts of test cells.

Extraction and application share one function per cell kind (``markdown_chunks``, ``code_spans``),
so what ``translate`` extracts is exactly what ``build`` replaces. ``code_skeleton`` is the code of
a cell with every comment and message blanked: an edition's cell must have the English skeleton
(the same code, names, calls and f-string placeholders), or its translations are not used.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Callable

# Text worth translating has two words in a row (not a lone identifier or a shape like "(B, T)").
_WORDS = re.compile(r"[^\W\d_]{2,}[ \t]+[^\W\d_]{2,}")
_PROSE_WORD = re.compile(r"(?<![\w.])[^\W\d_]{2,}(?![\w(.])")
_FENCE = re.compile(r"^\s*(```|~~~)")
_STRING = re.compile(r"^([rRuUfF]{0,2})('''|\"\"\"|'|\")(.*)\2$", re.DOTALL)
_NBGRADER_MARK = re.compile(r"^#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)|^#\s*YOUR CODE HERE")
_PRAGMA = re.compile(r"^#\s*(noqa|type:|pragma|fmt:|pylint:)")
_CODE_SPAN = re.compile(r"`[^`]*`")

MESSAGE_CALLS = {"print", "title", "xlabel", "ylabel", "suptitle", "set_title", "set_xlabel", "set_ylabel",
                 "mistake"}  # llmkit.visible_checks.mistake(hint, output): only the hint is a message
# The visible checks (llmkit.visible_checks.expect*) take what they check and their hint as keywords.
CHECK_MESSAGE_KEYWORDS = {"what", "hint"}
LABEL_CALLS = {"colorbar", "plot", "scatter", "bar", "barh", "hist", "axhline", "axvline"}


def has_words(text: str) -> bool:
    """Whether a comment or message carries prose: two words that are not parts of names or fields.

    ``expected {want}, got {got}`` does; ``(B, heads, T, head_dim)`` and ``ids:`` do not.
    """
    text = re.sub(r"\{[^{}]*\}", " ", text)
    return len(_PROSE_WORD.findall(text)) >= 2 or bool(_WORDS.search(text))


def has_prose(markdown: str) -> bool:
    """Whether a markdown paragraph has a word outside its code spans (a heading counts)."""
    return bool(re.search(r"[^\W\d_]{2,}", _CODE_SPAN.sub(" ", markdown)))


# ------------------------------------------------------------------ markdown


def markdown_chunks(text: str) -> list[tuple[str, bool]]:
    """``text`` cut into (chunk, translatable) pieces whose concatenation is ``text`` exactly.

    Translatable chunks are paragraphs: runs of non-blank lines outside fenced code blocks. A
    heading, a list or a table without blank lines inside is one paragraph.
    """
    chunks: list[tuple[str, bool]] = []
    para: list[str] = []
    other: list[str] = []
    fenced = False

    def flush_para():
        if para:
            body = "".join(para)
            stripped = body.rstrip("\n")
            chunks.append((stripped, has_prose(stripped)))
            if len(body) > len(stripped):
                chunks.append((body[len(stripped):], False))
            para.clear()

    def flush_other():
        if other:
            chunks.append(("".join(other), False))
            other.clear()

    for line in text.splitlines(keepends=True):
        if _FENCE.match(line) or fenced:
            flush_para()
            other.append(line)
            if _FENCE.match(line):
                fenced = not fenced
        elif line.strip():
            flush_other()
            para.append(line)
        else:
            flush_para()
            other.append(line)
    flush_para()
    flush_other()
    return chunks


def markdown_units(text: str) -> list[str]:
    return [chunk for chunk, translatable in markdown_chunks(text) if translatable]


def apply_markdown(text: str, lookup: Callable[[str], str | None]) -> str:
    """The cell with each paragraph that ``lookup`` translates replaced (None keeps the English)."""
    out = []
    for chunk, translatable in markdown_chunks(text):
        translated = lookup(chunk) if translatable else None
        out.append(translated.strip("\n") if translated else chunk)
    return "".join(out)


# ------------------------------------------------------------------ code


@dataclass
class Span:
    """One translatable piece of a code cell, by character offsets into its source."""

    start: int
    end: int
    kind: str  # "comment" | "message"
    msgid: str
    render: Callable[[str], str]


def _offsets(source: str) -> list[int]:
    starts, pos = [0], 0
    for line in source.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


def _hidden_lines(source: str) -> set[int]:
    """1-based numbers of the lines inside BEGIN/END HIDDEN TESTS (students never see them)."""
    hidden, inside = set(), False
    for number, line in enumerate(source.splitlines(), 1):
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        if inside:
            hidden.add(number)
        if "END HIDDEN TESTS" in line:
            inside = False
    return hidden


def _comment_spans(source: str, starts: list[int], hidden: set[int]) -> list[Span]:
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    lines = source.splitlines()
    spans: list[Span] = []
    group: list[tokenize.TokenInfo] = []

    def close():
        if not group:
            return
        first, last = group[0], group[-1]
        column = first.start[1]
        text = "\n".join(re.sub(r"^#\s?", "", t.string).rstrip() for t in group)
        indent = lines[first.start[0] - 1][:column]
        spans.append(Span(starts[first.start[0] - 1] + column, starts[last.end[0] - 1] + last.end[1], "comment",
                          text, lambda t, indent=indent: ("\n" + indent).join(
                              ("# " + line).rstrip() for line in t.strip("\n").split("\n"))))
        group.clear()

    previous = None
    for token in tokens:
        if token.type == tokenize.COMMENT:
            row, column = token.start
            comment = token.string
            usable = (row not in hidden and not _NBGRADER_MARK.match(comment) and not _PRAGMA.match(comment))
            full_line = not lines[row - 1][:column].strip()
            if not usable:
                close()
            elif full_line:
                if group and (group[-1].start[0] != row - 1 or group[-1].start[1] != column):
                    close()
                group.append(token)
            else:
                close()
                spans.append(Span(starts[row - 1] + column, starts[row - 1] + token.end[1], "comment",
                                  re.sub(r"^#\s?", "", comment).rstrip(),
                                  lambda t: "# " + " ".join(t.split())))
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            close()
        previous = token
    close()
    del previous
    return [s for s in spans if has_words(s.msgid)]


def _callee(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def message_nodes(tree: ast.AST) -> list[ast.expr]:
    """The string nodes of a cell that are messages, not data: what an edition may translate."""
    found: list[ast.expr] = []

    def text(node) -> bool:
        return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))

    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and node.msg is not None and text(node.msg):
            found.append(node.msg)
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            found += [a for a in node.exc.args if text(a)]
        elif isinstance(node, ast.Call):
            name = _callee(node)
            if name == "mistake":  # mistake(hint, output): the output is data the check compares, never prose
                found += [a for a in node.args[:1] if text(a)]
            elif name in MESSAGE_CALLS:
                found += [a for a in node.args if text(a)]
            if name in LABEL_CALLS:
                found += [k.value for k in node.keywords if k.arg == "label" and text(k.value)]
            if name.startswith("expect"):
                found += [k.value for k in node.keywords if k.arg in CHECK_MESSAGE_KEYWORDS and text(k.value)]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                found.append(first.value)
    return found


def _char_col(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _message_spans(source: str, starts: list[int], hidden: set[int]) -> list[Span]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    spans = []
    for node in message_nodes(tree):
        if node.lineno in hidden or node.end_lineno is None:
            continue
        start = starts[node.lineno - 1] + _char_col(lines[node.lineno - 1], node.col_offset)
        end = starts[node.end_lineno - 1] + _char_col(lines[node.end_lineno - 1], node.end_col_offset)
        segment = source[start:end]
        match = _STRING.match(segment)
        if not match or not _single_literal(segment):
            continue  # implicit concatenation or bytes: left as it is
        prefix, quote, inner = match.groups()
        if has_words(inner):
            spans.append(Span(start, end, "message", inner, lambda t, p=prefix, q=quote: f"{p}{q}{t}{q}"))
    return spans


def _single_literal(segment: str) -> bool:
    try:
        kinds = [t.type for t in tokenize.generate_tokens(io.StringIO(segment).readline)
                 if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)]
    except (tokenize.TokenError, SyntaxError):
        return False
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    return kinds == [tokenize.STRING] or (fstring_start is not None and kinds.count(fstring_start) == 1
                                          and kinds[0] == fstring_start)


def code_spans(source: str) -> list[Span]:
    """The comments and message strings of a code cell, in source order, outside hidden tests."""
    starts = _offsets(source)
    hidden = _hidden_lines(source)
    spans = _comment_spans(source, starts, hidden) + _message_spans(source, starts, hidden)
    return sorted(spans, key=lambda s: s.start)


def code_skeleton(source: str) -> str:
    """The cell's code with comments gone and each message blanked (its f-string fields kept, sorted)."""
    tree = ast.parse(source)
    for node in message_nodes(tree):
        fields = sorted(ast.dump(v) for v in getattr(node, "values", []) if isinstance(v, ast.FormattedValue))
        if isinstance(node, ast.JoinedStr):
            node.values = [ast.Constant(value="<message>")] + [ast.Constant(value=f) for f in fields]
        else:
            node.value = "<message>"
    return ast.dump(tree, include_attributes=False)


def apply_code(source: str, lookup: Callable[[str], str | None]) -> tuple[str, list[str]]:
    """The cell with its comments and messages translated, and the msgids whose translation broke the code.

    Each translation is kept only if the cell still has the English skeleton; one that does not (a
    quote that ends the string early, a changed ``{placeholder}``) is left in English and reported.
    """
    spans = code_spans(source)
    if not spans:
        return source, []
    try:
        english = code_skeleton(source)
    except SyntaxError:
        english = None
    chosen = {i: lookup(s.msgid) for i, s in enumerate(spans)}
    chosen = {i: t for i, t in chosen.items() if t}

    def render(keep: dict) -> str:
        out, pos = [], 0
        for i, span in enumerate(spans):
            out.append(source[pos:span.start])
            out.append(span.render(keep[i]) if i in keep else source[span.start:span.end])
            pos = span.end
        out.append(source[pos:])
        return "".join(out)

    def fits(text: str) -> bool:
        if english is None:
            return True
        try:
            return code_skeleton(text) == english
        except SyntaxError:
            return False

    result = render(chosen)
    if fits(result):
        return result, []
    broken = [i for i in chosen if not fits(render({i: chosen[i]}))]
    keep = {i: t for i, t in chosen.items() if i not in broken}
    return render(keep), [spans[i].msgid for i in broken]
