"""Text corpora: the one that ships with the kit, or a user's file, folder or glob; and a seeded split."""

from __future__ import annotations

import glob as globlib
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import LLMKitError

# Documents are joined with GPT-2's end-of-text marker so a model learns where one text stops.
DOC_SEPARATOR = "\n<|endoftext|>\n"
# builtin-story: one ~20 KB story, the text of the book's chapter-5 memorisation run (examples/).
BUILTIN_CORPORA = {"builtin": "corpus", "builtin-shift": "corpus_shift", "builtin-story": "story"}


@dataclass
class Corpus:
    name: str
    documents: list[str]

    @property
    def text(self) -> str:
        return DOC_SEPARATOR.join(self.documents)

    def __len__(self) -> int:
        return sum(len(d) for d in self.documents)


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LLMKitError(
            f"{path} is not UTF-8 (byte {exc.start}); convert it, e.g. iconv -f latin1 -t utf-8 {path} > fixed.txt."
        ) from None
    except OSError as exc:
        raise LLMKitError(f"Cannot read {path}: {exc.strerror}.") from None
    return text.strip()


def _files_of(source: str) -> list[Path]:
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.txt") if p.is_file())
    if any(ch in source for ch in "*?["):
        return sorted(Path(p) for p in globlib.glob(str(path), recursive=True) if Path(p).is_file())
    raise LLMKitError(f"No corpus at {source}; give a .txt file, a folder of .txt files, a glob, or 'builtin'.")


def load_corpus(source: str | None = "builtin") -> Corpus:
    """Read ``builtin`` (the kit's own corpus), ``builtin-shift``, ``builtin-story``, a .txt file, a folder or a glob."""
    source = source or "builtin"
    if source in BUILTIN_CORPORA:
        folder = resources.files("llmkit") / "data" / BUILTIN_CORPORA[source]
        files = sorted((p for p in folder.iterdir() if p.name.endswith(".txt")), key=lambda p: p.name)
        documents = [p.read_text(encoding="utf-8").strip() for p in files]
    else:
        files = _files_of(source)
        if not files:
            raise LLMKitError(f"{source} matches no .txt files; point it at text files.")
        documents = [_read_text(Path(p)) for p in files]
    documents = [d for d in documents if d]
    if not documents:
        raise LLMKitError(f"The corpus {source} is empty; give it some text.")
    return Corpus(source, documents)


def split_documents(corpus: Corpus, val_fraction: float = 0.1, seed: int = 123) -> tuple[str, str]:
    """Seeded train/validation split by paragraphs, so both halves sample every document.

    Paragraphs (blank-line separated) are shuffled with ``seed``; the first ones, up to
    ``val_fraction`` of the characters, go to validation; each half keeps the original order.
    """
    if not 0.0 < val_fraction < 1.0:
        raise LLMKitError(f"val_fraction must be between 0 and 1, got {val_fraction}.")
    paragraphs = [(d, p) for d, doc in enumerate(corpus.documents) for p in doc.split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        # One paragraph: split by characters as the book does (first 90% train).
        text = corpus.text
        cut = int(len(text) * (1 - val_fraction))
        return text[:cut], text[cut:]
    order = list(range(len(paragraphs)))
    random.Random(seed).shuffle(order)
    budget = val_fraction * sum(len(p) for _, p in paragraphs)
    val_ids, used = set(), 0
    for i in order:
        if used >= budget:
            break
        val_ids.add(i)
        used += len(paragraphs[i][1])

    def join(ids: list[int]) -> str:
        parts, last_doc = [], None
        for i in ids:
            doc, para = paragraphs[i]
            if last_doc is not None:
                parts.append(DOC_SEPARATOR if doc != last_doc else "\n\n")
            parts.append(para)
            last_doc = doc
        return "".join(parts)

    train = join([i for i in range(len(paragraphs)) if i not in val_ids])
    val = join(sorted(val_ids))
    return train, val
