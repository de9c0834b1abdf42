"""A character-level tokenizer, the one nanoGPT starts with: one id per character of the corpus.

Ids are the sorted alphabet of the training text, then the special tokens, so the same text always
gives the same ids. Special tokens (``<|endoftext|>``) are matched whole before the characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from llmkit.errors import LLMKitError
from llmkit.io import atomic_write_text


class CharTokenizer:
    """One id per character of the training text, plus whole special tokens (``<|endoftext|>``)."""

    def __init__(self, chars: Iterable[str], special_tokens: Iterable[str] = ("<|endoftext|>",)):
        alphabet = sorted(set(chars))
        self.special_tokens = [t for t in dict.fromkeys(special_tokens) if t not in alphabet]
        if not alphabet and not self.special_tokens:
            raise LLMKitError("The character set is empty; build the tokenizer from a text: CharTokenizer.from_text(text).")
        self.itos = alphabet + self.special_tokens  # id -> string
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.n_vocab = len(self.itos)
        self.eos_id = self.stoi["<|endoftext|>"] if "<|endoftext|>" in self.special_tokens else None
        # Longest first, so a special token that contains another one wins.
        specials = sorted(self.special_tokens, key=len, reverse=True)
        self._specials = re.compile("(" + "|".join(map(re.escape, specials)) + ")") if specials else None

    @classmethod
    def from_text(cls, text: str, special_tokens: Iterable[str] = ("<|endoftext|>",)) -> "CharTokenizer":
        if not text:
            raise LLMKitError("Cannot build a character vocabulary from empty text; pass a non-empty text.")
        return cls(text, special_tokens)

    def encode(self, text: str) -> list[int]:
        ids = []
        for part in self._specials.split(text) if self._specials else [text]:
            if part in self.special_tokens:
                ids.append(self.stoi[part])
                continue
            try:
                ids.extend(self.stoi[ch] for ch in part)
            except KeyError as exc:
                raise LLMKitError(f"Character {exc.args[0]!r} is not in the vocabulary; build the tokenizer "
                                  "from a text that contains it.") from None
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        ids = ids.tolist() if hasattr(ids, "tolist") else ids  # tensors too
        return "".join(self.itos[int(i)] for i in ids)

    def save(self, path) -> None:
        alphabet = self.itos[: self.n_vocab - len(self.special_tokens)]
        atomic_write_text(path, json.dumps({"chars": alphabet, "special_tokens": self.special_tokens}))

    @classmethod
    def load(cls, path) -> "CharTokenizer":
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(payload["chars"], payload["special_tokens"])
        except (OSError, ValueError, KeyError, TypeError):
            raise LLMKitError(f"{path} is not a saved character tokenizer; write one with tokenizer.save(path).") from None
