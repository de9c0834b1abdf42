"""Corpora: the embedded one, a user's files, the seeded split, and bad input."""

import pytest

from llmkit.data import DOC_SEPARATOR, load_corpus, split_documents
from llmkit.errors import LLMKitError


def test_the_embedded_corpus_ships_with_the_package():
    corpus = load_corpus("builtin")
    assert len(corpus) >= 20_000
    assert len(corpus.documents) >= 8
    assert DOC_SEPARATOR in corpus.text
    assert load_corpus(None).text == corpus.text
    shift = load_corpus("builtin-shift")
    assert len(shift) >= 10_000 and shift.text != corpus.text
    story = load_corpus("builtin-story")
    assert len(story.documents) == 1 and len(story) >= 20_480  # the book-recipe example takes 20 KB of it


def test_file_folder_and_glob(tmp_path):
    (tmp_path / "a.txt").write_text("first text\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("second text\n")
    (tmp_path / "notes.md").write_text("ignored\n")
    assert load_corpus(str(tmp_path / "a.txt")).documents == ["first text"]
    assert load_corpus(str(tmp_path)).documents == ["first text", "second text"]
    assert load_corpus(str(tmp_path / "**" / "*.txt")).documents == ["first text", "second text"]


def test_bad_corpora_are_one_clear_line(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    cases = [(str(empty), "is empty"), (str(latin), "not UTF-8.*iconv"), (str(tmp_path / "nope.txt"), "No corpus at"),
             (str(tmp_path / "*.csv"), "matches no .txt files")]
    for source, message in cases:
        with pytest.raises(LLMKitError, match=message) as err:
            load_corpus(source)
        assert "\n" not in str(err.value)


def test_split_is_seeded_and_close_to_the_fraction():
    corpus = load_corpus("builtin")
    train, val = split_documents(corpus, 0.1, seed=1)
    assert (train, val) == split_documents(corpus, 0.1, seed=1)
    assert split_documents(corpus, 0.1, seed=2)[1] != val
    assert 0.08 < len(val) / (len(train) + len(val)) < 0.14
    assert set(val.split("\n\n")).isdisjoint(set(train.split("\n\n")) - {""})


def test_single_paragraph_splits_by_characters_like_the_book(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("x" * 100)
    train, val = split_documents(load_corpus(str(path)), 0.1)
    assert (len(train), len(val)) == (90, 10)
    with pytest.raises(LLMKitError, match="between 0 and 1"):
        split_documents(load_corpus(str(path)), 1.5)
