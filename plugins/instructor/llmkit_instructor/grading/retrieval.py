"""Hidden-test checks for stage 11: retrieval-augmented generation.

Each ``check_*`` runs the student's function on small seeded inputs (made-up documents, random
vectors, short passages), compares the result with the reference solution, and on a mismatch names
the known mistake whose result the student's matches: the title not repeated, a budget off by one,
padding counted in the mean, vectors not normalised, ties in the wrong order, passages skipped
instead of stopping, recall counted over every retrieved document, and so on. The top-k check also
holds the student's ranking against a real FAISS inner-product index, the index ``llmkit rag`` builds.

No encoder runs here: the checks feed token states and vectors directly, so grading stays fast.
"""

from __future__ import annotations

import re

import torch

from llmkit.i18n.runtime import N_, _

from . import (GradingError, assert_defined_in_notebook, call_checked, close, fail_with_diagnosis, first_difference,
               seeded, seeded_random, text_difference, with_hint)
from .lora import type_name

HINTS = {
    # chunk_text
    "title_missing": N_("the passages do not start with the title: put '<title>. ' in front of every passage (the "
                        "'# ' line, without the '# ')."),
    "title_once": N_("only the first passage carries the title; repeat '<title>. ' at the start of every passage, so "
                     "each one still says what it is about."),
    "title_in_body": N_("the '# Title' line is treated as a sentence of the body; take the first line off as the "
                        "title (without '# ') before splitting the rest into sentences."),
    "title_counted": N_("the title's words count against max_words; only the body's words count, the title is "
                        "added after packing."),
    "budget_strict": N_("passages stay one word under the budget: a passage may have exactly max_words words; close "
                        "it only when the next sentence would make it longer than max_words (>, not >=)."),
    "last_dropped": N_("the last passage is missing: after the loop, keep the sentences still waiting in the "
                       "current passage."),
    "empty_passage": N_("an empty passage appears when a single sentence is longer than max_words; close a passage "
                        "only when it already holds a sentence, and let a long sentence stand alone."),
    "sentences_cut": N_("sentences are cut in the middle; pack whole sentences (split after '.', '!' or '?'), never "
                        "a fixed number of words."),
    # mean_pool
    "padding_counted": N_("padding is averaged in: multiply the states by the mask before summing, and divide by the "
                          "number of real tokens (the mask's sum over the row)."),
    "not_normalised": N_("the vectors are not L2-normalised: divide each row by its length (normalize(..., dim=-1)), "
                         "so a dot product becomes a cosine."),
    "normalised_wrong_dim": N_("the normalisation runs over the batch (dim=0); normalise each sentence vector over "
                               "its features (dim=-1)."),
    "cls_pooled": N_("only the first token's state is used; average the states of every real token."),
    # top_k_cosine
    "dot_product": N_("the scores are plain dot products, so longer vectors win; normalise the vectors and the "
                      "queries first, then their dot product is the cosine."),
    "query_not_normalised": N_("the queries are not normalised: the ranking is right but the scores are not cosines; "
                               "normalise the queries too."),
    "ascending": N_("the worst matches come first; sort the scores in descending order (best first)."),
    "ties": N_("equal scores must keep the lower id first; use a stable sort "
               "(torch.argsort(..., descending=True, stable=True))."),
    "k_too_large": N_("a k larger than the corpus must give every passage, ranked; use min(k, number of vectors)."),
    "swapped": N_("return (scores, ids) in that order, as FAISS's index.search does."),
    # build_prompt
    "reversed": N_("the passages are in reverse order; keep the retriever's order, best first."),
    "skipped_not_stopped": N_("a passage that does not fit is skipped and later ones are still added; stop at the "
                              "first passage that does not fit, so a worse passage never replaces a better one."),
    "prompt_budget_strict": N_("a passage that fits the budget exactly is left out; keep it while the total is at "
                               "most max_words (used + words > max_words means it does not fit)."),
    "question_counted": N_("the question's words count against max_words; the budget is for the passages only."),
    "no_closed_book": N_("when no passage fits, the prompt must be the closed-book one: "
                         "CLOSED_BOOK.format(question=question), without an empty 'Context:' line."),
    "separator": N_("join the kept passages with one space (' '.join(kept)), as the kit's reader was trained."),
    "passage_cut": N_("a passage is cut to fill the budget; keep passages whole and stop at the first that does "
                      "not fit."),
    # recall_at_k
    "ignores_k": N_("every retrieved document is looked at; only the first k count (ranked[:k])."),
    "counts_passages": N_("a question is counted once per matching passage; count it once if its gold document is "
                          "anywhere in its first k."),
    "not_fraction": N_("return the fraction of questions (hits / number of questions), not the number of hits."),
    "percentage": N_("return a fraction between 0 and 1, not a percentage."),
    "first_only": N_("only the first retrieved document is looked at; look at the first k."),
}

# Hints the course's mistake table does not simulate end to end: tests/test_grading_retrieval.py names each
# of them with a mutated solution.
UNIT_TESTED = "named by a mutated solution in tests/test_grading_retrieval.py"
NOT_SIMULATED = {
    "title_missing": UNIT_TESTED,
    "title_counted": UNIT_TESTED,
    "sentences_cut": UNIT_TESTED,
    "k_too_large": UNIT_TESTED,
    "passage_cut": UNIT_TESTED,
}


def _explained(runs: list, variants: dict, same=lambda a, b: a == b) -> str | None:
    """The hint of the first known mistake whose result equals the student's on every run ``(args, got)``.

    Looking at every run, not only the first that differs, keeps two mistakes that agree on one input
    apart (a budget one word short and a one-word title counted in it, say).
    """
    for key, produce in variants.items():
        if all(same(got, produce(*args)) for args, got in runs):
            return HINTS[key]
    return None


def _describe(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- chunking

WORDS = ("mill harbour chapel ridge orchard ferry bridge market lantern quarry salt wool bell meadow tide "
         "cider slate honey loom kiln reef beacon path cove").split()
TITLES = ("Quill Mere", "Ashby Cross", "Tarrow Den", "Fenwick Hythe")  # two words: not one off


def _sentence(rng, words: int) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    return body[0].upper() + body[1:] + rng.choice(".!?")


def _document(seed: int) -> str:
    """A made-up '# Title' document: two or three paragraphs of sentences of 3 to 14 words, one of 16."""
    rng = seeded_random(seed)
    paragraphs = []
    for _p in range(rng.randint(2, 3)):
        sentences = [_sentence(rng, rng.randint(3, 14)) for _s in range(rng.randint(2, 5))]
        paragraphs.append(" ".join(sentences))
    paragraphs[-1] += " " + _sentence(rng, 16)  # longer than the smallest budgets: it must stand alone
    return f"# {rng.choice(TITLES)}\n\n" + "\n\n".join(paragraphs) + "\n"


def _sentences(body: str) -> list[str]:
    return [s for p in re.split(r"\n\s*\n", body) for s in re.split(r"(?<=[.!?])\s+", p.strip()) if s]


def _chunk_variant(text: str, max_words: int, title_mode="each", strict=False, flush=True, guard=True,
                   count_title=False) -> list[str]:
    """Known-wrong chunkers (the reference is the default arguments)."""
    title, body = "", text.strip()
    if title_mode != "body" and body.startswith("#"):
        title, _sep, body = body.partition("\n")
        title = title.lstrip("# ").strip()
    extra = len(f"{title}.".split()) if count_title and title else 0
    passages, current = [], []
    for sentence in _sentences(body):
        length = len(" ".join(current + [sentence]).split()) + extra
        if (current or not guard) and (length >= max_words if strict else length > max_words):
            passages.append(" ".join(current))
            current = []
        current.append(sentence)
    if current and flush:
        passages.append(" ".join(current))
    if title_mode in ("none", "body") or not title:
        return passages
    if title_mode == "once":
        return [f"{title}. {p}" if i == 0 else p for i, p in enumerate(passages)]
    return [f"{title}. {p}" for p in passages]


def _word_windows(text: str, max_words: int) -> list[str]:
    title, _sep, body = text.strip().partition("\n")
    words = body.split()
    title = title.lstrip("# ").strip()
    return [f"{title}. " + " ".join(words[i:i + max_words]) for i in range(0, len(words), max_words)]


def _as_passages(got, what: str) -> list[str]:
    if not isinstance(got, (list, tuple)) or not all(isinstance(p, str) for p in got):
        raise GradingError(_("{what} returned {got}; return a list of passages (strings).").format(
            what=what, got=_describe(got)))
    return list(got)


def check_chunk_text(fn):
    """Passages like the reference's on made-up documents, with budgets from tight to roomy."""
    from llmkit_solutions.retrieval import chunk_text

    assert_defined_in_notebook(fn)
    options = {
        "title_missing": dict(title_mode="none"), "title_once": dict(title_mode="once"),
        "title_in_body": dict(title_mode="body"), "budget_strict": dict(strict=True), "last_dropped": dict(flush=False),
        "empty_passage": dict(guard=False), "title_counted": dict(count_title=True),
    }
    variants = {key: (lambda text, max_words, o=o: _chunk_variant(text, max_words, **o)) for key, o in options.items()}
    variants["sentences_cut"] = _word_windows
    runs = []
    for seed, max_words in ((11, 12), (12, 20), (13, 15), (14, 40), (15, 9)):
        text = _document(seed)
        what = f"chunk_text(document, max_words={max_words})"
        runs.append(((text, max_words), _as_passages(call_checked(what, fn, text, max_words=max_words), what)))
    for (text, max_words), got in runs:
        expected = chunk_text(text, max_words)
        if got == expected:
            continue
        what = f"chunk_text(document, max_words={max_words})"
        if len(got) != len(expected):
            # TRANSLATORS: {what} is the checked call; {got} and {expected} are numbers of passages.
            detail = _("{what} gave {got} passages, expected {expected}.").format(
                what=what, got=len(got), expected=len(expected))
        else:
            i = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
            # TRANSLATORS: {index} is a passage number; {where} is "at character 12: yours '...', expected '...'".
            detail = _("{what}: passage {index} differs {where}.").format(
                what=what, index=i, where=text_difference(got[i], expected[i]))
        raise GradingError(with_hint(detail, _explained(runs, variants)))


# --------------------------------------------------------------------------- sentence embeddings


def _pool_variants(hidden: torch.Tensor, mask: torch.Tensor) -> dict:
    keep = mask.unsqueeze(-1).to(hidden.dtype)
    unit = lambda t, dim=-1: torch.nn.functional.normalize(t, dim=dim)  # noqa: E731
    masked_mean = (hidden * keep).sum(1) / keep.sum(1)
    return {
        "padding_counted": (unit(hidden.mean(1)), HINTS["padding_counted"]),
        "padding_counted_raw": (hidden.mean(1), HINTS["padding_counted"]),
        "not_normalised": (masked_mean, HINTS["not_normalised"]),
        "normalised_wrong_dim": (unit(masked_mean, dim=0), HINTS["normalised_wrong_dim"]),
        "cls_pooled": (unit(hidden[:, 0]), HINTS["cls_pooled"]),
    }


def check_mean_pool(fn):
    """Unit mean vectors of the real tokens, for masks of several lengths (bool and 0/1 integers)."""
    from llmkit_solutions.retrieval import mean_pool

    assert_defined_in_notebook(fn)
    g = seeded(1101)
    for batch, tokens, dim, as_bool in ((3, 6, 5, False), (4, 5, 8, True)):
        hidden = torch.randn(batch, tokens, dim, generator=g) * 2 + 0.5  # (B, T, E), far from unit length
        lengths = torch.randint(1, tokens + 1, (batch,), generator=g)
        lengths[0], lengths[-1] = tokens, 1  # a full row and a one-token row
        mask = torch.arange(tokens).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
        mask = mask if as_bool else mask.long()
        hidden[~mask.bool()] = 7.0  # padding states that would show in any average
        what = f"mean_pool(hidden {tuple(hidden.shape)}, attention_mask {tuple(mask.shape)} {mask.dtype})"
        got = call_checked(what, fn, hidden.clone(), mask.clone())
        expected = mean_pool(hidden, mask)
        if not isinstance(got, torch.Tensor):
            raise GradingError(_("{what} returned {type_name}; return a tensor of shape {shape}.").format(
                what=what, type_name=type_name(got), shape=tuple(expected.shape)))
        if close(got, expected):
            continue
        fail_with_diagnosis(what, got, expected, _pool_variants(hidden, mask))


# --------------------------------------------------------------------------- brute-force top-k


def _top_k_variants(vectors, queries, k) -> dict:
    unit = lambda t: torch.nn.functional.normalize(t, dim=-1)  # noqa: E731
    cosine = unit(queries) @ unit(vectors).T
    kk = min(k, vectors.shape[0])

    def ranked(scores, descending=True, stable=True):
        if stable:
            order = torch.argsort(scores, dim=1, descending=descending, stable=True)
        else:  # equal scores with the higher id first
            order = torch.stack([_high_first(row) for row in scores])
        ids = order[:, :kk]
        return torch.gather(scores, 1, ids), ids

    return {
        "dot_product": ranked(queries @ vectors.T),
        "query_not_normalised": ranked(queries @ unit(vectors).T),
        "ascending": ranked(cosine, descending=False),
        "ties": ranked(cosine, stable=False),
    }


def _high_first(row: torch.Tensor) -> torch.Tensor:
    """Indices of ``row`` by descending score, equal scores with the higher index first."""
    return torch.tensor(sorted(range(len(row)), key=lambda i: (-float(row[i]), -i)))


def _as_scores_ids(got, what: str):
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        raise GradingError(_("{what} returned {got}; return a pair (scores, ids).").format(
            what=what, got=_describe(got)))
    scores, ids = (torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x for x in got)
    if not scores.is_floating_point() and ids.is_floating_point():
        raise GradingError(with_hint(_("{what} returned the ids first.").format(what=what), HINTS["swapped"]))
    return scores.float(), ids.long()


def _compare_top_k(what, got, expected, variants) -> None:
    (scores, ids), (want_scores, want_ids) = got, expected
    if ids.shape == want_ids.shape and torch.equal(ids, want_ids) and close(scores, want_scores):
        return
    hint = next((HINTS[key] for key, (v_scores, v_ids) in variants.items()
                 if ids.shape == v_ids.shape and torch.equal(ids, v_ids) and close(scores, v_scores.float())), None)
    if ids.shape != want_ids.shape:
        detail = _("{what} gave ids of shape {got}, expected {want}.").format(
            what=what, got=tuple(ids.shape), want=tuple(want_ids.shape))
    elif not torch.equal(ids, want_ids):
        row = int((ids != want_ids).any(1).nonzero()[0])
        # TRANSLATORS: {row} is a query number; {got} and {expected} are lists of passage ids.
        detail = _("{what}: the ids of query {row} are {got}, expected {expected}.").format(
            what=what, row=row, got=ids[row].tolist(), expected=want_ids[row].tolist())
    else:
        detail = _("{what}: the ids are right but the scores differ {where}.").format(
            what=what, where=first_difference(scores, want_scores))
    raise GradingError(with_hint(detail, hint))


def _call_top_k(fn, vectors, queries, k):
    what = f"top_k_cosine(vectors {tuple(vectors.shape)}, queries {tuple(queries.shape)}, k={k})"
    try:
        got = call_checked(what, fn, vectors.clone(), queries.clone(), k)
    except GradingError as exc:
        if k > vectors.shape[0]:
            raise GradingError(with_hint(str(exc), HINTS["k_too_large"])) from exc
        raise
    return what, _as_scores_ids(got, what)


def _faiss_top_k(vectors: torch.Tensor, queries: torch.Tensor, k: int):
    """The index ``llmkit rag index`` builds: FAISS's exact inner-product index over unit vectors."""
    import faiss
    import numpy as np

    def unit(t):
        return np.ascontiguousarray(torch.nn.functional.normalize(t, dim=-1).numpy(), dtype="float32")

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(unit(vectors))
    scores, ids = index.search(unit(queries), k)
    return torch.from_numpy(scores), torch.from_numpy(ids).long()


def check_top_k_cosine(fn):
    """The reference's ranking and scores; the same ranking as a FAISS index; ties; k beyond the corpus."""
    from llmkit_solutions.retrieval import top_k_cosine

    assert_defined_in_notebook(fn)
    g = seeded(1102)
    vectors = torch.randn(12, 6, generator=g) * torch.rand(12, 1, generator=g) * 4  # lengths from 0 to 4
    queries = torch.randn(4, 6, generator=g) * 3
    what, got = _call_top_k(fn, vectors, queries, 3)
    _compare_top_k(what, got, top_k_cosine(vectors, queries, 3), _top_k_variants(vectors, queries, 3))

    # Against the real index: unit vectors, so FAISS's inner product is the cosine.
    corpus = torch.nn.functional.normalize(torch.randn(40, 16, generator=g), dim=-1)
    asks = torch.randn(6, 16, generator=g)
    what, (scores, ids) = _call_top_k(fn, corpus, asks, 5)
    faiss_scores, faiss_ids = _faiss_top_k(corpus, asks, 5)
    if ids.shape != faiss_ids.shape or not torch.equal(ids, faiss_ids) or \
            not torch.allclose(scores, faiss_scores, atol=1e-5):
        hint = next((HINTS[key] for key, (_s, v_ids) in _top_k_variants(corpus, asks, 5).items()
                     if v_ids.shape == ids.shape and torch.equal(v_ids, ids)), None)
        raise GradingError(with_hint(_("{what} disagrees with a FAISS inner-product index on unit vectors: yours "
                                       "{got}, the index's {expected} (first query's ids).").format(
            what=what, got=ids[0].tolist() if ids.ndim == 2 else _describe(ids), expected=faiss_ids[0].tolist()),
            hint))

    # Ties: a corpus with repeated vectors; equal scores keep the lower id first.
    base = torch.randn(3, 5, generator=g)
    # Same directions, scaled by powers of two: the cosines tie exactly, however they are computed.
    tied = base[[0, 1, 0, 2, 1, 0]] * torch.tensor([[1.0], [2.0], [4.0], [1.0], [0.5], [2.0]])
    probe = torch.randn(2, 5, generator=g)
    what, got = _call_top_k(fn, tied, probe, 4)
    _compare_top_k(what, got, top_k_cosine(tied, probe, 4), _top_k_variants(tied, probe, 4))

    # k beyond the corpus: every passage, ranked.
    small = torch.randn(3, 4, generator=g)
    ask = torch.randn(2, 4, generator=g)
    what, got = _call_top_k(fn, small, ask, 5)
    expected = top_k_cosine(small, ask, 5)
    if got[1].shape != expected[1].shape:
        raise GradingError(with_hint(_("{what} gave ids of shape {got}, expected {want}.").format(
            what=what, got=tuple(got[1].shape), want=tuple(expected[1].shape)), HINTS["k_too_large"]))
    _compare_top_k(what, got, expected, _top_k_variants(small, ask, 5))


# --------------------------------------------------------------------------- the prompt

PROMPT = "Context: {context}\nQuestion: {question}\nAnswer:"
CLOSED_BOOK = "Question: {question}\nAnswer:"


def _prompt_variant(question, passages, max_words, order=1, stop=True, strict=False, question_counted=False,
                    closed_book=True, separator=" ", cut=False) -> str:
    kept, used = [], len(question.split()) if question_counted else 0
    for passage in passages[::order]:
        words = len(passage.split())
        if (used + words >= max_words) if strict else (used + words > max_words):
            if cut and max_words - used > 0:
                kept.append(" ".join(passage.split()[: max_words - used]))
            if stop:
                break
            continue
        kept.append(passage)
        used += words
    if not kept and closed_book:
        return CLOSED_BOOK.format(question=question)
    return PROMPT.format(context=separator.join(kept), question=question)


def _passages(seed: int, count: int) -> list[str]:
    rng = seeded_random(seed)
    return [" ".join(_sentence(rng, rng.randint(4, 9)) for _s in range(rng.randint(1, 3))) for _p in range(count)]


def check_build_prompt(fn):
    """The exact prompt for several budgets: all passages, some, exactly full, none (closed book)."""
    from llmkit_solutions.retrieval import build_prompt

    assert_defined_in_notebook(fn)
    options = {
        "reversed": dict(order=-1), "skipped_not_stopped": dict(stop=False), "prompt_budget_strict": dict(strict=True),
        "question_counted": dict(question_counted=True), "no_closed_book": dict(closed_book=False),
        "separator": dict(separator="\n"), "passage_cut": dict(cut=True),
    }
    question = "Which trade keeps the harbour of Quillmere busy?"
    passages = _passages(1103, 4)
    sizes = [len(p.split()) for p in passages]
    # After the first two: one passage too long to fit, then a two-word one that would fit again.
    passages[2:2] = [_sentence(seeded_random(1104), sum(sizes) + 5), _sentence(seeded_random(1105), 2)]
    sizes = [len(p.split()) for p in passages]
    budgets = [sum(sizes[:2]), sum(sizes[:2]) + 2, sizes[0] - 1, 10_000, sizes[0] + 1]
    runs = []
    for max_words in budgets:
        what = f"build_prompt(question, {len(passages)} passages, max_words={max_words})"
        got = call_checked(what, fn, question, list(passages), max_words=max_words)
        if not isinstance(got, str):
            raise GradingError(_("{what} returned {type_name}; return the prompt as one string.").format(
                what=what, type_name=type_name(got)))
        runs.append(((max_words,), got))
    variants = {key: (lambda max_words, o=o: _prompt_variant(question, passages, max_words, **o))
                for key, o in options.items()}
    for (max_words,), got in runs:
        expected = build_prompt(question, passages, max_words)
        if got == expected:
            continue
        what = f"build_prompt(question, {len(passages)} passages, max_words={max_words})"
        # TRANSLATORS: {where} is "at character 12: yours '...', expected '...'".
        raise GradingError(with_hint(_("{what} differs from the expected prompt {where}.").format(
            what=what, where=text_difference(got, expected)), _explained(runs, variants)))


# --------------------------------------------------------------------------- recall@k


def _recall_variants(retrieved, gold, k) -> dict:
    n = len(gold)
    hits = sum(g in r[:k] for r, g in zip(retrieved, gold))
    return {
        "ignores_k": sum(g in r for r, g in zip(retrieved, gold)) / n,
        "counts_passages": sum(r[:k].count(g) for r, g in zip(retrieved, gold)) / n,
        "not_fraction": hits,
        "percentage": 100 * hits / n,
        "first_only": sum(bool(r) and r[0] == g for r, g in zip(retrieved, gold)) / n,
    }


def check_recall_at_k(fn):
    """Recall@k on seeded rankings with repeated documents, for k = 1, 2, 3 and beyond the ranking."""
    from llmkit_solutions.retrieval import recall_at_k

    assert_defined_in_notebook(fn)
    rng = seeded_random(1105)
    docs = [t.split()[0].lower() for t in TITLES] + ["brinmoor", "culverdale"]
    retrieved = [[rng.choice(docs) for _d in range(5)] for _q in range(9)]
    gold = [rng.choice(ranked[1:3]) if q % 3 else rng.choice(docs) for q, ranked in enumerate(retrieved)]
    retrieved[0][0] = retrieved[0][1] = gold[0]  # one question with its gold document twice at the top
    runs = []
    for k in (1, 2, 3, 7):
        what = f"recall_at_k(retrieved, gold, k={k})"
        got = call_checked(what, fn, [list(r) for r in retrieved], list(gold), k)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise GradingError(_("{what} returned {type_name}; return a number between 0 and 1.").format(
                what=what, type_name=type_name(got)))
        runs.append(((k,), float(got)))
    variants = {key: (lambda k, key=key: _recall_variants(retrieved, gold, k)[key])
                for key in _recall_variants(retrieved, gold, 1)}
    for (k,), got in runs:
        expected = recall_at_k(retrieved, gold, k)
        if abs(got - expected) < 1e-9:
            continue
        hint = _explained(runs, variants, same=lambda a, b: abs(a - b) < 1e-9)
        # TRANSLATORS: {got} and {expected} are numbers.
        raise GradingError(with_hint(_("{what} is {got:.4g}, expected {expected:.4g}.").format(
            what=f"recall_at_k(retrieved, gold, k={k})", got=got, expected=expected), hint))
