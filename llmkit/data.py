"""Data files: text corpora (the kit's or a user's file, folder or glob) with a seeded split, and the
readers of the fine-tuning sets (SMS spam, Alpaca-style instructions)."""

from __future__ import annotations

import csv
import glob as globlib
import io
import json
import random
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import LLMKitError
from .io import atomic_write_text

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


# --------------------------------------------------------------------------- windows of a token stream


def window_starts(n_tokens: int, max_length: int, stride: int) -> range:
    """Where the (input, target) windows of ``max_length`` ids start, one every ``stride`` ids.

    A window starting at ``s`` needs ``s + max_length + 1 <= n_tokens``: its target is one id later.
    """
    if max_length <= 0:
        raise LLMKitError(f"max_length must be positive, got {max_length}.")
    if stride <= 0:
        raise LLMKitError(f"stride must be positive, got {stride}; use stride=max_length for no overlap.")
    if n_tokens < max_length + 1:
        raise LLMKitError(f"The text has {n_tokens} tokens but one training pair needs max_length + 1 = "
                          f"{max_length + 1}; use a longer text or a smaller max_length.")
    return range(0, n_tokens - max_length, stride)


# --------------------------------------------------------------------------- fine-tuning data files
#
# Readers only: turning these rows into datasets and batches is llmkit.finetune_data's job (and the
# course's exercises). The stage-8 and stage-9 notebooks call these readers too.

SPAM_LABELS = {"ham": 0, "spam": 1}  # the book's mapping
UCI_MEMBER = "SMSSpamCollection"


def shipped_messages_path() -> Path:
    """The kit's own small spam/ham set: ``llmkit/data/spam/messages.tsv`` (``label\\ttext`` + header)."""
    return Path(str(resources.files("llmkit") / "data" / "spam" / "messages.tsv"))


def shipped_instructions_path() -> Path:
    """The kit's own small instruction set: ``llmkit/data/instructions/instructions.json``."""
    return Path(str(resources.files("llmkit") / "data" / "instructions" / "instructions.json"))


def label_id(raw, where: str) -> int:
    """'ham'/'spam' or '0'/'1' (any case, surrounding spaces ignored) -> 0/1."""
    value = str(raw).strip().lower()
    if value in SPAM_LABELS:
        return SPAM_LABELS[value]
    if value in ("0", "1"):
        return int(value)
    raise LLMKitError(f"bad label {str(raw).strip()!r} at {where}; every label must be ham/spam (or 0/1).")


def _decode_bytes(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # the UCI file predates UTF-8 everywhere
        return data.decode("latin-1")


def _tab_rows(text: str, source: str) -> list[tuple[str, str]]:
    """``label<TAB>text`` lines, with or without a ``label\\ttext`` header -> [(label, text)]."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        label, tab, message = line.partition("\t")
        if lineno == 1 and label.strip().lower() == "label":
            continue  # the kit's header line
        if not tab:
            raise LLMKitError(f"line {lineno} of {source} has no tab; each line must be label<TAB>text.")
        rows.append(("spam" if label_id(label, f"line {lineno} of {source}") else "ham", message))
    return rows


def load_sms_spam_collection(path=None) -> list[tuple[str, str]]:
    """Read the SMS Spam Collection as ``[(label, text)]`` with labels "ham"/"spam".

    ``path`` may be UCI's ``sms+spam+collection.zip``, the ``SMSSpamCollection`` file extracted from
    it (``label\\ttext``, no header), or a ``.tsv`` with a ``label\\ttext`` header such as the kit's
    shipped ``messages.tsv`` (the default when ``path`` is None).
    """
    path = Path(path) if path is not None else shipped_messages_path()
    if not path.exists():
        raise LLMKitError(f"{path} does not exist; pass the path of SMSSpamCollection, its zip, or a label\\ttext .tsv.")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            member = next((n for n in archive.namelist() if Path(n).name == UCI_MEMBER), None)
            if member is None:
                raise LLMKitError(f"{path} holds no {UCI_MEMBER} file; download UCI's sms+spam+collection.zip again.")
            text = archive.read(member).decode("utf-8", errors="replace")
        return _tab_rows(text, f"{path}:{member}")
    return _tab_rows(_decode_bytes(path), str(path))


def read_labeled_file(path) -> list[tuple[int, str]]:
    """A ``.csv`` with columns ``Text`` and ``Label`` (the book's split files), or a ``.tsv``/UCI file.

    Returns ``[(label_id, text)]`` with label ids 0 (ham) and 1 (spam).
    """
    path = Path(path)
    if path.suffix.lower() != ".csv":
        return [(SPAM_LABELS[label], text) for label, text in load_sms_spam_collection(path)]
    if not path.exists():
        raise LLMKitError(f"{path} does not exist; write the splits first with save_split_csv(rows, path).")
    reader = csv.DictReader(io.StringIO(_decode_bytes(path)))
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "text" not in columns or "label" not in columns:
        raise LLMKitError(f"{path} needs the columns Text and Label; it has: {', '.join(reader.fieldnames or [])}.")
    # Line 1 is the header.
    return [(label_id(record[columns["label"]], f"line {lineno} of {path}"), record[columns["text"]])
            for lineno, record in enumerate(reader, start=2)]


def save_split_csv(rows, path) -> Path:
    """Write ``[(label, text)]`` as the book's CSV: header ``Label,Text``, labels 0/1."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Label", "Text"])
    for i, (label, text) in enumerate(rows):
        writer.writerow([label_id(label, f"row {i}"), text])
    return atomic_write_text(path, buffer.getvalue())


def load_instruction_json(path=None) -> list[dict]:
    """Read and check a JSON list of ``{"instruction", "input", "output"}`` entries (default: the kit's)."""
    path = Path(path) if path is not None else shipped_instructions_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LLMKitError(f"{path} does not exist; pass the path of a JSON list of instruction entries.") from None
    except json.JSONDecodeError as exc:
        raise LLMKitError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                          "fix the file.") from None
    if not isinstance(data, list):
        raise LLMKitError(f"{path} holds a {type(data).__name__}, not a list; the file must be a JSON list of entries.")
    needs = "every entry needs instruction, input (may be empty) and output"
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise LLMKitError(f"entry {i} in {path} is a {type(entry).__name__}, not an object; {needs}")
        for key in ("instruction", "output"):
            if key not in entry:
                raise LLMKitError(f"entry {i} in {path} lacks '{key}'; {needs}")
        for key in ("instruction", "input", "output"):
            if key in entry and not isinstance(entry[key], str):
                raise LLMKitError(f"entry {i} in {path} has a non-text '{key}' ({type(entry[key]).__name__}); "
                                  "instruction, input and output must be strings")
        entry.setdefault("input", "")
    return data
