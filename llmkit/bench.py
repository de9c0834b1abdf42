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
                   attention: str | None = None, threads: int | None = None, seed: int = 123,
                   model: str = "gpt") -> list[dict]:
    """Greedy generation on one model: the kit's decoder without and with its KV cache, and the book's
    ``generate`` when the reference is loaded; one row per path, ratios to the uncached one."""
    from .decoding import DEFAULT_DECODER, decoder
    from .plugins import names

    if threads:
        torch.set_num_threads(threads)
    cfg = dict(GPT_CONFIGS[config])
    if attention:
        cfg["attention"] = attention
    torch.manual_seed(seed)
    gpt = create("models", model, cfg).eval()
    prompt = torch.randint(0, cfg["vocab_size"], (1, prompt_tokens), generator=torch.Generator().manual_seed(seed))
    kit = decoder(DEFAULT_DECODER)
    paths = {"no cache": lambda *a: kit(*a, use_cache=False), "kv-cache": kit}
    if "book" in names("decoders"):
        paths["book"] = decoder("book")

    rows, outputs = [], {}
    kit(gpt, prompt, 2, cfg["context_length"])  # warm-up: allocator, kernels
    for path, generate in paths.items():
        start = time.perf_counter()
        out = generate(gpt, prompt, new_tokens, cfg["context_length"])
        seconds = time.perf_counter() - start
        outputs[path] = out
        rows.append({"path": path, "seconds": seconds, "tokens_per_s": new_tokens / seconds})
    baseline = rows[0]["tokens_per_s"]
    identical = all(torch.equal(outputs["no cache"], out) for out in outputs.values())
    for row in rows:
        row["ratio"] = row["tokens_per_s"] / baseline
        row["identical_tokens"] = identical
    return rows


def bench_train(config: str = "run", attentions=("mha",), precisions=("fp32",), steps: int = 8,
                batch_size: int = 8, threads: int | None = None, seed: int = 123, model: str = "gpt") -> list[dict]:
    """Training tokens/s (forward, backward, AdamW step) of ``model`` per attention and precision (the
    book's GPTModel, ``gpt-book``, takes any attention plugin by name; the kit's ``gpt`` its own)."""
    from .allocator import keep_freed_memory
    from .devices import CPUDevice
    from .runconfig import ModelConfig
    from .training import lm_loss, make_optimizer

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()  # as train() does on the CPU
    if config == "run":
        m = ModelConfig()
        cfg = dict(vocab_size=1024, context_length=m.context_length, emb_dim=m.emb_dim, n_heads=m.n_heads,
                   n_layers=m.n_layers, drop_rate=m.drop_rate, qkv_bias=m.qkv_bias)
    else:
        cfg = dict(GPT_CONFIGS[config], drop_rate=0.1)
    if config == "124M":
        cfg["context_length"] = 256
    T = cfg["context_length"]
    data = torch.randint(0, cfg["vocab_size"], (batch_size, T + 1), generator=torch.Generator().manual_seed(seed))
    inputs, targets = data[:, :-1], data[:, 1:]
    rows = []
    for attention in attentions:
        for precision in precisions:
            device = CPUDevice(precision)
            torch.manual_seed(seed)
            # "mha" is the model's own attention (the book's MultiHeadAttention or its equal), as in a run config.
            net = create("models", model, cfg if attention == "mha" else {**cfg, "attention": attention}).train()
            optimizer = make_optimizer(net, 1e-4, 0.1)

            def step():
                with device.autocast():
                    loss = lm_loss(net, inputs, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                return loss.item()

            step()  # warm-up
            start = time.perf_counter()
            for _ in range(steps):
                step()
            seconds = time.perf_counter() - start
            rows.append({"attention": attention, "precision": precision, "seconds_per_step": seconds / steps,
                         "tokens_per_s": steps * batch_size * T / seconds})
    reference = next((r for r in rows if r["attention"] == "mha" and r["precision"] == "fp32"), rows[0])
    for row in rows:
        row["ratio"] = row["tokens_per_s"] / reference["tokens_per_s"]
    return rows


def print_train_table(rows: list[dict], args) -> None:
    print(f"training throughput, config {args.config}, batch {args.batch_size}, {args.steps} timed steps, "
          f"{torch.get_num_threads()} threads; ratio to mha/fp32 measured in this run")
    print(f"{'attention':<16} {'precision':<9} {'s/step':>7} {'tokens/s':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['attention']:<16} {r['precision']:<9} {r['seconds_per_step']:>7.3f} "
              f"{r['tokens_per_s']:>9.0f} {r['ratio']:>5.2f}x")
