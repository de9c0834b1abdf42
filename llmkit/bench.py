"""Benchmarks that print figures (tokens/s and ratios measured in the same run); nothing is asserted."""

from __future__ import annotations

import time

import torch

from .plugins import create

GPT_CONFIGS = {
    "124M": dict(vocab_size=50257, context_length=1024, emb_dim=768, n_heads=12, n_layers=12,
                 drop_rate=0.0, qkv_bias=False),
    "small": dict(vocab_size=50257, context_length=256, emb_dim=256, n_heads=4, n_layers=4,
                  drop_rate=0.0, qkv_bias=False),
}


def bench_generate(config: str = "124M", prompt_tokens: int = 32, new_tokens: int = 64,
                   attention: str | None = None, threads: int | None = None, seed: int = 123) -> list[dict]:
    """Greedy generation with and without the KV cache on one model; returns one row per path."""
    from llmkit_solutions.gpt import generate

    if threads:
        torch.set_num_threads(threads)
    cfg = dict(GPT_CONFIGS[config])
    if attention:
        cfg["attention"] = attention
    torch.manual_seed(seed)
    model = create("models", "gpt", cfg).eval()
    prompt = torch.randint(0, cfg["vocab_size"], (1, prompt_tokens), generator=torch.Generator().manual_seed(seed))

    rows, outputs = [], {}
    generate(model, prompt, 2, cfg["context_length"], use_cache=True)  # warm-up: allocator, kernels
    for use_cache in (False, True):
        start = time.perf_counter()
        out = generate(model, prompt, new_tokens, cfg["context_length"], use_cache=use_cache)
        seconds = time.perf_counter() - start
        outputs[use_cache] = out
        rows.append({"path": "kv-cache" if use_cache else "no cache", "seconds": seconds,
                     "tokens_per_s": new_tokens / seconds})
    baseline = rows[0]["tokens_per_s"]
    identical = torch.equal(outputs[False], outputs[True])
    for row in rows:
        row["ratio"] = row["tokens_per_s"] / baseline
        row["identical_tokens"] = identical
    return rows
