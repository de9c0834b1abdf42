"""Stage 1: turning text into token ids and back.

``build_vocab`` is the book's word vocabulary (the regex split, sorted unique words, then the special
tokens); ``SimpleTokenizerV1/V2`` are the book's word-level tokenizers over such a ``vocab`` dict;
``CharTokenizer`` is the character-level one nanoGPT starts with (``stoi``/``itos``). Byte-level BPE
trained from scratch lives in ``bpe.py``; GPT-2's own BPE is ``llmkit.gpt2_bpe.GPT2Tokenizer``
(tiktoken, offline). These definitions are the answers of the stage-1 notebook, word for word.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from llmkit.errors import LLMKitError
from llmkit.io import atomic_write_text
from llmkit.tokenizers import WORD_SPLIT

# Spaces the book's join puts before punctuation are removed again on decode.
SPACE_BEFORE_PUNCT = r'\s+([,.?!"()\'])'
# The book's V2 also closes the space before ':' and ';'.
SPACE_BEFORE_PUNCT_V2 = r'\s+([,.:;?!"()\'])'


def read_json(path, kind: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LLMKitError(f"No {kind} file at {path}; check the path or save one with tokenizer.save(path).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise LLMKitError(f"{path} is not a {kind} file; load a file written by tokenizer.save(path).") from None


def check_vocab(vocab) -> None:
    if not isinstance(vocab, dict) or not vocab:
        raise LLMKitError(
            "The vocabulary is empty; build one from a text first, e.g. vocab = build_vocab(text)."
        )


def build_vocab(text, special_tokens=("<|endoftext|>", "<|unk|>")):
    """The book's word vocabulary: sorted unique words of ``text``, then the special tokens."""
    # Split on punctuation, "--" and whitespace; the capturing group keeps the punctuation as tokens.
    pieces = re.split(r'([,.:;?_!"()\']|--|\s)', text)
    words = [piece.strip() for piece in pieces if piece.strip()]
    tokens = sorted(set(words))
    if not tokens:
        raise LLMKitError("Cannot build a vocabulary from empty text; pass a text with at least one word.")
    tokens.extend(t for t in special_tokens if t not in tokens)
    return {token: i for i, token in enumerate(tokens)}


class SimpleTokenizerV1:
    """Word-level tokenizer: every word and punctuation mark must be in ``vocab``."""

    def __init__(self, vocab: dict[str, int]):
        check_vocab(vocab)
        self.str_to_int = vocab
        self.int_to_str = {i: s for s, i in vocab.items()}

    def split(self, text: str) -> list[str]:
        return [piece.strip() for piece in re.split(WORD_SPLIT, text) if piece.strip()]

    def encode(self, text: str) -> list[int]:
        ids = []
        for word in self.split(text):
            if word not in self.str_to_int:
                raise LLMKitError(
                    f"'{word}' is not in the vocabulary; add it, or use SimpleTokenizerV2, "
                    "which maps unknown words to <|unk|>."
                )
            ids.append(self.str_to_int[word])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        text = " ".join(self.int_to_str[int(i)] for i in ids)
        return re.sub(SPACE_BEFORE_PUNCT, r"\1", text)

    def save(self, path) -> None:
        atomic_write_text(path, json.dumps({"vocab": self.str_to_int}))

    @classmethod
    def load(cls, path):
        return cls(read_json(path, cls.__name__).get("vocab", {}))


class SimpleTokenizerV2(SimpleTokenizerV1):
    """Word-level tokenizer that maps unknown words to ``<|unk|>`` and knows ``<|endoftext|>``."""

    UNK = "<|unk|>"
    SPECIAL = ("<|endoftext|>", "<|unk|>")

    def __init__(self, vocab: dict[str, int]):
        check_vocab(vocab)
        missing = [t for t in self.SPECIAL if t not in vocab]
        if missing:
            raise LLMKitError(
                f"The vocabulary lacks {', '.join(missing)}; add them at the end, "
                "as build_vocab(text) does."
            )
        super().__init__(vocab)

    def split(self, text: str) -> list[str]:
        # Keep special tokens whole even when glued to a word ("end.<|endoftext|>Next").
        pieces = []
        for part in re.split(r"(<\|[a-z]+\|>)", text):
            pieces.extend([part] if part in self.str_to_int else super().split(part))
        return pieces

    def encode(self, text: str) -> list[int]:
        unk = self.str_to_int[self.UNK]
        return [self.str_to_int.get(word, unk) for word in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        text = " ".join(self.int_to_str[int(i)] for i in ids)
        return re.sub(SPACE_BEFORE_PUNCT_V2, r"\1", text)


class CharTokenizer:
    """Character-level tokenizer: one id per character, plus whole special tokens."""

    def __init__(self, chars: Iterable[str], special_tokens: Iterable[str] = ("<|endoftext|>",)):
        chars = set(chars)
        specials = [t for t in special_tokens if t not in chars]
        if not chars and not specials:
            raise LLMKitError("The character set is empty; build it from a text: CharTokenizer.from_text(text).")
        self.special_tokens = specials
        alphabet = sorted(chars)  # sorted, so the ids never depend on set order
        self.stoi = {ch: i for i, ch in enumerate(alphabet + specials)}
        self.itos = {i: ch for ch, i in self.stoi.items()}
        self.n_vocab = len(self.stoi)
        # Longest first, so one special token that contains another still wins.
        escaped = sorted(map(re.escape, specials), key=len, reverse=True)
        self._special_split = re.compile(f"({'|'.join(escaped)})") if specials else None

    @classmethod
    def from_text(cls, text: str, special_tokens: Iterable[str] = ("<|endoftext|>",)) -> "CharTokenizer":
        if not text:
            raise LLMKitError("Cannot build a character vocabulary from empty text; pass a non-empty text.")
        return cls(text, special_tokens)

    def encode(self, text: str) -> list[int]:
        parts = self._special_split.split(text) if self._special_split else [text]
        ids = []
        for part in parts:
            if part in self.special_tokens:
                ids.append(self.stoi[part])
                continue
            for ch in part:
                if ch not in self.stoi:
                    raise LLMKitError(
                        f"Character {ch!r} is not in the vocabulary; build the tokenizer from a text "
                        "that contains it."
                    )
                ids.append(self.stoi[ch])
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.itos[int(i)] for i in ids)

    def save(self, path) -> None:
        alphabet = [ch for ch in self.stoi if ch not in self.special_tokens]
        atomic_write_text(path, json.dumps({"chars": alphabet, "special_tokens": self.special_tokens}))

    @classmethod
    def load(cls, path) -> "CharTokenizer":
        payload = read_json(path, "CharTokenizer")
        return cls(payload.get("chars", []), payload.get("special_tokens", []))


__all__ = ["SimpleTokenizerV1", "SimpleTokenizerV2", "CharTokenizer", "build_vocab", "check_vocab", "read_json"]
