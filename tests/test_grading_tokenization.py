"""The stage-1 checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.tokenization import (
    check_bpe_helpers,
    check_build_vocab,
    check_char_tokenizer,
    check_simple_tokenizer_v1,
    check_simple_tokenizer_v2,
)
from llmkit_solutions import bpe
from llmkit_solutions import tokenization as ref
from tests.grading_helpers import mutate, notebook, reference_source

# What the notebook's setup cell provides: imports and the given helpers, written in the notebook.
HEADER = ("import re\nimport json\nfrom pathlib import Path\nfrom typing import Iterable\n"
          "from llmkit.errors import LLMKitError\nfrom llmkit.io import atomic_write_text\n"
          "from llmkit.tokenizers import WORD_SPLIT\n"
          f"SPACE_BEFORE_PUNCT = {ref.SPACE_BEFORE_PUNCT!r}\n"
          f"SPACE_BEFORE_PUNCT_V2 = {ref.SPACE_BEFORE_PUNCT_V2!r}\n"
          + reference_source(ref.read_json) + reference_source(ref.check_vocab))
V1 = reference_source(ref.SimpleTokenizerV1)
V2 = reference_source(ref.SimpleTokenizerV2)
CHAR = reference_source(ref.CharTokenizer)
BPE = reference_source(bpe.get_pair_counts) + reference_source(bpe.merge)


def student(code, name):
    return notebook(HEADER + code)[name]


def test_the_reference_build_vocab_matches_the_kits():
    from llmkit.tokenizers import build_vocab

    for text in ("The cat -- it's here: (yes)!", "a  b\n\tc, c. \"d\"", "one"):
        for specials in (("<|endoftext|>", "<|unk|>"), (), ("x", "<|pad|>")):
            assert ref.build_vocab(text, specials) == build_vocab(text, specials)


@pytest.mark.parametrize("check, code, name", [
    (check_build_vocab, reference_source(ref.build_vocab), "build_vocab"),
    (check_simple_tokenizer_v1, V1, "SimpleTokenizerV1"),
    (check_simple_tokenizer_v2, V1 + V2, "SimpleTokenizerV2"),
    (check_char_tokenizer, CHAR, "CharTokenizer"),
])
def test_the_reference_written_in_a_notebook_passes(check, code, name):
    check(student(code, name))


def test_the_reference_bpe_helpers_pass():
    ns = notebook(HEADER + BPE)
    check_bpe_helpers(ns["get_pair_counts"], ns["merge"])


# The book's own style: comprehensions, the pattern inline, a plain dict lookup (KeyError on unknowns).
BOOK_STYLE = r'''
def build_vocab(text, special_tokens=("<|endoftext|>", "<|unk|>")):
    preprocessed = re.split(r'([,.:;?_!"()\']|--|\s)', text)
    preprocessed = [item.strip() for item in preprocessed if item.strip()]
    all_tokens = sorted(list(set(preprocessed)))
    all_tokens.extend([t for t in special_tokens if t not in all_tokens])
    return {token: integer for integer, token in enumerate(all_tokens)}

class SimpleTokenizerV1:
    def __init__(self, vocab):
        self.str_to_int = vocab
        self.int_to_str = {i: s for s, i in vocab.items()}

    def encode(self, text):
        preprocessed = re.split(r'([,.:;?_!"()\']|--|\s)', text)
        preprocessed = [item.strip() for item in preprocessed if item.strip()]
        return [self.str_to_int[s] for s in preprocessed]

    def decode(self, ids):
        text = " ".join([self.int_to_str[i] for i in ids])
        return re.sub(r'\s+([,.?!"()\'])', r'\1', text)

class SimpleTokenizerV2(SimpleTokenizerV1):
    def encode(self, text):
        preprocessed = re.split(r'([,.:;?_!"()\']|--|\s)', text)
        preprocessed = [item.strip() for item in preprocessed if item.strip()]
        preprocessed = [item if item in self.str_to_int else "<|unk|>" for item in preprocessed]
        return [self.str_to_int[s] for s in preprocessed]

    def decode(self, ids):  # the book's V2 also closes the space before ':' and ';'
        text = " ".join([self.int_to_str[i] for i in ids])
        return re.sub(r'\s+([,.:;?!"()\'])', r'\1', text)
'''

NANOGPT_STYLE = '''
class CharTokenizer:
    def __init__(self, chars, special_tokens=("<|endoftext|>",)):
        vocab = sorted(list(set(chars)))
        vocab += [t for t in special_tokens if t not in vocab]
        self.stoi = {c: i for i, c in enumerate(vocab)}
        self.itos = dict(enumerate(vocab))
        self.n_vocab = len(vocab)
        self.specials = [t for t in special_tokens if len(t) > 1]

    def encode(self, s):
        out, i = [], 0
        while i < len(s):
            for t in self.specials:
                if s.startswith(t, i):
                    out.append(self.stoi[t])
                    i += len(t)
                    break
            else:
                out.append(self.stoi[s[i]])
                i += 1
        return out

    def decode(self, ids):
        return "".join(self.itos[i] for i in ids)
'''

COUNTER_STYLE = '''
from collections import Counter

def get_pair_counts(ids):
    return Counter(zip(ids, ids[1:]))

def merge(ids, pair, new_id):
    out = []
    skip = False
    for i, t in enumerate(ids):
        if skip:
            skip = False
            continue
        if i < len(ids) - 1 and (t, ids[i + 1]) == pair:
            out.append(new_id)
            skip = True
        else:
            out.append(t)
    return out
'''


def test_book_style_solutions_pass():
    ns = notebook(HEADER + BOOK_STYLE)
    check_build_vocab(ns["build_vocab"])
    check_simple_tokenizer_v1(ns["SimpleTokenizerV1"])
    check_simple_tokenizer_v2(ns["SimpleTokenizerV2"])


def test_other_styles_pass():
    check_char_tokenizer(notebook(NANOGPT_STYLE)["CharTokenizer"])
    ns = notebook(COUNTER_STYLE)
    check_bpe_helpers(ns["get_pair_counts"], ns["merge"])


VOCAB = reference_source(ref.build_vocab)


@pytest.mark.parametrize("old, new, hint", [
    ("tokens = sorted(set(words))", "tokens = list(dict.fromkeys(words))", "sorted(set(words))"),
    ("words = [piece.strip() for piece in pieces if piece.strip()]", "words = pieces", "whitespace or empty strings"),
    ("re.split(r'([,.:;?_!\"()\\']|--|\\s)', text)", "re.split(r'[,.:;?_!\"()\\']|--|\\s', text)", "capturing group"),
    ("pieces = re.split(r'([,.:;?_!\"()\\']|--|\\s)', text)", "pieces = text.split()", "not str.split()"),
    ("    tokens.extend(t for t in special_tokens if t not in tokens)\n", "", "special tokens are missing"),
    ("tokens = sorted(set(words))", "tokens = sorted(set(words) | set(special_tokens))", "sorted in with the words"),
    ("tokens = sorted(set(words))", "tokens = sorted(words)", "repeated words"),
    ("t for t in special_tokens if", "t for t in ('<|endoftext|>', '<|unk|>') if", "special_tokens argument"),
])
def test_build_vocab_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_build_vocab(student(mutate(VOCAB, old, new), "build_vocab"))


@pytest.mark.parametrize("old, new, hint", [
    ('return re.sub(SPACE_BEFORE_PUNCT, r"\\1", text)', "return text", "space before punctuation"),
    ('text = " ".join(', 'text = "".join(', "glues the tokens"),
    ("return [piece.strip() for piece in re.split(WORD_SPLIT, text) if piece.strip()]",
     "return [piece for piece in re.split(WORD_SPLIT, text) if piece]", "whitespace or empty pieces"),
    ("return [piece.strip() for piece in re.split(WORD_SPLIT, text) if piece.strip()]",
     "return text.split()", "book's regex"),
    ("self.int_to_str = {i: s for s, i in vocab.items()}", "self.int_to_str = vocab", "int_to_str"),
])
def test_simple_tokenizer_v1_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_simple_tokenizer_v1(student(mutate(V1, old, new), "SimpleTokenizerV1"))


@pytest.mark.parametrize("old, new, hint", [
    ("return [self.str_to_int.get(word, unk) for word in self.split(text)]",
     "return [self.str_to_int[word] for word in self.split(text)]", "must get the id of <|unk|>"),
    ("unk = self.str_to_int[self.UNK]", "unk = len(self.str_to_int)", "self.str_to_int['<|unk|>']"),
    ("unk = self.str_to_int[self.UNK]", "unk = self.str_to_int['<|endoftext|>']", "self.str_to_int['<|unk|>']"),
    # Right for build_vocab's order only: caught by a vocabulary whose special tokens sit at other ids.
    ("unk = self.str_to_int[self.UNK]", "unk = len(self.str_to_int) - 1", "may put its special tokens at any id"),
])
def test_simple_tokenizer_v2_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_simple_tokenizer_v2(student(V1 + mutate(V2, old, new), "SimpleTokenizerV2"))


@pytest.mark.parametrize("old, new, hint", [
    ("alphabet = sorted(chars)", "alphabet = list(dict.fromkeys(chars))", "sorted(set(chars))"),
    ("enumerate(alphabet + specials)", "enumerate(specials + alphabet)", "special tokens first"),
    ("enumerate(alphabet + specials)", "enumerate(alphabet + specials, start=1)", "numbers its tokens from 1"),
    ("self.itos = {i: ch for ch, i in self.stoi.items()}", "self.itos = dict(enumerate(chars))", "itos"),
    ("self.n_vocab = len(self.stoi)", "self.n_vocab = len(alphabet)", "n_vocab"),
    ('return "".join(self.itos[int(i)] for i in ids)', 'return " ".join(self.itos[int(i)] for i in ids)',
     "no separator"),
])
def test_char_tokenizer_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_char_tokenizer(student(mutate(CHAR, old, new), "CharTokenizer"))


@pytest.mark.parametrize("old, new, hint", [
    ("counts[pair] = counts.get(pair, 0) + 1", "counts[pair] = 1", "count every occurrence"),
    ("zip(ids, ids[1:])", "zip(ids, ids[1:] + ids[:1])", "(last id, first id)"),
    ("zip(ids, ids[1:])", "zip(ids[:-1], ids[1:-1])", "last pair is missing"),
    # The first and the last pair coincide in some cases: the hint must fit every wrong result, not one.
    ("zip(ids, ids[1:])", "zip(ids[1:], ids[2:])", "first pair is missing"),
    ("i += 2  # both ids of the pair are consumed", "i += 1", "skip both ids"),
    ("while i < len(ids):", "while i < len(ids) - 1:", "last id is dropped"),
    ("    return merged\n", "    merged.extend([])\n    ids.append(0)\n    return merged\n", "changed the list"),
])
def test_bpe_mistakes_are_named(old, new, hint):
    ns = notebook(HEADER + mutate(BPE, old, new))
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_bpe_helpers(ns["get_pair_counts"], ns["merge"])


def test_importing_or_wrapping_the_reference_earns_nothing():
    ns = notebook("from llmkit_solutions.tokenization import CharTokenizer, build_vocab")
    with pytest.raises(GradingError, match="imported from llmkit_solutions.tokenization"):
        check_char_tokenizer(ns["CharTokenizer"])
    with pytest.raises(GradingError, match="imported from llmkit_solutions.tokenization"):
        check_build_vocab(ns["build_vocab"])
    sub = notebook("import llmkit_solutions.tokenization as t\nclass SimpleTokenizerV1(t.SimpleTokenizerV1):\n    pass")
    with pytest.raises(GradingError, match="subclasses SimpleTokenizerV1"):
        check_simple_tokenizer_v1(sub["SimpleTokenizerV1"])
    wrapped = notebook("from llmkit_solutions.bpe import merge as m\ndef merge(ids, pair, new_id):\n"
                       "    return m(ids, pair, new_id)\ndef get_pair_counts(ids):\n    return {}\n")
    with pytest.raises(GradingError, match="calls the reference solution m"):
        check_bpe_helpers(wrapped["get_pair_counts"], wrapped["merge"])


def test_a_crashing_student_function_is_a_failed_check_not_a_crash():
    code = mutate(BPE, "first, second = pair", "first, second, third = pair")
    ns = notebook(HEADER + code)
    with pytest.raises(GradingError, match="raised ValueError"):
        check_bpe_helpers(ns["get_pair_counts"], ns["merge"])


def test_handing_build_vocab_to_the_kit_earns_nothing():
    direct = notebook("from llmkit.tokenizers import build_vocab as kit\n"
                      "def build_vocab(text, special_tokens=('<|endoftext|>', '<|unk|>')):\n"
                      "    return kit(text, special_tokens)\n")
    with pytest.raises(GradingError, match="kit's llmkit.tokenizers.build_vocab"):
        check_build_vocab(direct["build_vocab"])
    via_module = notebook("import llmkit.tokenizers\n"
                          "def build_vocab(text, special_tokens=('<|endoftext|>', '<|unk|>')):\n"
                          "    return llmkit.tokenizers.build_vocab(text, special_tokens)\n")
    with pytest.raises(GradingError, match="kit's llmkit.tokenizers.build_vocab"):
        check_build_vocab(via_module["build_vocab"])


@pytest.mark.parametrize("cells, leans", [
    (["from llmkit.tokenizers import build_vocab as kit",
      "def build_vocab(text, special_tokens=('<|endoftext|>', '<|unk|>')):\n    return kit(text, special_tokens)"], True),
    (["import llmkit",
      "def build_vocab(text, special_tokens=()):\n    return llmkit.tokenizers.build_vocab(text, special_tokens)"], True),
    (["from llmkit import tokenizers as t\n\ndef helper(text):\n    return t.words_of(text)",
      "def build_vocab(text, special_tokens=()):\n    words = sorted(set(helper(text)))\n"
      "    return {w: i for i, w in enumerate(words + list(special_tokens))}"], True),
    (["import re\nimport llmkit\nfrom llmkit.tokenizers import WORD_SPLIT", reference_source(ref.build_vocab)], False),
])
def test_handing_build_vocab_to_the_kit_is_found_in_the_source_of_a_kernel_function(cells, leans):
    """Under trusted grading build_vocab lives in the student's kernel: the submitted source decides."""
    from llmkit_instructor.grading.integrity import Cell, SourceIntegrity
    from llmkit_instructor.grading.remote import RemoteObject
    from llmkit_instructor.grading.tokenization import _assert_not_the_kits_vocab
    from llmkit_instructor.grading.trusted import current_integrity

    integrity = SourceIntegrity([Cell(i, source, True) for i, source in enumerate(cells)])
    proxy = RemoteObject(None, 1, {"kind": "function", "name": "build_vocab"})
    object.__setattr__(proxy, "origin", "build_vocab")
    token = current_integrity.set((integrity, len(cells)))
    try:
        if leans:
            with pytest.raises(GradingError, match="kit's llmkit.tokenizers.build_vocab"):
                _assert_not_the_kits_vocab(proxy)
        else:
            _assert_not_the_kits_vocab(proxy)
    finally:
        current_integrity.reset(token)


def test_v2_with_the_inherited_v1_decode_passes():
    """The course's V2 inherits V1's decode; the book's closes ':' and ';' too. Both are correct."""
    code = BOOK_STYLE.split("    def decode(self, ids):  # the book's V2")[0]
    check_simple_tokenizer_v2(notebook(HEADER + code)["SimpleTokenizerV2"])


def test_the_checks_inputs_follow_the_course_salt():
    from llmkit_instructor.grading import salted_seeds, seeded_random

    plain = seeded_random(303).random()
    with salted_seeds(20261203):
        salted = seeded_random(303).random()
        check_simple_tokenizer_v2(student(V1 + V2, "SimpleTokenizerV2"))
    assert plain != salted and seeded_random(303).random() == plain
