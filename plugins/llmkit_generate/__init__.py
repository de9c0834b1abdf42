"""The kit's decoder ``kv-cache``: greedy, temperature and top-k decoding that reuses keys and values.

A decoder has the book's ``generate`` signature (``llmkit.contracts.Decoder``), so the book's own
``generate`` (the reference's ``book`` decoder), a student's and this one are interchangeable by
name. This one feeds the prompt once, then only the newest token each step, with the keys and
values of earlier tokens kept in a ``llmkit.kv_cache.KVCache``: a step costs one token's work
instead of the whole window's. Models whose forward takes no ``kv_cache`` are decoded the plain way.

The one subtle point: once the window is full, the plain path crops the oldest token, which shifts
every position embedding, so cached keys are stale. The cache is then rebuilt from the cropped
window, and the ids are exactly those of the plain path (the same seed draws the same samples).
"""

from __future__ import annotations

import torch

from llmkit.contracts import new_kv_cache, supports_kv_cache
from llmkit.errors import LLMKitError
from llmkit.hookspecs import hookimpl


def pick_next(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None) -> torch.Tensor:
    """Last-position logits (B, vocab) -> next ids (B, 1): argmax, or a sample after top-k and temperature."""
    if top_k is not None:
        if top_k <= 0:
            raise LLMKitError(f"top_k must be a positive integer or None, got {top_k}.")
        kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]  # (B, 1): the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if temperature < 0:
        raise LLMKitError(f"temperature must be >= 0 (0 means greedy), got {temperature}.")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # (B, 1)
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), num_samples=1)  # (B, 1)


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, context_size: int, temperature: float = 0.0,
             top_k: int | None = None, eos_id: int | None = None, use_cache: bool = True) -> torch.Tensor:
    """Append up to ``max_new_tokens`` ids to ``idx`` (B, T), reusing keys/values; stop when every row hits eos.

    ``use_cache=False`` recomputes the whole window each step (what ``llmkit bench generate`` compares).
    """
    cache = new_kv_cache(model) if use_cache and supports_kv_cache(model) else None
    logits = None
    for _ in range(max_new_tokens):
        if cache is None:
            logits = model(idx[:, -context_size:])  # (B, T, vocab)
        elif logits is None or cache.offset + 1 > context_size:
            cache.reset()  # first step, or the window moved on: (re)fill the cache from the window
            logits = model(idx[:, -context_size:], kv_cache=cache)
        else:
            logits = model(idx[:, -1:], kv_cache=cache)  # (B, 1, vocab): only the newest token
        next_ids = pick_next(logits[:, -1, :].float(), temperature, top_k)  # (B, 1)
        if eos_id is not None and bool((next_ids == eos_id).all()):
            break
        idx = torch.cat((idx, next_ids), dim=1)
    return idx


@hookimpl
def register_decoders(register):
    register("kv-cache", generate, doc="Greedy, temperature or top-k decoding with a KV cache (the kit's default).")
