"""llmkit's production GPT against nanoGPT, trained side by side in one process.

nanoGPT is not part of llmkit: point this script at a checkout of karpathy/nanoGPT (its ``model.py``
is imported from there, unchanged) and both models train the gpt-mini configuration in turns:

    git clone https://github.com/karpathy/nanoGPT /tmp/nanoGPT
    python benchmarks/compare_nanogpt.py --nanogpt /tmp/nanoGPT                 # fp32, eager and compiled
    python benchmarks/compare_nanogpt.py --nanogpt /tmp/nanoGPT --precisions fp32,bf16 --json

nanoGPT runs as its train.py runs it: ``GPT(GPTConfig(...))`` with its default padded vocabulary
(50304; ``--nanogpt-vocab 50257`` for the exact one), ``configure_optimizers`` (plain AdamW on a CPU),
``torch.compile(model)`` and a bf16 autocast context. llmkit runs the production GPT with the same
shape (6 layers, 6 heads, 384 wide, context 256, batch 4, biases, no dropout, tied head), the
chunked loss, fused AdamW and ``torch.compile(fullgraph=True)``. Where this CPU would emulate bf16 (no
AVX512_BF16/AMX), bf16 paths are skipped unless ``--force-bf16``: a step would take minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from llmkit import autotune
from llmkit.bench_perf import PRESETS, TrainPath, flops_per_token, gemm_peaks, make_train_step, run_interleaved


def load_nanogpt(path: str):
    """nanoGPT's model module, imported from a checkout (a folder holding model.py, or model.py)."""
    file = Path(path)
    file = file / "model.py" if file.is_dir() else file
    if not file.is_file():
        raise SystemExit(f"{file} is missing: pass --nanogpt a checkout of https://github.com/karpathy/nanoGPT")
    spec = importlib.util.spec_from_file_location("nanogpt_model", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nanogpt_step(nano, cfg: dict, batch: int, vocab: int, precision: str, compile: bool, seed: int = 0):
    """One training step of nanoGPT the way its train.py takes one (minus gradient accumulation)."""
    torch.manual_seed(seed)
    config = nano.GPTConfig(block_size=cfg["context_length"], vocab_size=vocab, n_layer=cfg["n_layers"],
                            n_head=cfg["n_heads"], n_embd=cfg["emb_dim"], dropout=0.0, bias=True)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints parameter counts
        model = nano.GPT(config)
        optimizer = model.configure_optimizers(0.1, 6e-4, (0.9, 0.95), "cpu")
    forward = torch.compile(model) if compile else model
    data = torch.randint(0, cfg["vocab_size"], (batch, cfg["context_length"] + 1),
                         generator=torch.Generator().manual_seed(seed))
    x, y = data[:, :-1].contiguous(), data[:, 1:].contiguous()  # as its get_batch builds them
    ctx = torch.amp.autocast(device_type="cpu", dtype=torch.bfloat16) if precision == "bf16" \
        else contextlib.nullcontext()

    def step():
        with ctx:
            _, loss = forward(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nanogpt", required=True, help="a nanoGPT checkout (folder with model.py) or its model.py")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--nanogpt-vocab", type=int, default=50304, help="nanoGPT's default pads 50257 to 50304")
    parser.add_argument("--untied", action="store_true", help="also time llmkit's untied (book) head")
    parser.add_argument("--force-bf16", action="store_true", help="time bf16 even where this CPU emulates it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = (lambda line: None) if args.json else (lambda line: print(line, file=sys.stderr, flush=True))

    nano = load_nanogpt(args.nanogpt)
    spec = PRESETS["gpt-mini"]
    cfg, batch = spec["cfg"], spec["batch_size"]
    native, why = autotune.bf16_capability("cpu")
    precisions = [p for p in args.precisions.split(",") if p]
    skipped = []
    if "bf16" in precisions and not native and not args.force_bf16:
        precisions.remove("bf16")
        skipped.append(f"bf16: {why} (--force-bf16 times it anyway)")
    modes = [m for m in args.modes.split(",") if m]

    makers = {}
    for precision in precisions:
        for mode in modes:
            compiled = mode == "compiled"
            makers[f"nanoGPT {mode} {precision}"] = (
                lambda p=precision, c=compiled: nanogpt_step(nano, cfg, batch, args.nanogpt_vocab, p, c), precision)
            makers[f"llmkit {mode} {precision}"] = (
                lambda p=precision, c=compiled: make_train_step(
                    TrainPath("llmkit", precision=p, compile=c, tie_weights=True), cfg, batch), precision)
            if args.untied:
                makers[f"llmkit {mode} {precision} untied"] = (
                    lambda p=precision, c=compiled: make_train_step(
                        TrainPath("llmkit", precision=p, compile=c), cfg, batch), precision)

    peaks = gemm_peaks(sorted(set(precisions) | {"fp32"}))
    steps, warmup = {}, {}
    for name, (make, _) in makers.items():
        start = time.perf_counter()
        step = make()
        step(), step()  # compiles on the first call
        warmup[name] = time.perf_counter() - start
        steps[name] = step
        log(f"# {name}: built and warmed up in {warmup[name]:.1f} s")
    times = run_interleaved(steps, args.rounds)
    after = gemm_peaks(sorted(peaks))
    peaks = {k: max(v, after[k]) for k, v in peaks.items()}

    tokens = batch * cfg["context_length"]
    rows = []
    for name, (_, precision) in makers.items():
        fpt = flops_per_token(dict(cfg, vocab_size=args.nanogpt_vocab) if name.startswith("nanoGPT") else cfg)
        seconds = statistics.median(times[name])
        tps = tokens / seconds
        rows.append({"path": name, "precision": precision, "seconds_per_step": seconds, "tokens_per_s": tps,
                     "mfu": tps * fpt / 1e9 / peaks[precision], "warmup_s": warmup[name],
                     "all_seconds": times[name]})
    by_name = {r["path"]: r for r in rows}
    for r in rows:
        for key, other in (("vs_nanogpt_same_mode", r["path"].replace("llmkit", "nanoGPT").replace(" untied", "")),
                           ("vs_nanogpt_compiled_bf16", "nanoGPT compiled bf16"),
                           ("vs_nanogpt_compiled_fp32", "nanoGPT compiled fp32")):
            if other in by_name and not r["path"].startswith("nanoGPT"):
                r[key] = r["tokens_per_s"] / by_name[other]["tokens_per_s"]
    result = {"preset": "gpt-mini", "cfg": cfg, "batch_size": batch, "nanogpt_vocab": args.nanogpt_vocab,
              "rounds": args.rounds, "threads": torch.get_num_threads(), "machine": autotune.machine("cpu"),
              "bf16_native": native, "peak_gflops": peaks, "rows": rows, "skipped": skipped}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"gpt-mini (batch {batch} x {cfg['context_length']}), {result['threads']} threads, median of "
          f"{args.rounds} interleaved rounds; GEMM peak GFLOP/s: "
          + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    print(f"{'path':<28} {'s/step':>7} {'tokens/s':>9} {'MFU':>6} {'vs nanoGPT':>10} {'warm-up s':>9}")
    for r in rows:
        ratio = f"{r['vs_nanogpt_same_mode']:.2f}x" if "vs_nanogpt_same_mode" in r else "-"
        print(f"{r['path']:<28} {r['seconds_per_step']:>7.3f} {r['tokens_per_s']:>9.0f} {r['mfu']:>6.1%} "
              f"{ratio:>10} {r['warmup_s']:>9.1f}")
    for s in skipped:
        print(f"skipped {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
