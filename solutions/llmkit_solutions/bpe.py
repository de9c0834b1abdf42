"""Stage 1: the two building blocks of byte-pair encoding, in their plain form.

``get_pair_counts`` counts adjacent pairs of ids; ``merge`` replaces one pair by a new id. Training
BPE is these two in a loop: count, merge the most frequent pair, repeat. They are the answers of the
stage-1 notebook. The kit's ``bpe`` tokenizer (``plugins/llmkit_tokenizers/bpe.py``) trains the same
merges incrementally, fast enough for a real corpus.
"""

from __future__ import annotations

# GPT-2's pre-tokenizer: contractions, words, numbers, punctuation runs and whitespace.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def get_pair_counts(ids):
    """How often each adjacent pair occurs in ``ids``: ``{(a, b): count}``, in order of first appearance."""
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids, pair, new_id):
    """``ids`` with every occurrence of ``pair`` replaced by ``new_id``, scanning left to right."""
    first, second = pair
    merged = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == first and ids[i + 1] == second:
            merged.append(new_id)
            i += 2  # both ids of the pair are consumed
        else:
            merged.append(ids[i])
            i += 1
    return merged
