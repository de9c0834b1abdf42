"""Is a piece of prose still English? A function-word count, deterministic and offline.

English prose is about one word in four made of a small set of function words (*the, and, that,
with, which, ...*); Spanish, Afrikaans and Chinese prose has almost none of them, even where it keeps
English terms (*token*, *embedding*, *fine-tuning*), names from code or the book's example sentences.
Words a language shares with English (Afrikaans *is, in, of, die*; Spanish *a, no*) are not counted
for it. Code spans, fenced and indented code, URLs, HTML tags and italic glossary glosses such as
``(*fine-tuning*)`` are removed first.
"""

from __future__ import annotations

import re

ENGLISH = frozenset("""the and that with for this are from which when each its you your we not or have will
can into than then there their what does do if how would should these those only after before every
but they our been being were because about other also between while where must a an of is to in on at
by as it be its over""".split())
# Function words each edition's language shares with English: not evidence of English there.
SHARED = {
    "es": frozenset({"a", "no"}),
    "af": frozenset({"is", "in", "of", "by", "as", "an", "be"}),
    "zh-TW": frozenset(),
}
# Function words of each edition's language: evidence that a paragraph was translated.
NATIVE = {
    "es": frozenset("""de la el que en y los las del se por con una un para es su al lo como más o sus
cada este esta estos estas entre sin sobre también""".split()),
    "af": frozenset("""die en van wat nie 'n het vir op met word om te dit hierdie jou elke na uit sy ook
aan wanneer""".split()),
}
_REMOVE = [
    re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S),  # fenced code
    re.compile(r"^(?: {4}|\t).*$", re.M),  # indented code
    re.compile(r"`[^`]*`"),  # code spans
    re.compile(r"https?://\S+"),
    re.compile(r"<[^>]+>"),
    re.compile(r"\$[^$]+\$"),  # math
    re.compile(r"\(\s*\*[^*()]+\*[^()]*\)"),  # "(*fine-tuning*, BPE)": the English gloss of a term
]
_WORD = re.compile(r"'n\b|[^\W\d_]+(?:'[a-z]+)?")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def prose(markdown: str) -> str:
    """The markdown's running text: code, links, tags, math and glossary glosses removed."""
    for pattern in _REMOVE:
        markdown = pattern.sub(" ", markdown)
    return markdown


def english_words(text: str, lang: str | None = None) -> tuple[int, int]:
    """(English function words, words) in the prose of ``text``."""
    words = [w.lower() for w in _WORD.findall(prose(text)) if not _CJK.match(w)]
    shared = SHARED.get(lang or "", frozenset())
    return sum(1 for w in words if w in ENGLISH and w not in shared), len(words)


def native_words(text: str, lang: str) -> int:
    """Evidence of ``lang`` in the prose: its function words, or for Chinese one per two characters."""
    body = prose(text)
    if lang.startswith("zh"):
        return len(_CJK.findall(body)) // 2
    native = NATIVE.get(lang, frozenset())
    return sum(1 for w in _WORD.findall(body) if w.lower() in native)


def looks_english(text: str, lang: str | None = None) -> bool:
    """Whether a paragraph reads as English rather than ``lang``.

    With a language: more English function words than words of that language (one is enough in a
    heading). Without: enough of its words are English function words.
    """
    hits, words = english_words(text, lang)
    if lang:
        return hits >= 1 and hits > native_words(text, lang)
    return (hits >= 2 and hits >= 0.12 * words) or (hits >= 4 and hits >= 0.06 * words)
