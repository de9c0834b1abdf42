"""Tests for the kit's byte-level BPE (plugins/llmkit_tokenizers/bpe.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import regex

from llmkit.errors import LLMKitError
from llmkit.testing.tokenizers import BaseTokenizerTests
from llmkit_tokenizers.bpe import GPT2_PATTERN, BPETokenizer

from tests.english_text import english_text

TEXT = english_text()


@pytest.fixture(scope="module")
def trained() -> BPETokenizer:
    return BPETokenizer.from_text(TEXT, vocab_size=1000)


class TestBPEConformance(BaseTokenizerTests):
    @pytest.fixture
    def tokenizer(self, trained):
        return trained


def naive_merges(text: str, n_merges: int) -> list[tuple[int, int]]:
    """Textbook BPE: recount every pair after every merge. Slow, obviously right."""
    words = Counter(regex.findall(GPT2_PATTERN, text))
    seqs = {w: list(w.encode("utf-8")) for w in words}
    merges = []
    for k in range(n_merges):
        counts: Counter = Counter()
        for w, f in words.items():
            for pair in zip(seqs[w], seqs[w][1:]):
                counts[pair] += f
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        for w, ids in seqs.items():
            out, i = [], 0
            while i < len(ids):
                if ids[i : i + 2] == list(best):
                    out.append(256 + k)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            seqs[w] = out
    return merges


def test_vocab_size_is_exactly_as_asked(trained):
    assert len(TEXT.encode("utf-8")) >= 20_000
    assert trained.n_vocab == 1000
    assert len(trained.vocab) == 1000
    assert len(trained.merges) == 1000 - 256 - 1
    assert list(trained.merges.values()) == list(range(256, 999))
    assert trained.special_tokens == {"<|endoftext|>": 999}


def test_first_merges_are_frequent_english_pairs(trained):
    first = [trained.vocab[i] for i in range(256, 266)]
    assert first[0] in {b" t", b"th", b"he", b"e ", b" a", b"in", b"s ", b"d "}
    assert b" t" in first and b"he" in first
    assert b" the" in [trained.vocab[i] for i in range(256, 300)]


def test_incremental_training_matches_naive_bpe():
    text = TEXT[:3000]
    fast = BPETokenizer().train(text, vocab_size=256 + 120, special_tokens=())
    assert list(fast.merges) == naive_merges(text, 120)


def test_training_is_deterministic(trained):
    again = BPETokenizer.from_text(TEXT, vocab_size=1000)
    assert list(again.merges.items()) == list(trained.merges.items())


def test_encode_applies_merges_in_order(trained):
    # Definition of BPE encoding: apply every merge, in training order, to the chunk's bytes.
    for chunk in regex.findall(GPT2_PATTERN, "The unbelievable river-boat, 1999 miles; thinking...")[:8]:
        ids = list(chunk.encode("utf-8"))
        for (a, b), new_id in trained.merges.items():
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
                    out.append(new_id)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        assert trained.encode(chunk) == ids, chunk


def test_compression(trained):
    for text in [TEXT, "Hello, world!", "   \n\t", "zzzz qqqq xxxx"]:
        assert len(trained.encode(text)) <= len(text.encode("utf-8"))
    assert len(TEXT.encode("utf-8")) / len(trained.encode(TEXT)) > 2


def test_non_ascii_round_trips(trained):
    for text in ["naïve café — 東京", "emoji 🤖 and ß", "\u00a0nbsp\u3000ideographic space", "a\r\nb"]:
        ids = trained.encode(text)
        assert trained.decode(ids) == text
        assert len(ids) <= len(text.encode("utf-8"))


def test_special_tokens(trained):
    eot = trained.special_tokens["<|endoftext|>"]
    assert trained.encode("a<|endoftext|>b").count(eot) == 1
    as_text = trained.encode("<|endoftext|>", allowed_special="none")
    assert len(as_text) > 1 and eot not in as_text
    assert trained.decode(as_text) == "<|endoftext|>"
    assert trained.encode("<|endoftext|>", allowed_special={"<|endoftext|>"}) == [eot]
    assert trained.encode("<|endoftext|>", allowed_special=set()) == as_text
    with pytest.raises(LLMKitError, match="allowed_special"):
        trained.encode("x", allowed_special={"<|nope|>"})


def test_several_special_tokens_follow_the_merges():
    tok = BPETokenizer.from_text(TEXT[:4000], vocab_size=400, special_tokens=("<|endoftext|>", "<|pad|>"))
    assert tok.n_vocab == 400
    assert tok.special_tokens == {"<|endoftext|>": 398, "<|pad|>": 399}
    assert tok.encode("<|pad|><|endoftext|>") == [399, 398]
    # A special token in the training text is a separator, never learned as ordinary bytes.
    with pytest.warns(UserWarning):  # this tiny text supports only a few merges
        tok2 = BPETokenizer.from_text(("word <|endoftext|>" * 200), vocab_size=300)
    assert all(b"<|" not in v and b"|>" not in v for i, v in tok2.vocab.items() if i < 256 + len(tok2.merges))


def test_decode_accepts_tensors(trained):
    torch = pytest.importorskip("torch")
    ids = trained.encode("Hello there")
    assert trained.decode(torch.tensor(ids)) == "Hello there"


def test_save_writes_one_json_file_and_load_restores(trained, tmp_path):
    path = tmp_path / "bpe.json"
    trained.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["bpe.json"]  # no temp file left behind
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert {"format", "version", "pattern", "merges", "special_tokens"} <= payload.keys()
    again = BPETokenizer.load(path)
    assert list(again.merges.items()) == list(trained.merges.items())
    assert again.special_tokens == trained.special_tokens
    assert again.encode(TEXT[:2000]) == trained.encode(TEXT[:2000])
    trained.save(path)  # overwriting works too
    assert BPETokenizer.load(path).n_vocab == 1000


def test_progress_bar_can_be_forced(capsys):
    tok = BPETokenizer().train(TEXT[:2000], vocab_size=300, show_progress=True)
    assert tok.n_vocab == 300


# ---------------------------------------------------------------- bad input
def test_empty_text_is_refused():
    with pytest.raises(LLMKitError, match="non-empty"):
        BPETokenizer.from_text("", vocab_size=300)
    with pytest.raises(LLMKitError, match="ordinary text"):
        BPETokenizer.from_text("<|endoftext|>", vocab_size=300)


@pytest.mark.parametrize("size", [0, 200, 256, "1000"])
def test_too_small_vocab_is_refused(size):
    with pytest.raises(LLMKitError, match="vocab_size >= 257"):
        BPETokenizer.from_text(TEXT, vocab_size=size)


def test_bad_special_tokens_are_refused():
    with pytest.raises(LLMKitError, match="distinct non-empty"):
        BPETokenizer.from_text(TEXT, vocab_size=300, special_tokens=("<a>", "<a>"))


def test_too_large_vocab_stops_early_and_warns():
    with pytest.warns(UserWarning, match="train on more text"):
        tok = BPETokenizer.from_text("hello hello world", vocab_size=1000)
    assert tok.n_vocab < 1000
    assert tok.requested_vocab_size == 1000
    assert tok.decode(tok.encode("hello world, new words")) == "hello world, new words"
    assert tok.encode("<|endoftext|>") == [tok.n_vocab - 1]


def test_loading_a_missing_file_is_refused(tmp_path):
    with pytest.raises(LLMKitError, match="check the path"):
        BPETokenizer.load(tmp_path / "absent.json")


@pytest.mark.parametrize("content", ["not json at all", '{"format": "something-else"}', "[1, 2]",
                                     '{"format": "llmkit-bpe", "version": 1, "pattern": "x", '
                                     '"merges": [[5, 900]], "special_tokens": []}'])
def test_loading_a_foreign_file_is_refused(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LLMKitError, match="BPETokenizer.save"):
        BPETokenizer.load(path)


@pytest.mark.parametrize("bad", [1000, -1, 10**9, "a"])
def test_decode_out_of_range_is_refused(trained, bad):
    with pytest.raises(LLMKitError, match=r"\[0, 1000\)"):
        trained.decode([1, 2, bad])
