"""Reference solutions for stage 11: retrieval-augmented generation.

Each definition is the twin of a graded cell in ``course/source/11-retrieval-augmented-generation``
(``tests/test_course_sources.py`` checks that they stay equal). The signatures are the ones the kit's
own RAG code (``llmkit.beyond.rag``) calls: ``chunk_text`` can stand in for its chunker,
``top_k_cosine`` for its index, ``build_prompt`` for its prompt.
"""

import re

import torch

PROMPT = "Context: {context}\nQuestion: {question}\nAnswer:"
CLOSED_BOOK = "Question: {question}\nAnswer:"


def chunk_text(text, max_words=80):
    """Passages of at most ``max_words`` words of body, sentences kept whole, each starting "<title>. "."""
    title, body = "", text.strip()
    if body.startswith("#"):
        title, _, body = body.partition("\n")
        title = title.lstrip("# ").strip()
    sentences = []
    for paragraph in re.split(r"\n\s*\n", body):
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", paragraph.strip()) if s]
    passages, current = [], []
    for sentence in sentences:
        # Close the passage when this sentence would push it past the budget (a lone long sentence stays whole).
        if current and len(" ".join(current + [sentence]).split()) > max_words:
            passages.append(" ".join(current))
            current = []
        current.append(sentence)
    if current:
        passages.append(" ".join(current))
    return [f"{title}. {p}" if title else p for p in passages]


def mean_pool(hidden, attention_mask):
    """(B, T, E) token states and a (B, T) mask (1 = real token) -> (B, E) unit sentence vectors."""
    keep = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    summed = (hidden * keep).sum(dim=1)  # (B, E): padding adds nothing
    counts = keep.sum(dim=1).clamp(min=1.0)  # (B, 1): real tokens per row
    return torch.nn.functional.normalize(summed / counts, dim=-1)


def top_k_cosine(vectors, queries, k):
    """Cosine top-k by brute force: (scores (Q, k), ids (Q, k)), best first, ties to the lower id."""
    vectors = torch.nn.functional.normalize(vectors, dim=-1)  # (N, E)
    queries = torch.nn.functional.normalize(queries, dim=-1)  # (Q, E)
    scores = queries @ vectors.T  # (Q, N)
    k = min(k, vectors.shape[0])  # a corpus smaller than k gives all it has
    ids = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :k]
    return torch.gather(scores, 1, ids), ids


def build_prompt(question, passages, max_words=120):
    """The prompt: the best passages that fit ``max_words`` words as context, or closed book if none fits."""
    kept, used = [], 0
    for passage in passages:  # best first: stop at the first passage that does not fit
        words = len(passage.split())
        if used + words > max_words:
            break
        kept.append(passage)
        used += words
    if not kept:
        return CLOSED_BOOK.format(question=question)
    return PROMPT.format(context=" ".join(kept), question=question)


def recall_at_k(retrieved, gold, k):
    """The fraction of questions whose gold document is among their first ``k`` retrieved documents."""
    hits = sum(answer in ranked[:k] for ranked, answer in zip(retrieved, gold))
    return hits / len(gold)
