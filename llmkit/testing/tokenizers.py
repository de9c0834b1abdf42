"""Conformance suite for the ``tokenizers`` family.

Needs a ``tokenizer`` fixture. Tune with class attributes:

- ``lossless``: ``decode(encode(text)) == text`` for any text (byte-level BPE, char, sentencepiece with
  byte fallback...). Word-level tokenizers set it False and are checked on ``sample_text`` only.
- ``special_tokens``: strings that must each encode to exactly one id and decode back.
- ``sample_text``: a fixture; override it with text the tokenizer fully covers.
"""

from __future__ import annotations

import pytest

from llmkit.tokenizers import vocab_size

VARIED_TEXTS = [
    "Hello, world. This is a test!",
    "  leading spaces, trailing spaces  ",
    "line one\nline two\n\n\tindented line",
    "Numbers 12345 and 3.14159, symbols #@%&*()[]{}",
    "Don't stop; it's fine -- isn't it?",
]


class BaseTokenizerTests:
    lossless = True
    special_tokens: tuple[str, ...] = ("<|endoftext|>",)

    @pytest.fixture
    def sample_text(self) -> str:
        return "The quick brown fox jumps over the lazy dog. The dog sleeps, and the fox runs away."

    def test_round_trip_on_sample(self, tokenizer, sample_text):
        assert tokenizer.decode(tokenizer.encode(sample_text)) == sample_text

    def test_round_trip_on_varied_text(self, tokenizer, sample_text):
        if self.lossless:
            for text in VARIED_TEXTS:
                assert tokenizer.decode(tokenizer.encode(text)) == text, text
        else:
            # A lossy (word-level) tokenizer must at least be stable: ids -> text -> the same ids.
            ids = tokenizer.encode(sample_text)
            assert tokenizer.encode(tokenizer.decode(ids)) == ids

    def test_ids_are_ints_in_vocabulary(self, tokenizer, sample_text):
        ids = tokenizer.encode(sample_text)
        assert ids and all(isinstance(i, int) for i in ids)
        n = vocab_size(tokenizer)
        assert all(0 <= i < n for i in ids), f"ids must lie in [0, {n})"

    def test_ids_are_stable(self, tokenizer, sample_text):
        assert tokenizer.encode(sample_text) == tokenizer.encode(sample_text)

    def test_empty_text_gives_no_ids(self, tokenizer):
        assert list(tokenizer.encode("")) == []
        assert tokenizer.decode([]) == ""

    def test_special_tokens_are_single_ids(self, tokenizer):
        for token in self.special_tokens:
            ids = tokenizer.encode(f"before {token} after")
            single = tokenizer.encode(token)
            assert len(single) == 1, f"{token} must encode to one id, got {single}"
            assert single[0] in ids
            assert tokenizer.decode(single) == token

    def test_save_and_load_keep_ids(self, tokenizer, sample_text, tmp_path):
        if not hasattr(tokenizer, "save") or not hasattr(type(tokenizer), "load"):
            pytest.skip("tokenizer has no save/load")
        path = tmp_path / "tokenizer"
        tokenizer.save(path)
        again = type(tokenizer).load(path)
        assert again.encode(sample_text) == tokenizer.encode(sample_text)
        assert vocab_size(again) == vocab_size(tokenizer)
