"""Hidden-test checks for stage 1: the word vocabulary, the book's tokenizers, CharTokenizer, BPE merges.

Each ``check_*`` takes the student's function or class, runs it on seeded random texts or id lists,
compares the result with the reference, and on a mismatch names the known mistake whose result the
student's matches. Tokenizer classes get a vocabulary built by the reference ``build_vocab``, so a
mistake in the student's own ``build_vocab`` costs points only once.
"""

from __future__ import annotations

import ast
import inspect
import random
import re

from llmkit.exercise import _code_objects

from llmkit.i18n.runtime import N_, _

from . import GradingError, assert_defined_in_notebook, call_checked, seeded_random, text_difference, with_hint

# The kit's own word vocabulary: fine to use elsewhere, but not as the answer to the exercise.
KIT_VOCAB_FUNCTIONS = {"build_vocab", "words_of"}

WORDS = ["the", "The", "light", "keeper", "rowed", "out", "at", "dawn", "sea", "gull", "Tomas", "bread", "rises",
         "slowly", "it's", "don't", "a", "kite", "12", "3", "river", "bends", "north", "crow", "market"]
PUNCT = [",", ".", "?", "!", ";", ":", "--", '"', "(", ")", "'", "_"]
SPACES = [" ", " ", " ", "  ", "\n", "\t"]
BOOK_SPLIT = r'([,.:;?_!"()\']|--|\s)'
BOOK_TEXT = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace."
BOOK_IDS = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114, 286, 617,
            34680, 27271, 13]

HINTS = {
    "unsorted": N_("the ids follow the order in which words first appear; number the words after sorting them: "
                   "sorted(set(words))."),
    "no_strip": N_("whitespace or empty strings became tokens; keep only the pieces with item.strip() non-empty "
                   "(and strip them)."),
    "punct_dropped": N_("punctuation is missing: put the whole pattern in a capturing group ( ... ) so re.split "
                        "keeps the separators as tokens."),
    "str_split": N_("words still carry their punctuation ('dawn,'); split with the book's regex "
                    "r'([,.:;?_!\"()\\']|--|\\s)', not str.split()."),
    "no_dashes": N_("'--' is not its own token; the pattern needs the alternative --."),
    "no_specials": N_("the special tokens are missing: append special_tokens after the sorted words."),
    "specials_sorted": N_("the special tokens were sorted in with the words; add them after sorting, at the end."),
    "specials_first": N_("the special tokens come first; they belong at the end, after the sorted words."),
    "duplicates": N_("repeated words get several ids (some ids are never used); take set(words) before numbering."),
    "specials_ignored": N_("the special_tokens argument is ignored; append exactly the tokens it holds."),
    "kit_vocab": N_("build_vocab calls the kit's llmkit.tokenizers.build_vocab; write the split, the sorting and the "
                    "numbering yourself."),
    "decode_space": N_("decode leaves a space before punctuation; remove it with "
                       "re.sub(r'\\s+([,.?!\"()\\'])', r'\\1', text)."),
    "decode_glued": N_("decode glues the tokens together; join them with a space first, then remove the space before "
                       "punctuation."),
    "unk_raises": N_("encode raises KeyError for a word outside the vocabulary; unknown words must get the id of "
                     "<|unk|>: self.str_to_int.get(word, unk_id)."),
    "unk_id": N_("look up the id of <|unk|> in the vocabulary the tokenizer was given, self.str_to_int['<|unk|>']; "
                 "a vocabulary may put its special tokens at any id."),
    "eot_split": N_("<|endoftext|> is not kept as one token; give it its id from the vocabulary."),
    "char_from_1": N_("CharTokenizer numbers its tokens from 1; number them from 0 (enumerate starts at 0)."),
    "char_specials_first": N_("CharTokenizer puts the special tokens first; they come after the sorted characters."),
    "char_unsorted": N_("CharTokenizer's ids depend on the order the characters appear in (or on set order, which "
                        "changes between runs); sort the characters first: sorted(set(chars))."),
    "merge_keep_second": N_("after a match, skip both ids of the pair (i += 2), not just one."),
    "merge_first_only": N_("only the first occurrence is merged; replace every occurrence."),
    "merge_right_to_left": N_("scan from left to right: merging (7, 7) in [7, 7, 7] gives [new_id, 7]."),
    "merge_drop_last": N_("the last id is dropped when it is not part of a pair; the loop must visit every position "
                          "(while i < len(ids))."),
    "pairs_once": N_("each pair is counted once; count every occurrence: counts[pair] += 1."),
    "pairs_wrap": N_("a pair (last id, first id) is counted; pair each id only with the next one: zip(ids, ids[1:])."),
    "pairs_last": N_("the last pair is missing; loop over all len(ids) - 1 neighbours."),
    "pairs_first": N_("the first pair is missing; start at position 0."),
    "pairs_overlap": N_("overlapping pairs count too: [7, 7, 7] holds the pair (7, 7) twice."),
}
# Hints no table entry in course/mutants/01-tokenization.json can simulate (see llmkit_instructor.grading.mistakes).
NOT_SIMULATED = {
    "eot_split": "the notebook's given split keeps <|endoftext|> whole, so only a student who also rewrites split "
                 "can break it; tests/test_grading_tokenization.py covers it",
    "char_unsorted": "the mistake is set order, which changes from run to run, so no fixed edit reproduces it; "
                     "tests/test_grading_tokenization.py covers it",
}


def random_text(rng: random.Random, n_words: int = 60, words=WORDS) -> str:
    """Words, punctuation and assorted whitespace in a seeded random order."""
    parts = []
    for _word in range(n_words):
        parts.append(rng.choice(words))
        if rng.random() < 0.35:
            parts.append(rng.choice(PUNCT))
        parts.append(rng.choice(SPACES))
    return "".join(parts)


def book_words(text: str) -> list[str]:
    return [p.strip() for p in re.split(BOOK_SPLIT, text) if p.strip()]


def _vocab_variants(text: str, special_tokens) -> dict[str, dict]:
    """Vocabularies that known mistakes produce."""
    specials = list(special_tokens)
    words = book_words(text)

    def number(tokens):
        return {t: i for i, t in enumerate(tokens)}

    def with_specials(tokens):
        return tokens + [t for t in specials if t not in tokens]

    variants = {
        "unsorted": number(with_specials(list(dict.fromkeys(words)))),
        "no_strip": number(with_specials(sorted(set(re.split(BOOK_SPLIT, text))))),
        "punct_dropped": number(with_specials(sorted({p.strip() for p in re.split(r'[,.:;?_!"()\']|--|\s', text)
                                                      if p.strip()}))),
        "str_split": number(with_specials(sorted(set(text.split())))),
        "no_dashes": number(with_specials(sorted({p.strip() for p in re.split(r'([,.:;?_!"()\']|\s)', text)
                                                  if p.strip()}))),
        "no_specials": number(sorted(set(words))),
        "specials_sorted": number(sorted(set(words) | set(specials))),
        "specials_first": number(specials + [w for w in sorted(set(words)) if w not in specials]),
        "duplicates": {t: i for i, t in enumerate(with_specials(sorted(words)))},
    }
    return variants


def _describe_vocab_difference(got: dict, expected: dict) -> str:
    missing = [t for t in expected if t not in got][:5]
    extra = [t for t in got if t not in expected][:5]
    if missing or extra:
        return _("missing tokens {missing}, unexpected tokens {extra}").format(missing=missing, extra=extra)
    wrong = [(t, got[t], expected[t]) for t in expected if got[t] != expected[t]][:3]
    # TRANSLATORS: {token} is a token in quotes, e.g. 'dawn'; {got} and {expected} are ids.
    wrong_id = _("{token!r} has id {got}, expected {expected}")
    return "; ".join(wrong_id.format(token=t, got=g, expected=e) for t, g, e in wrong)


def _kit_module(module: str | None) -> bool:
    return module == "llmkit" or bool(module) and module.startswith("llmkit.")


def _source_leans_on_kit_vocab(integrity, name: str, before: int, seen: set) -> bool:
    """Whether the definition of ``name`` in the submitted source reaches the kit's vocabulary functions.

    Follows the notebook's own helpers it calls (and names assigned from expressions), so a wrapper around the
    kit is found too; decided from the source alone, as Python would resolve the names at the test cell.
    """
    if name in seen:
        return False
    seen.add(name)
    found = integrity.binding(name, before)
    if found is None:
        return False
    node = found[0]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if (alias.asname or alias.name).split(".")[0] != name:
                continue
            if isinstance(node, ast.ImportFrom):
                return _kit_module(node.module) and alias.name in KIT_VOCAB_FUNCTIONS
        return False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in KIT_VOCAB_FUNCTIONS:
            root = sub.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and _imports_kit_module(integrity, root.id, before):
                return True
        if isinstance(sub, ast.Name) and sub.id != name and \
                _source_leans_on_kit_vocab(integrity, sub.id, before, seen):
            return True
    return False


def _imports_kit_module(integrity, name: str, before: int) -> bool:
    found = integrity.binding(name, before)
    node = found[0] if found else None
    if isinstance(node, ast.Import):
        return any(_kit_module(a.name) for a in node.names if (a.asname or a.name).split(".")[0] == name)
    if isinstance(node, ast.ImportFrom):
        return _kit_module(node.module)
    return False


def _assert_not_the_kits_vocab(fn) -> None:
    """``build_vocab`` may not hand the work to ``llmkit.tokenizers.build_vocab`` (or ``words_of``)."""
    from .remote import is_remote

    if is_remote(fn):  # a kernel function: judged from the submitted source, never by asking the kernel
        from .trusted import current_integrity

        state = current_integrity.get()
        if state is not None and _source_leans_on_kit_vocab(state[0], fn.origin or "build_vocab", state[1], set()):
            raise GradingError(_(HINTS["kit_vocab"]))
        return
    for code, globs in _code_objects(fn):
        for name in code.co_names:
            value = globs.get(name)
            if inspect.ismodule(value):
                leans = value.__name__.startswith("llmkit") and bool(KIT_VOCAB_FUNCTIONS & set(code.co_names))
            else:
                leans = (getattr(value, "__module__", None) == "llmkit.tokenizers"
                         and getattr(value, "__name__", None) in KIT_VOCAB_FUNCTIONS)
            if leans:
                raise GradingError(_(HINTS["kit_vocab"]))


def check_build_vocab(fn):
    from llmkit_solutions.tokenization import build_vocab

    assert_defined_in_notebook(fn)
    _assert_not_the_kits_vocab(fn)
    rng = seeded_random(101)
    cases = [(random_text(rng), ("<|endoftext|>", "<|unk|>")), (random_text(rng, 120), ("<|endoftext|>", "<|unk|>")),
             (random_text(rng, 40), ()), (random_text(rng, 40), ("<|pad|>",))]
    for i, (text, specials) in enumerate(cases):
        if i == 0:
            got = call_checked("build_vocab(text)", fn, text)
        else:
            got = call_checked(f"build_vocab(text, special_tokens={specials!r})", fn, text, special_tokens=specials)
        expected = build_vocab(text, special_tokens=specials)
        if not isinstance(got, dict):
            # TRANSLATORS: {type_name} is a Python type; the doubled braces print as single ones.
            raise GradingError(_("build_vocab returned a {type_name}; return a dict mapping each token to its id, "
                                 "e.g. {{token: i for i, token in enumerate(tokens)}}.").format(
                type_name=type(got).__name__))
        if got == expected:
            continue
        for name, variant in _vocab_variants(text, specials).items():
            if got == variant:
                raise GradingError(with_hint(_("build_vocab differs from the reference."), HINTS[name]))
        if i > 0 and got == build_vocab(text):
            raise GradingError(with_hint(_("build_vocab differs from the reference."), HINTS["specials_ignored"]))
        # TRANSLATORS: {difference} lists missing or unexpected tokens, or tokens with the wrong id.
        raise GradingError(_("build_vocab differs from the reference: {difference}.").format(
            difference=_describe_vocab_difference(got, expected)))


# --------------------------------------------------------------------------- word tokenizers


def _as_ids(what: str, ids) -> list[int]:
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError) as exc:
        # TRANSLATORS: {what} is a method such as SimpleTokenizerV1.encode; {type_name} a Python type.
        raise GradingError(_("{what} should return a list of ints, got {type_name}.").format(
            what=what, type_name=type(ids).__name__)) from exc


def _encode_checked(tok, text: str, name: str) -> list[int]:
    try:
        return _as_ids(f"{name}.encode", tok.encode(text))
    except GradingError:
        raise
    except Exception as exc:  # KeyError('dawn,') from a dict lookup, or an error naming the unknown piece
        found = re.match(r"""^(['"])(.*?)\1""", str(exc), re.S)
        key = found.group(2) if found else None
        if key is not None and not key.strip():
            # TRANSLATORS: {name} is a tokenizer class; {key} the piece it looked up, in quotes.
            raise GradingError(_("{name}.encode looked up {key!r}: whitespace or empty pieces are not tokens; keep "
                                 "only item.strip() for the pieces where it is non-empty.").format(
                name=name, key=key)) from exc
        if key is not None and len(key) > 1 and ("--" in key or any(ch in key for ch in ',.:;?!"()_\'')):
            raise GradingError(_("{name}.encode looked up {key!r}: split with the book's regex (as in build_vocab), "
                                 "so punctuation becomes its own token.").format(name=name, key=key)) from exc
        raise GradingError(_("{name}.encode raised {error_type}: {error}").format(
            name=name, error_type=type(exc).__name__, error=exc)) from exc


def _check_tables(tok, vocab: dict, name: str) -> None:
    if getattr(tok, "str_to_int", None) != vocab:
        raise GradingError(_("{name}.str_to_int should be the vocab dict it was given (the book's name).").format(
            name=name))
    inverse = {i: s for s, i in vocab.items()}
    if getattr(tok, "int_to_str", None) != inverse:
        # TRANSLATORS: the doubled braces print as single ones.
        raise GradingError(_("{name}.int_to_str should map each id back to its token: "
                             "{{i: s for s, i in vocab.items()}}.").format(name=name))


def _decode_hint(got: str, tokens: list[str]) -> str | None:
    if got == " ".join(tokens):
        return HINTS["decode_space"]
    if got == "".join(tokens):
        return HINTS["decode_glued"]
    return None


def _check_decode(tok, reference, ids: list[int], name: str, also_accept=None) -> None:
    """``tok.decode(ids)`` must equal the reference's; ``also_accept`` is another correct decode (the
    book's V2 also closes the space before ':' and ';', the course's inherits V1's decode)."""
    got = call_checked(f"{name}.decode", tok.decode, ids)
    expected = reference.decode(ids)
    if got == expected or (also_accept is not None and got == also_accept.decode(ids)):
        return
    hint = _decode_hint(got, [reference.int_to_str[i] for i in ids])
    # TRANSLATORS: {difference} says where, e.g. "at character 12, it gave ...'a ,b'..., expected ...'a, b'...".
    detail = _("{name}.decode is wrong: {difference}.").format(name=name, difference=text_difference(got, expected))
    raise GradingError(with_hint(detail, hint))


def _with_shuffled_ids(vocab: dict, rng: random.Random) -> dict:
    """The same tokens under other ids, the special tokens among them: a tokenizer must not rely on where
    build_vocab puts them (a vocabulary loaded from elsewhere numbers its tokens its own way)."""
    ids = list(range(len(vocab)))
    rng.shuffle(ids)
    return dict(zip(vocab, ids))


def _first_id_difference(got: list[int], expected: list[int], int_to_str: dict) -> str:
    """Where two id lists first differ, with the tokens the ids stand for."""
    name = lambda i: repr(int_to_str.get(i, "?"))  # noqa: E731
    for position, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            # TRANSLATORS: {got_token} and {expected_token} are the tokens the ids stand for, in quotes.
            return _("the first difference is at position {position}: id {got} ({got_token}), expected {expected} "
                     "({expected_token})").format(position=position, got=g, got_token=name(g), expected=e,
                                                  expected_token=name(e))
    return _("it gave {got} ids, expected {expected}").format(got=len(got), expected=len(expected))


def check_simple_tokenizer_v1(cls):
    from llmkit.tokenizers import build_vocab
    from llmkit_solutions.tokenization import SimpleTokenizerV1

    assert_defined_in_notebook(cls)
    rng = seeded_random(202)
    corpus = random_text(rng, 200) + " " + " ".join(WORDS + PUNCT)  # every word and mark is known
    built = build_vocab(corpus, special_tokens=())
    for vocab in (built, _with_shuffled_ids(built, rng)):
        tok = call_checked("SimpleTokenizerV1(vocab)", cls, dict(vocab))
        reference = SimpleTokenizerV1(vocab)
        _check_tables(tok, vocab, "SimpleTokenizerV1")
        for _text_number in range(3):
            text = random_text(rng, 30, words=[w for w in WORDS if w in vocab])
            got, expected = _encode_checked(tok, text, "SimpleTokenizerV1"), reference.encode(text)
            if got != expected:
                # TRANSLATORS: {text} is the start of the input text, in quotes; {difference} says where ids differ.
                raise GradingError(_("SimpleTokenizerV1.encode({text!r}...) is wrong: {difference}; look each word "
                                     "of the book's split up in str_to_int.").format(
                    text=text[:40], difference=_first_id_difference(got, expected, reference.int_to_str)))
            _check_decode(tok, reference, expected, "SimpleTokenizerV1")
        ids = rng.sample(range(len(vocab)), min(25, len(vocab)))
        _check_decode(tok, reference, ids, "SimpleTokenizerV1")


def _v2_mistake(got: list[int], expected: list[int], unk: int, eot: int) -> str | None:
    """The likely mistake behind a wrong V2 encoding, in the current language (None: no known one)."""
    if len(got) != len(expected):
        return None
    differs = [(g, e) for g, e in zip(got, expected) if g != e]
    if differs and all(e == unk for _got, e in differs):
        # TRANSLATORS: {got} and {unk} are ids; {hint} is a hint sentence starting in lower case.
        return _("unknown words get the id {got}, but '<|unk|>' has the id {unk} here; {hint}").format(
            got=differs[0][0], unk=unk, hint=_(HINTS["unk_id"]))
    if differs and all(e == eot for _got, e in differs):
        return _(HINTS["eot_split"])
    return None


def check_simple_tokenizer_v2(cls):
    from llmkit.tokenizers import build_vocab
    from llmkit_solutions.tokenization import SimpleTokenizerV1, SimpleTokenizerV2

    assert_defined_in_notebook(cls)
    rng = seeded_random(303)
    known = WORDS[: len(WORDS) // 2]
    built = build_vocab(random_text(rng, 150, words=known))
    for vocab in (built, _with_shuffled_ids(built, rng)):
        tok = call_checked("SimpleTokenizerV2(vocab)", cls, dict(vocab))
        reference, inherited = SimpleTokenizerV2(vocab), SimpleTokenizerV1(vocab)
        _check_tables(tok, vocab, "SimpleTokenizerV2")
        unk, eot = vocab["<|unk|>"], vocab["<|endoftext|>"]
        where = "" if vocab is built else " " + _("(a vocabulary with its special tokens at other ids)")
        for _text_number in range(3):
            text = " <|endoftext|> ".join(random_text(rng, 15) for _part in range(2))  # half the words are unknown
            expected = reference.encode(text)
            try:
                got = _as_ids("SimpleTokenizerV2.encode", tok.encode(text))
            except KeyError as exc:
                # TRANSLATORS: {word} is the word in quotes, as Python's KeyError shows it.
                raise GradingError(with_hint(_("SimpleTokenizerV2.encode raised KeyError for the unknown word "
                                               "{word}.").format(word=exc), HINTS["unk_raises"])) from exc
            except GradingError:
                raise
            except Exception as exc:
                raise GradingError(_("SimpleTokenizerV2.encode raised {error_type}: {error}").format(
                    error_type=type(exc).__name__, error=exc)) from exc
            if got == expected:
                _check_decode(tok, reference, expected, "SimpleTokenizerV2", also_accept=inherited)
                continue
            mistake = _v2_mistake(got, expected, unk, eot)
            if mistake:  # already translated: the template of with_hint, without translating the hint again
                # TRANSLATORS: {where} is empty or " (a vocabulary with its special tokens at other ids)".
                detail = _("SimpleTokenizerV2.encode is wrong{where}.").format(where=where)
                raise GradingError(_("{detail} Likely mistake: {hint}").format(detail=detail, hint=mistake))
            # TRANSLATORS: {text} is the start of the input text, in quotes; {where} is empty or " (a vocabulary
            # with its special tokens at other ids)"; {difference} says where the ids differ.
            raise GradingError(_("SimpleTokenizerV2.encode({text!r}...) is wrong{where}: {difference}.").format(
                text=text[:40], where=where, difference=_first_id_difference(got, expected, reference.int_to_str)))


# --------------------------------------------------------------------------- characters


def check_char_tokenizer(cls):
    from llmkit_solutions.tokenization import CharTokenizer

    assert_defined_in_notebook(cls)
    rng = seeded_random(404)
    text = random_text(rng, 80) + "ÅéΩ"
    for specials in (("<|endoftext|>",), ("<|endoftext|>", "<|pad|>"), ()):
        tok = call_checked(f"CharTokenizer(text, special_tokens={specials!r})", cls, text, special_tokens=specials)
        reference = CharTokenizer(text, special_tokens=specials)
        stoi = getattr(tok, "stoi", None)
        if not isinstance(stoi, dict):
            raise GradingError(_("CharTokenizer needs a dict stoi (character -> id), as in nanoGPT."))
        if stoi != reference.stoi:
            if set(stoi) != set(reference.stoi):
                missing = sorted(set(reference.stoi) - set(stoi))[:5]
                extra = sorted(set(stoi) - set(reference.stoi))[:5]
                raise GradingError(_("CharTokenizer.stoi has the wrong tokens: missing {missing}, unexpected "
                                     "{extra}; one entry per distinct character, then the special tokens.").format(
                    missing=missing, extra=extra))
            if sorted(stoi.values()) == [i + 1 for i in range(len(stoi))]:
                raise GradingError(with_hint(_("CharTokenizer.stoi is wrong."), HINTS["char_from_1"]))
            order = sorted(stoi, key=stoi.get)
            if specials and order[: len(specials)] == list(specials):
                raise GradingError(with_hint(_("CharTokenizer.stoi is wrong."), HINTS["char_specials_first"]))
            if order[len(order) - len(specials):] == list(specials) and sorted(order[:len(order) - len(specials)]) \
                    != order[:len(order) - len(specials)]:
                raise GradingError(with_hint(_("CharTokenizer.stoi is wrong."), HINTS["char_unsorted"]))
            token, got_id = next((t, i) for t, i in stoi.items() if reference.stoi[t] != i)
            # TRANSLATORS: {token} is a character or special token, in quotes; {got} and {expected} are ids.
            raise GradingError(_("CharTokenizer.stoi gives {token!r} the id {got}, expected {expected}: the sorted "
                                 "characters get 0, 1, ..., then the special tokens in their order.").format(
                token=token, got=got_id, expected=reference.stoi[token]))
        itos = getattr(tok, "itos", None)
        if itos != reference.itos:
            raise GradingError(_("CharTokenizer.itos should map each id back to its character: "
                                 "{i: ch for ch, i in stoi.items()}."))
        n_vocab = getattr(tok, "n_vocab", None)
        if n_vocab != reference.n_vocab:
            raise GradingError(_("CharTokenizer.n_vocab is {got!r}, expected {expected} (len(stoi)).").format(
                got=n_vocab, expected=reference.n_vocab))
        sample = text[10:50] + ("".join(specials[:1]) + text[:20] if specials else "")
        got = _as_ids("CharTokenizer.encode", call_checked("CharTokenizer.encode", tok.encode, sample))
        expected = reference.encode(sample)
        if got != expected:
            # TRANSLATORS: {text} is the start of the input text, in quotes; {got} and {expected} are id lists.
            raise GradingError(_("CharTokenizer.encode({text!r}...) gave {got}..., expected {expected}...; one id per "
                                 "character, stoi[ch].").format(text=sample[:30], got=got[:8], expected=expected[:8]))
        decoded = call_checked("CharTokenizer.decode", tok.decode, expected)
        if decoded != sample:
            # TRANSLATORS: {got} and {expected} are the starts of two texts, in quotes.
            raise GradingError(_("CharTokenizer.decode(encode(text)) gave {got!r}..., expected {expected!r}...; join "
                                 "the characters itos[i] with no separator.").format(got=decoded[:30],
                                                                                      expected=sample[:30]))


# --------------------------------------------------------------------------- BPE


def _pair_count_variants(ids: list[int]) -> dict[str, tuple[dict, str]]:
    from llmkit_solutions.bpe import get_pair_counts

    exact = get_pair_counts(ids)
    wrap = dict(exact)
    if ids:  # zip(ids, ids[1:] + ids[:1]) pairs a single id with itself
        wrap[(ids[-1], ids[0])] = wrap.get((ids[-1], ids[0]), 0) + 1
    non_overlapping, i = {}, 0
    while i + 1 < len(ids):
        pair = (ids[i], ids[i + 1])
        non_overlapping[pair] = non_overlapping.get(pair, 0) + 1
        i += 2 if ids[i] == ids[i + 1] else 1
    return {
        "pairs_once": ({p: 1 for p in exact}, HINTS["pairs_once"]),
        "pairs_wrap": (wrap, HINTS["pairs_wrap"]),
        "pairs_last": (get_pair_counts(ids[:-1]), HINTS["pairs_last"]),
        "pairs_first": (get_pair_counts(ids[1:]), HINTS["pairs_first"]),
        "pairs_overlap": (non_overlapping, HINTS["pairs_overlap"]),
    }


def _merge_variants(ids: list[int], pair, new_id: int) -> dict[str, tuple[list, str]]:
    from llmkit_solutions.bpe import merge

    def keep_second():
        out = []
        for i, t in enumerate(ids):
            out.append(new_id if i + 1 < len(ids) and (t, ids[i + 1]) == tuple(pair) else t)
        return out

    def first_only():
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) == tuple(pair):
                return ids[:i] + [new_id] + ids[i + 2:]
        return list(ids)

    def right_to_left():
        return merge(ids[::-1], (pair[1], pair[0]), new_id)[::-1]

    def drop_last():
        out, i = [], 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) == tuple(pair):
                out.append(new_id)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    return {
        "merge_keep_second": (keep_second(), HINTS["merge_keep_second"]),
        "merge_first_only": (first_only(), HINTS["merge_first_only"]),
        "merge_right_to_left": (right_to_left(), HINTS["merge_right_to_left"]),
        "merge_drop_last": (drop_last(), HINTS["merge_drop_last"]),
    }


def _pair_dict(what: str, counts) -> dict:
    try:
        items = dict(counts).items()
    except (TypeError, ValueError) as exc:
        # TRANSLATORS: {what} is get_pair_counts; the doubled braces print as single ones.
        raise GradingError(_("{what} returned a {type_name}; return a dict {{(a, b): count}}.").format(
            what=what, type_name=type(counts).__name__)) from exc
    result = {}
    for key, value in items:
        if not isinstance(key, tuple) or len(key) != 2:
            raise GradingError(_("{what} has the key {key!r}; the keys must be tuples of two ids (a, b).").format(
                what=what, key=key))
        result[tuple(int(k) for k in key)] = int(value)
    return result


def _consistent_hint(wrong: list, variants_of) -> str | None:
    """The hint of the known mistake that explains every wrong result (one case alone can match two mistakes)."""
    first_case, first_got = wrong[0]
    for name, (variant, hint) in variants_of(first_case).items():
        if variant == first_got and all(variants_of(case)[name][0] == got for case, got in wrong[1:]):
            return hint
    return None


def check_bpe_helpers(get_pair_counts, merge):
    from llmkit_solutions import bpe

    assert_defined_in_notebook(get_pair_counts)
    assert_defined_in_notebook(merge)
    rng = seeded_random(505)
    cases = [[rng.randrange(6) for _position in range(rng.randrange(20, 60))] for _case in range(6)]
    cases += [[7, 7, 7], [1, 2, 3, 1, 2], [5], []]
    pair_results = [(ids, _pair_dict("get_pair_counts", call_checked(f"get_pair_counts({ids[:6]}...)",
                                                                    get_pair_counts, list(ids))))
                    for ids in cases]
    wrong = [(ids, got) for ids, got in pair_results if got != bpe.get_pair_counts(ids)]
    if wrong:
        ids, got = wrong[0]
        hint = _consistent_hint(wrong, _pair_count_variants)
        if hint:
            raise GradingError(with_hint(_("get_pair_counts({ids}) is wrong.").format(ids=ids[:8]), hint))
        expected = bpe.get_pair_counts(ids)
        pair = next(p for p in list(expected) + list(got) if got.get(p, 0) != expected.get(p, 0))
        # TRANSLATORS: {ids} is the start of an id list; {pair} a pair of ids; {got} and {expected} are counts.
        raise GradingError(_("get_pair_counts({ids}...) is wrong: the pair {pair} is counted {got} times, expected "
                             "{expected}.").format(ids=ids[:8], pair=pair, got=got.get(pair, 0),
                                                    expected=expected.get(pair, 0)))
    merge_cases = [([7, 7, 7], (7, 7), 99), ([1, 2, 3, 1, 2], (1, 2), 99), ([3, 1, 2], (1, 2), 99), ([4], (4, 4), 99)]
    for ids in cases[:6]:
        pair = max(bpe.get_pair_counts(ids).items(), key=lambda kv: kv[1])[0]
        merge_cases.append((ids, pair, 6))
    wrong = []
    for ids, pair, new_id in merge_cases:
        given = list(ids)
        got = call_checked(f"merge({ids[:6]}..., {pair}, {new_id})", merge, given, pair, new_id)
        if given != ids:
            raise GradingError(_("merge changed the list it was given; build and return a new list."))
        got = _as_ids("merge", got)
        if got != bpe.merge(ids, pair, new_id):
            wrong.append(((ids, pair, new_id), got))
    if wrong:
        (ids, pair, new_id), got = wrong[0]
        expected = bpe.merge(ids, pair, new_id)
        hint = _consistent_hint(wrong, lambda case: _merge_variants(*case))
        if hint:
            # TRANSLATORS: {ids}, {got} and {expected} are id lists; {pair} a pair of ids; {new_id} an id.
            raise GradingError(with_hint(_("merge({ids}, {pair}, {new_id}) gave {got}, expected {expected}.").format(
                ids=ids[:8], pair=pair, new_id=new_id, got=got[:8], expected=expected[:8]), hint))
        at = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e), min(len(got), len(expected)))
        raise GradingError(_("merge({ids}, {pair}, {new_id}) gave {got}..., expected {expected}...; the first "
                             "difference is at position {position}.").format(
            ids=ids[:8], pair=pair, new_id=new_id, got=got[:8], expected=expected[:8], position=at))
    got = call_checked(_("replaying GPT-2's merges with get_pair_counts and merge"), encode_with_gpt2_merges,
                       BOOK_TEXT, get_pair_counts, merge)
    if got != BOOK_IDS:
        raise GradingError(_("Replaying GPT-2's merges with your functions gave {got}, not the book's ids "
                             "{expected}.").format(got=got, expected=BOOK_IDS))


def encode_with_gpt2_merges(text: str, get_pair_counts, merge) -> list[int]:
    """GPT-2's encoder built from two BPE helpers: pre-tokenize, then replay GPT-2's merges in rank order."""
    import regex

    from llmkit.gpt2_bpe import gpt2_encoding
    from llmkit_solutions.bpe import GPT2_PATTERN

    gpt2 = gpt2_encoding()

    def merged_id(a, b):
        try:
            return gpt2.encode_single_token(gpt2.decode_single_token_bytes(a) + gpt2.decode_single_token_bytes(b))
        except KeyError:
            return None

    ids = []
    for part in re.split(r"(<\|endoftext\|>)", text):
        if part == "<|endoftext|>":
            ids.append(gpt2.eot_token)
            continue
        for piece in regex.findall(GPT2_PATTERN, part):
            piece_ids = [gpt2.encode_single_token(bytes([b])) for b in piece.encode("utf-8")]
            while len(piece_ids) > 1:
                candidates = [(merged_id(a, b), (a, b)) for a, b in _pair_dict("get_pair_counts",
                                                                              get_pair_counts(piece_ids))]
                candidates = [c for c in candidates if c[0] is not None]
                if not candidates:
                    break
                new_id, pair = min(candidates)
                piece_ids = _as_ids("merge", merge(piece_ids, pair, new_id))
            ids.extend(piece_ids)
    return ids
