"""BERT's WordPiece tokenizer, read from a checkpoint's ``vocab.txt`` or ``tokenizer.json``.

Two passes, as BERT defines them:

1. basic: drop control characters, put spaces around CJK ideographs, lowercase and strip accents
   (uncased models), split on whitespace, then make every punctuation character its own word;
2. wordpiece: greedy longest match from the left against the vocabulary, continuation pieces
   written ``##piece``; a word that cannot be covered (or is over 100 characters) becomes ``[UNK]``.

Special tokens (``[CLS]``, ``[SEP]``, ``[MASK]``, ``[PAD]``, ``[UNK]``) are matched whole before
either pass, and their ids come by role (``tok.mask_id``, ``tok.special_id("cls")``):
``llmkit.special_tokens.SpecialTokensMixin``. ``encode`` adds nothing; ``with_cls_sep(ids)`` makes a
model input, as ``transformers``' ``tokenizer(text)`` does.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Iterable

from llmkit.errors import LLMKitError
from llmkit.io import atomic_write_text
from llmkit.special_tokens import BERT_TOKENS, SpecialTokensMixin, split_specials

MAX_WORD_CHARS = 100


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:  # all ASCII non-letters/digits
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                             (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                             (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
            continue
        if ch in "\t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def basic_words(text: str, lowercase: bool = True) -> list[str]:
    """Pass 1: cleaned, lowercased and accent-stripped (when ``lowercase``), split on spaces and punctuation."""
    words = []
    for word in _clean(text).split():
        if lowercase:
            word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                words += [current, ch] if current else [ch]
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


class WordPieceTokenizer(SpecialTokensMixin):
    """BERT's WordPiece: ``WordPieceTokenizer.from_pretrained(folder)`` reads vocab.txt or tokenizer.json."""

    def __init__(self, vocab: Iterable[str], lowercase: bool = True, roles: dict | None = None):
        self.itos = list(vocab)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise LLMKitError("the WordPiece vocabulary repeats a token; use the checkpoint's own vocab.txt.")
        self.lowercase = lowercase
        self.n_vocab = len(self.itos)
        self.special_roles = {r: t for r, t in (roles or BERT_TOKENS).items() if t in self.stoi}
        if "unk" not in self.special_roles:
            raise LLMKitError("the WordPiece vocabulary has no [UNK]; use the checkpoint's own vocab.txt.")
        self.special_tokens = {t: self.stoi[t] for t in self.special_roles.values()}
        self.eos_id = self.pad_id  # what pads a fine-tuning batch (the kit reads eos_id for that)

    @classmethod
    def from_pretrained(cls, folder) -> "WordPieceTokenizer":
        folder = Path(folder)
        config = folder / "tokenizer_config.json"
        lowercase = json.loads(config.read_text()).get("do_lower_case", True) if config.is_file() else True
        if (folder / "vocab.txt").is_file():
            return cls((folder / "vocab.txt").read_text(encoding="utf-8").splitlines(), lowercase)
        if (folder / "tokenizer.json").is_file():
            model = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["model"]
            if model.get("type") != "WordPiece":
                raise LLMKitError(f"{folder}/tokenizer.json holds a {model.get('type')} tokenizer, not WordPiece.")
            vocab = sorted(model["vocab"], key=model["vocab"].get)
            return cls(vocab, lowercase)
        raise LLMKitError(f"{folder} has neither vocab.txt nor tokenizer.json; point at a BERT checkpoint folder.")

    def _pieces(self, word: str) -> list[int]:
        if len(word) > MAX_WORD_CHARS:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.stoi:
                    break
                end -= 1
            if end == start:
                return [self.unk_id]  # BERT: the whole word is unknown
            ids.append(self.stoi[piece])
            start = end
        return ids

    def encode(self, text: str) -> list[int]:
        ids = []
        for part in split_specials(text, self.special_tokens):
            if part in self.special_tokens:
                ids.append(self.special_tokens[part])
            else:
                for word in basic_words(part, self.lowercase):
                    ids += self._pieces(word)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else ids
        text = " ".join(self.itos[int(i)] for i in ids)
        return text.replace(" ##", "").replace("##", "")

    def save(self, path) -> None:
        atomic_write_text(path, json.dumps({"format": "llmkit-wordpiece", "vocab": self.itos,
                                            "lowercase": self.lowercase, "roles": self.special_roles}))

    @classmethod
    def load(cls, path) -> "WordPieceTokenizer":
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            assert payload["format"] == "llmkit-wordpiece"
            return cls(payload["vocab"], payload["lowercase"], payload["roles"])
        except (OSError, ValueError, KeyError, TypeError, AssertionError):
            raise LLMKitError(f"{path} is not a saved WordPiece tokenizer; write one with tokenizer.save(path).") from None

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(n_vocab={self.n_vocab}, lowercase={self.lowercase})"
