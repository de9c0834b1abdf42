"""The kit's view of a tokenizer: anything with ``encode(text) -> list[int]`` and ``decode(ids) -> str``.

A tokenizer that must learn from text (char, BPE, sentencepiece, the book's word-level ones) is
built with ``build_tokenizer(name, text, **options)``: the kit calls the factory's ``from_text``
classmethod when it has one, builds the book's ``vocab`` dict when the factory asks for one (so a
student's ``SimpleTokenizerV2`` works unchanged), and otherwise calls the factory with the options.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from .errors import LLMKitError
from .plugins import get

# The book's chapter 2 split: punctuation and "--" become tokens, whitespace is dropped.
WORD_SPLIT = r'([,.:;?_!"()\']|--|\s)'


def words_of(text: str) -> list[str]:
    return [item.strip() for item in re.split(WORD_SPLIT, text) if item.strip()]


def build_vocab(text: str, special_tokens=("<|endoftext|>", "<|unk|>")) -> dict[str, int]:
    """The book's word vocabulary: sorted unique words of ``text``, then the special tokens."""
    tokens = sorted(set(words_of(text)))
    if not tokens:
        raise LLMKitError("Cannot build a vocabulary from empty text; pass a text with at least one word.")
    tokens.extend(t for t in special_tokens if t not in tokens)
    return {token: i for i, token in enumerate(tokens)}


def build_tokenizer(name: str, text: str | None = None, **options: Any):
    """Create the tokenizer registered as ``name``, training it on ``text`` when it needs one."""
    factory = get("tokenizers", name).factory
    from_text = getattr(factory, "from_text", None)
    if callable(from_text):
        if text is None:
            raise LLMKitError(f"Tokenizer '{name}' learns from text; pass the training text as text=...")
        return from_text(text, **options)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    if "vocab" in params and "vocab" not in options:
        if text is None:
            raise LLMKitError(f"Tokenizer '{name}' needs a vocabulary; pass text=... to build one from.")
        return factory(build_vocab(text), **options)
    return factory(**options)


def vocab_size(tokenizer) -> int:
    """Number of ids a tokenizer can produce (``n_vocab``, ``vocab_size`` or the book's ``str_to_int``)."""
    for attr in ("n_vocab", "vocab_size"):
        value = getattr(tokenizer, attr, None)
        if callable(value):
            value = value()
        if isinstance(value, int):
            return value
    table = getattr(tokenizer, "str_to_int", None)
    if isinstance(table, dict):
        return len(table)
    raise LLMKitError(
        f"Cannot tell the vocabulary size of {type(tokenizer).__name__}; give it an n_vocab attribute."
    )


def encode_text(tokenizer, text: str) -> list[int]:
    """Encode with ``<|endoftext|>`` allowed, whether the tokenizer is ours or a raw tiktoken Encoding."""
    try:
        import tiktoken
    except ImportError:  # pragma: no cover - tiktoken is a dependency
        tiktoken = None
    if tiktoken is not None and isinstance(tokenizer, tiktoken.Encoding):
        return tokenizer.encode(text, allowed_special={"<|endoftext|>"})
    return list(tokenizer.encode(text))
