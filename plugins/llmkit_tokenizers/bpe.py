"""Byte-level BPE trained on your corpus, the way GPT-2's was built: the kit's ``bpe`` tokenizer.

Text is split into pre-tokens with GPT-2's regex, each pre-token becomes its UTF-8 bytes (ids 0-255),
and training repeatedly fuses the most frequent adjacent pair of ids into a new id. Because every
string is a byte sequence, any text round-trips exactly. Special tokens such as ``<|endoftext|>``
get the ids after the merges and are never split.

Training is incremental rather than naive: unique pre-tokens are counted once, pair counts are kept
up to date, and each merge touches only the words that contain the merged pair. That is what makes
a 1,000-token vocabulary train in a fraction of a second instead of minutes. (The plain two-function
version, ``get_pair_counts`` and ``merge``, is what the stage-1 notebook has students write.)
"""

from __future__ import annotations

import heapq
import json
import os
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

import regex

from llmkit.errors import LLMKitError
from llmkit.io import atomic_write_text

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
FORMAT = "llmkit-bpe"
VERSION = 1
DEFAULT_SPECIALS = ("<|endoftext|>",)
Pair = tuple[int, int]


class BPETokenizer:
    """Byte-level BPE: ``BPETokenizer.from_text(text, vocab_size=1000)``, then ``encode``/``decode``.

    ``vocab_size`` counts the 256 bytes, the merges and the special tokens. If the text runs out of
    pairs to merge before reaching it (every pre-token already a single id), training stops early
    with the vocabulary the text supports, warns once, and records the size that was asked for in
    ``requested_vocab_size``; ``n_vocab`` then tells the real size.
    """

    def __init__(self) -> None:
        self.pattern: str = GPT2_PATTERN
        self.merges: dict[Pair, int] = {}  # insertion order is merge order; value is the new id
        self.special_tokens: dict[str, int] = {}
        self.requested_vocab_size: int | None = None
        self._rebuild()

    # ------------------------------------------------------------------ training
    @classmethod
    def from_text(cls, text: str, vocab_size: int = 1000,
                  special_tokens: Iterable[str] = DEFAULT_SPECIALS, show_progress: bool | None = None):
        return cls().train(text, vocab_size, special_tokens=special_tokens, show_progress=show_progress)

    def train(self, text: str, vocab_size: int, special_tokens: Iterable[str] = DEFAULT_SPECIALS,
              show_progress: bool | None = None) -> "BPETokenizer":
        specials = _check_specials(special_tokens)
        if not isinstance(text, str) or not text:
            raise LLMKitError("Cannot train BPE on empty text; pass a non-empty training text.")
        if not isinstance(vocab_size, int) or vocab_size < 256 + len(specials):
            raise LLMKitError(
                f"vocab_size={vocab_size!r} is too small: BPE needs 256 byte tokens plus {len(specials)} "
                f"special token(s); pass vocab_size >= {256 + len(specials)}."
            )
        n_merges = vocab_size - 256 - len(specials)

        # Special tokens are separators, not text to learn from.
        pieces = _split_specials(text, specials) if specials else [text]
        compiled = regex.compile(self.pattern)
        counts: Counter[str] = Counter()
        for piece in pieces:
            counts.update(compiled.findall(piece))
        if not counts:
            raise LLMKitError("Cannot train BPE on text made only of special tokens; pass ordinary text too.")

        words = [list(word.encode("utf-8")) for word in counts]
        freqs = list(counts.values())
        pair_counts: dict[Pair, int] = defaultdict(int)
        where: dict[Pair, set[int]] = defaultdict(set)  # pair -> words that may contain it
        for wi, word in enumerate(words):
            for pair in zip(word, word[1:]):
                pair_counts[pair] += freqs[wi]
                where[pair].add(wi)
        # Max-heap by count; ties go to the smaller pair, so training is deterministic. Entries go
        # stale when a count changes; they are skipped when popped (lazy deletion).
        heap = [(-c, pair) for pair, c in pair_counts.items()]
        heapq.heapify(heap)

        merges: dict[Pair, int] = {}
        steps = range(256, 256 + n_merges)
        if show_progress or (show_progress is None and n_merges > 2000):
            from tqdm.auto import tqdm

            steps = tqdm(steps, desc="BPE merges", unit="merge")
        for new_id in steps:
            pair = _pop_best(heap, pair_counts)
            if pair is None:
                break  # every pre-token is a single id: the text supports no more merges
            merges[pair] = new_id
            _apply_merge(pair, new_id, words, freqs, pair_counts, where, heap)
        if hasattr(steps, "close"):
            steps.close()

        self.merges = merges
        self.special_tokens = {s: 256 + len(merges) + i for i, s in enumerate(specials)}
        self.requested_vocab_size = vocab_size
        self._rebuild()
        if self.n_vocab < vocab_size:
            warnings.warn(
                f"The training text supports only {self.n_vocab} BPE tokens, not vocab_size={vocab_size}; "
                "train on more text for a larger vocabulary.",
                stacklevel=2,
            )
        return self

    # ------------------------------------------------------------------ encoding
    def encode(self, text: str, allowed_special: str | set[str] | frozenset[str] = "all") -> list[int]:
        if allowed_special == "all":
            allowed = set(self.special_tokens)
        elif allowed_special == "none":
            allowed = set()
        elif isinstance(allowed_special, (set, frozenset, list, tuple)):
            allowed = set(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise LLMKitError(
                    f"allowed_special names unknown token(s) {sorted(unknown)}; "
                    f"choose among {sorted(self.special_tokens)}, or pass 'all' or 'none'."
                )
        else:
            raise LLMKitError(f"allowed_special={allowed_special!r} is not valid; pass 'all', 'none' or a set.")

        ids: list[int] = []
        pieces = _split_specials(text, sorted(allowed), keep=True) if allowed else [text]
        for piece in pieces:
            if piece in allowed:
                ids.append(self.special_tokens[piece])
                continue
            for chunk in self._compiled.findall(piece):
                cached = self._cache.get(chunk)
                if cached is None:
                    cached = self._encode_chunk(chunk.encode("utf-8"))
                    if len(self._cache) < 200_000:  # bound memory on huge, varied corpora
                        self._cache[chunk] = cached
                ids.extend(cached)
        return ids

    def _encode_chunk(self, data: bytes) -> list[int]:
        ids = list(data)
        ranks = self.merges  # new ids grow with merge order, so the id is the rank
        while len(ids) > 1:
            best = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, _NEVER))
            new_id = ranks.get(best)
            if new_id is None:
                break
            ids = _merge(ids, best, new_id)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        vocab = self.vocab
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)  # accept tensors and arrays too
        try:
            data = b"".join(vocab[i] for i in ids)
        except (KeyError, TypeError):
            bad = next((i for i in ids if not isinstance(i, int) or i not in vocab), None)
            raise LLMKitError(
                f"Cannot decode id {bad!r}: ids must be ints in [0, {self.n_vocab}); "
                "decode only ids this tokenizer produced."
            ) from None
        return data.decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write one JSON file (merges, special tokens, pattern, version); atomic, so never half-written."""
        path = Path(path)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "pattern": self.pattern,
            "merges": [list(pair) for pair in self.merges],  # the i-th merge creates id 256 + i
            "special_tokens": list(self.special_tokens),
            "requested_vocab_size": self.requested_vocab_size,
        }
        atomic_write_text(path, json.dumps(payload))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        path = Path(path)
        if not path.is_file():
            raise LLMKitError(f"No BPE tokenizer file at {path}; check the path or save one with tokenizer.save(path).")
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("format") != FORMAT or payload.get("version") != VERSION:
                raise ValueError("wrong format")
            merges = [tuple(int(x) for x in pair) for pair in payload["merges"]]
            specials = _check_specials(payload["special_tokens"])
            pattern = str(payload["pattern"])
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            raise LLMKitError(
                f"{path} is not an llmkit BPE tokenizer file (version {VERSION}); "
                "load a file written by BPETokenizer.save."
            ) from None
        tok = cls()
        tok.pattern = pattern
        tok.merges = {}
        for i, (a, b) in enumerate(merges):
            if not (0 <= a < 256 + i and 0 <= b < 256 + i):
                raise LLMKitError(f"{path} has a corrupt merge list; re-save the tokenizer with BPETokenizer.save.")
            tok.merges[(a, b)] = 256 + i
        tok.special_tokens = {s: 256 + len(merges) + i for i, s in enumerate(specials)}
        tok.requested_vocab_size = payload.get("requested_vocab_size")
        tok._rebuild()
        return tok

    # ------------------------------------------------------------------ helpers
    def _rebuild(self) -> None:
        """Derive the id -> bytes table, the compiled pattern and a fresh chunk cache."""
        vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in self.merges.items():
            vocab[new_id] = vocab[a] + vocab[b]
        for token, i in self.special_tokens.items():
            vocab[i] = token.encode("utf-8")
        self.vocab: dict[int, bytes] = vocab
        self.n_vocab: int = len(vocab)
        self._compiled = regex.compile(self.pattern)
        self._cache: dict[str, list[int]] = {}

    def __repr__(self) -> str:
        return f"BPETokenizer(n_vocab={self.n_vocab}, merges={len(self.merges)}, special={list(self.special_tokens)})"


_NEVER = float("inf")


def _check_specials(special_tokens: Iterable[str]) -> list[str]:
    if isinstance(special_tokens, str):
        special_tokens = (special_tokens,)
    specials = list(special_tokens or ())
    if any(not isinstance(s, str) or not s for s in specials) or len(set(specials)) != len(specials):
        raise LLMKitError("special_tokens must be distinct non-empty strings, e.g. ('<|endoftext|>',).")
    return specials


def _split_specials(text: str, specials: Iterable[str], keep: bool = False) -> list[str]:
    # Longest first, so a special token that contains another one wins.
    alternatives = "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))
    pattern = f"({alternatives})" if keep else alternatives
    return [p for p in regex.split(pattern, text) if p]


def _merge(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """``ids`` with each non-overlapping ``pair``, left to right, replaced by ``new_id``."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _pop_best(heap: list, pair_counts: dict[Pair, int]) -> Pair | None:
    while heap:
        neg, pair = heapq.heappop(heap)
        if pair_counts.get(pair, 0) == -neg and neg < 0:
            return pair
    return None


def _apply_merge(pair: Pair, new_id: int, words: list[list[int]], freqs: list[int],
                 pair_counts: dict[Pair, int], where: dict[Pair, set[int]], heap: list) -> None:
    """Merge ``pair`` in every word holding it, updating counts and the index for those words only."""
    before: dict[Pair, int] = {}  # count of each touched pair before this merge
    for wi in where.pop(pair, ()):
        word = words[wi]
        new_word = _merge(word, pair, new_id)
        if len(new_word) == len(word):
            continue  # stale index entry: an earlier merge already consumed this pair here
        f = freqs[wi]
        # Subtracting every old pair and adding every new one is simpler than patching neighbours,
        # and cheap because pre-tokens are short.
        for p in zip(word, word[1:]):
            before.setdefault(p, pair_counts[p])
            pair_counts[p] -= f
        for p in zip(new_word, new_word[1:]):
            before.setdefault(p, pair_counts.get(p, 0))
            pair_counts[p] += f
            where[p].add(wi)
        words[wi] = new_word
    # A pair whose count is unchanged already has a valid heap entry; push only the others.
    for p, old in before.items():
        c = pair_counts[p]
        if c <= 0:
            del pair_counts[p]
        elif c != old:
            heapq.heappush(heap, (-c, p))
