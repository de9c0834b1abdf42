"""Tests for the first-party SentencePiece plugin (llmkit_sentencepiece)."""

from __future__ import annotations

import pluggy
import pytest

from llmkit import hookspecs
from llmkit.errors import LLMKitError
from llmkit.testing.tokenizers import VARIED_TEXTS, BaseTokenizerTests

import llmkit_sentencepiece
from llmkit_sentencepiece import SentencePieceTokenizer
from tests.english_text import english_text

TEXT = english_text(seed=99, numbers=False)


@pytest.fixture(scope="module")
def bpe_model() -> SentencePieceTokenizer:
    return SentencePieceTokenizer.from_text(TEXT, vocab_size=1000)


@pytest.fixture(scope="module")
def unigram_model() -> SentencePieceTokenizer:
    return SentencePieceTokenizer.from_text(TEXT, vocab_size=700, model_type="unigram")


class TestSentencePieceBPEConformance(BaseTokenizerTests):
    @pytest.fixture
    def tokenizer(self, bpe_model):
        return bpe_model


class TestSentencePieceUnigramConformance(BaseTokenizerTests):
    @pytest.fixture
    def tokenizer(self, unigram_model):
        return unigram_model


def test_vocab_size_is_as_asked(bpe_model, unigram_model):
    assert bpe_model.n_vocab == 1000
    assert unigram_model.n_vocab == 700


@pytest.mark.parametrize("model", ["bpe_model", "unigram_model"])
def test_exact_round_trip_on_awkward_text(request, model):
    tok = request.getfixturevalue(model)
    awkward = VARIED_TEXTS + [
        "naïve café — 東京 🤖",  # characters never seen in training: byte fallback
        "\n\nstarts with newlines and ends with spaces   ",
        "tabs\t\tand\r\nwindows line ends\r\n",
        " ",
        "\u00a0non-breaking\u3000ideographic  ﬁ ligature (no NFKC)",
        "<|endoftext|><|endoftext|>",
    ]
    for text in awkward:
        assert tok.decode(tok.encode(text)) == text, repr(text)


def test_compresses_english(bpe_model):
    assert len(TEXT.encode("utf-8")) / len(bpe_model.encode(TEXT)) > 2


def test_several_special_tokens_are_single_ids():
    tok = SentencePieceTokenizer.from_text(TEXT[:8000], vocab_size=600, special_tokens=("<|endoftext|>", "<|pad|>"))
    for token in ("<|endoftext|>", "<|pad|>"):
        assert len(tok.encode(token)) == 1
    ids = tok.encode("a<|pad|>b<|endoftext|>")
    assert tok.decode(ids) == "a<|pad|>b<|endoftext|>"


def test_training_is_quiet(capfd):
    SentencePieceTokenizer.from_text(TEXT[:8000], vocab_size=600)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_save_is_model_proto_and_load_restores(bpe_model, tmp_path):
    path = tmp_path / "sp.model"
    bpe_model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["sp.model"]  # no temp file left behind
    assert path.read_bytes() == bpe_model.model_proto
    again = SentencePieceTokenizer.load(path)
    assert again.n_vocab == bpe_model.n_vocab
    assert again.encode(TEXT[:3000]) == bpe_model.encode(TEXT[:3000])


def test_plugin_registers_sentencepiece():
    pm = pluggy.PluginManager("llmkit")
    pm.add_hookspecs(hookspecs)
    pm.register(llmkit_sentencepiece, name="sentencepiece")
    registered = {}
    pm.hook.register_tokenizers(register=lambda name, factory, doc=None: registered.setdefault(name, factory))
    assert registered == {"sentencepiece": SentencePieceTokenizer}


# ---------------------------------------------------------------- bad input
def test_empty_text_is_refused():
    with pytest.raises(LLMKitError, match="non-empty"):
        SentencePieceTokenizer.from_text("", vocab_size=500)


def test_too_large_vocab_names_the_largest_workable_size():
    with pytest.raises(LLMKitError, match=r"vocab_size <= \d+") as info:
        SentencePieceTokenizer.from_text(TEXT, vocab_size=50_000)
    largest = int(info.value.args[0].split("vocab_size <= ")[1].split()[0])
    assert SentencePieceTokenizer.from_text(TEXT, vocab_size=largest).n_vocab == largest


def test_too_small_vocab_names_the_smallest_workable_size():
    with pytest.raises(LLMKitError, match=r"vocab_size >= \d+"):
        SentencePieceTokenizer.from_text(TEXT, vocab_size=100)


def test_unknown_model_type_is_refused():
    with pytest.raises(LLMKitError, match="bpe, unigram"):
        SentencePieceTokenizer.from_text(TEXT, model_type="wordpiece")


def test_loading_missing_or_foreign_file_is_refused(tmp_path):
    with pytest.raises(LLMKitError, match="check the path"):
        SentencePieceTokenizer.load(tmp_path / "absent.model")
    other = tmp_path / "other.model"
    other.write_bytes(b"this is not a protobuf")
    with pytest.raises(LLMKitError, match="SentencePieceTokenizer.save"):
        SentencePieceTokenizer.load(other)


@pytest.mark.parametrize("bad", [1000, -1])
def test_decode_out_of_range_is_refused(bpe_model, bad):
    with pytest.raises(LLMKitError, match=r"\[0, 1000\)"):
        bpe_model.decode([3, bad])
