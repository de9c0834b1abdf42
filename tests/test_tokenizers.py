"""Stage 1 tokenizers: the conformance suite for each, plus the book's behaviour and errors."""

import socket

import pytest

import llmkit
from llmkit.errors import LLMKitError
from llmkit.gpt2_bpe import GPT2Tokenizer, gpt2_encoding
from llmkit.testing.tokenizers import VARIED_TEXTS, BaseTokenizerTests
from llmkit.tokenizers import build_tokenizer, build_vocab, vocab_size
from llmkit_solutions.tokenization import CharTokenizer, SimpleTokenizerV1, SimpleTokenizerV2
from llmkit_tokenizers import CharTokenizer as KitCharTokenizer

BOOK_TEXT = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
BOOK_IDS = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114, 286, 617,
            34680, 27271, 13]
TRAINING_TEXT = "The quick brown fox jumps over the lazy dog. The dog sleeps, and the fox runs away."


class TestGPT2Conformance(BaseTokenizerTests):
    @pytest.fixture
    def tokenizer(self):
        return GPT2Tokenizer()


class TestCharConformance(BaseTokenizerTests):
    @pytest.fixture
    def tokenizer(self):
        return llmkit.get("tokenizers", "char").factory.from_text(TRAINING_TEXT + "".join(VARIED_TEXTS))


class TestBookCharConformance(BaseTokenizerTests):
    @pytest.fixture
    def tokenizer(self):
        return llmkit.get("tokenizers", "char-book").factory.from_text(TRAINING_TEXT + "".join(VARIED_TEXTS))


def test_the_kits_char_tokenizer_gives_the_books_ids():
    text = TRAINING_TEXT + "<|endoftext|>" + "".join(VARIED_TEXTS)
    kit, book = KitCharTokenizer.from_text(text), CharTokenizer.from_text(text)
    assert kit.encode(text) == book.encode(text) and kit.n_vocab == book.n_vocab
    assert kit.eos_id == book.encode("<|endoftext|>")[0]


class TestSimpleV2Conformance(BaseTokenizerTests):
    lossless = False
    special_tokens = ("<|endoftext|>", "<|unk|>")

    @pytest.fixture
    def tokenizer(self):
        return SimpleTokenizerV2(build_vocab(TRAINING_TEXT))

    def test_empty_text_gives_no_ids(self, tokenizer):
        assert tokenizer.encode("") == []


class TestSimpleV1Conformance(BaseTokenizerTests):
    lossless = False
    special_tokens = ()

    @pytest.fixture
    def tokenizer(self):
        return SimpleTokenizerV1(build_vocab(TRAINING_TEXT, special_tokens=()))


def test_gpt2_ids_match_the_book_with_the_network_disabled(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the GPT-2 tokenizer tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    gpt2_encoding.cache_clear()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the package's files, not a cached copy
    encoding = gpt2_encoding()
    assert encoding.n_vocab == 50257
    assert encoding.encode(BOOK_TEXT, allowed_special={"<|endoftext|>"}) == BOOK_IDS
    assert GPT2Tokenizer().decode(BOOK_IDS) == BOOK_TEXT
    gpt2_encoding.cache_clear()


def test_simple_tokenizer_v1_decodes_like_the_book():
    vocab = build_vocab('"It\'s the last he painted, you know," Mrs. Gisburn said with pardonable pride.')
    tokenizer = SimpleTokenizerV1(vocab)
    text = '"It\'s the last he painted, you know," Mrs. Gisburn said with pardonable pride.'
    assert tokenizer.decode(tokenizer.encode(text)) == (
        '" It\' s the last he painted, you know," Mrs. Gisburn said with pardonable pride.'
    )


def test_simple_tokenizer_v1_names_the_unknown_word_and_the_fix():
    tokenizer = SimpleTokenizerV1(build_vocab("the cat sat"))
    with pytest.raises(LLMKitError, match="'dog' is not in the vocabulary.*SimpleTokenizerV2"):
        tokenizer.encode("the dog sat")


def test_simple_tokenizer_v2_maps_unknown_words_and_keeps_endoftext():
    vocab = build_vocab(TRAINING_TEXT)
    tokenizer = SimpleTokenizerV2(vocab)
    ids = tokenizer.encode("Hello, the dog. <|endoftext|> the cat")
    assert ids[0] == vocab["<|unk|>"] and vocab["<|endoftext|>"] in ids
    assert tokenizer.decode(ids) == "<|unk|>, the dog. <|endoftext|> the <|unk|>"
    assert list(vocab)[-2:] == ["<|endoftext|>", "<|unk|>"]


@pytest.mark.parametrize("make", [lambda: SimpleTokenizerV1({}), lambda: SimpleTokenizerV2({}),
                                  lambda: build_vocab("  "), lambda: CharTokenizer.from_text("")])
def test_an_empty_vocabulary_is_one_clear_line(make):
    with pytest.raises(LLMKitError) as err:
        make()
    assert "empty" in str(err.value) and "\n" not in str(err.value)


def test_simple_tokenizer_v2_requires_its_special_tokens():
    with pytest.raises(LLMKitError, match="lacks <\\|endoftext\\|>, <\\|unk\\|>"):
        SimpleTokenizerV2({"a": 0})


def test_char_tokenizer_has_stoi_itos_and_refuses_unseen_characters():
    tokenizer = CharTokenizer.from_text("hello")
    assert tokenizer.stoi == {"e": 0, "h": 1, "l": 2, "o": 3, "<|endoftext|>": 4}
    assert tokenizer.itos[2] == "l"
    with pytest.raises(LLMKitError, match="'z' is not in the vocabulary"):
        tokenizer.encode("hz")


@pytest.mark.parametrize("name", ["gpt2", "bpe", "char", "char-book", "simple-v1", "simple-v2", "sentencepiece"])
def test_every_registered_tokenizer_builds_from_text_by_name(name):
    options = {"vocab_size": 300} if name in ("bpe", "sentencepiece") else {}
    text = TRAINING_TEXT * 20
    tokenizer = build_tokenizer(name, text, **options)
    ids = tokenizer.encode(TRAINING_TEXT)
    assert ids and max(ids) < vocab_size(tokenizer)
    assert tokenizer.decode(ids) == TRAINING_TEXT


def test_the_kit_and_the_reference_register_their_tokenizers():
    kit = {c.name for c in llmkit.components("tokenizers") if c.provider == "llmkit_tokenizers"}
    reference = {c.name for c in llmkit.components("tokenizers") if c.provider == "reference"}
    assert kit == {"gpt2", "bpe", "char"} and reference == {"char-book", "simple-v1", "simple-v2"}
    assert "sentencepiece" in llmkit.names("tokenizers")


def test_a_learning_tokenizer_without_text_says_so():
    with pytest.raises(LLMKitError, match="text="):
        build_tokenizer("char")
