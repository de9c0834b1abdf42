"""llmkit's production GPT against nanoGPT, each trained in its own process, in turns.

nanoGPT is not part of llmkit: point this script at a checkout of karpathy/nanoGPT (its ``model.py``
is imported from there, unchanged) and both train the gpt-mini configuration:

    git clone https://github.com/karpathy/nanoGPT /tmp/nanoGPT
    python benchmarks/compare_nanogpt.py --nanogpt /tmp/nanoGPT --precisions bf16 --modes compiled
    python benchmarks/compare_nanogpt.py --nanogpt /tmp/nanoGPT --precisions fp32,bf16 --json

Every contestant is a separate Python process (as each library trains for real: a setting one makes
for its process does not reach the other), built and warmed up one after another; then the
coordinator asks each for one timed step in turn (A, B, C, A, B, C ...) and reports medians.

nanoGPT runs as its train.py runs it: ``GPT(GPTConfig(...))`` with its default padded vocabulary
(50304; ``--nanogpt-vocab 50257`` for the exact one), ``configure_optimizers`` (plain AdamW on a CPU),
``torch.compile(model)`` and a bf16 autocast context. A second nanoGPT row, "+kept memory", runs
the same code with llmkit's allocator setting (``llmkit.allocator``), so the table also shows how
much of the difference that one setting makes. llmkit runs its production training path, as
``llmkit.training.train`` does: the production GPT with the same shape (6 layers, 6 heads, 384 wide,
context 256, batch 4, biases, no dropout, tied head), the chunked loss, fused AdamW,
``torch.compile(fullgraph=True)`` and the allocator setting. Where this CPU would emulate bf16 (no
AVX512_BF16/AMX), bf16 paths are skipped unless ``--force-bf16``: a step would take minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from llmkit import autotune
from llmkit.allocator import keep_freed_memory
from llmkit.bench_perf import PRESETS, TrainPath, flops_per_token, gemm_peaks, make_train_step


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


def contestants(precisions: list[str], modes: list[str], untied: bool) -> list[dict]:
    """What to race: one dict per process, in the order of the table."""
    out = []
    for precision in precisions:
        for mode in modes:
            base = {"precision": precision, "compiled": mode == "compiled"}
            out.append(dict(base, name=f"nanoGPT {mode} {precision}", kind="nanogpt", keep_memory=False))
            out.append(dict(base, name=f"nanoGPT {mode} {precision} +kept memory", kind="nanogpt", keep_memory=True))
            out.append(dict(base, name=f"llmkit {mode} {precision}", kind="llmkit", keep_memory=True, tied=True))
            if untied:
                out.append(dict(base, name=f"llmkit {mode} {precision} untied", kind="llmkit",
                                keep_memory=True, tied=False))
    return out


def worker(spec: dict) -> int:
    """Build one contestant's step, warm it up, then time one step per 'step' line on stdin."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    allocator = keep_freed_memory() if spec["keep_memory"] else "as the process starts (glibc defaults)"
    cfg, batch = PRESETS["gpt-mini"]["cfg"], PRESETS["gpt-mini"]["batch_size"]
    start = time.perf_counter()
    if spec["kind"] == "nanogpt":
        step = nanogpt_step(load_nanogpt(spec["nanogpt"]), cfg, batch, spec["nanogpt_vocab"],
                            spec["precision"], spec["compiled"])
    else:
        step = make_train_step(TrainPath("llmkit", precision=spec["precision"], compile=spec["compiled"],
                                         tie_weights=spec["tied"]), cfg, batch)
    loss = float(step())  # compiles forward and backward on the first call
    step()
    print(json.dumps({"ready": time.perf_counter() - start, "first_loss": loss, "allocator": allocator,
                      "threads": torch.get_num_threads(), "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        t = time.perf_counter()
        step()
        print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)
    return 0


class Contestant:
    """A worker process and the pipe to it."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.spec['name']}: its process ended early (exit {self.proc.wait()}); see above")
        return json.loads(line)

    def step(self) -> float:
        self.proc.stdin.write("step\n")
        self.proc.stdin.flush()
        return self._read()["seconds"]

    def close(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nanogpt", help="a nanoGPT checkout (folder with model.py) or its model.py")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--modes", default="eager,compiled")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--nanogpt-vocab", type=int, default=50304, help="nanoGPT's default pads 50257 to 50304")
    parser.add_argument("--untied", action="store_true", help="also time llmkit's untied (book) head")
    parser.add_argument("--force-bf16", action="store_true", help="time bf16 even where this CPU emulates it")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one contestant
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if not args.nanogpt:
        parser.error("--nanogpt is required: a checkout of https://github.com/karpathy/nanoGPT")
    load_nanogpt(args.nanogpt)  # fail here, in one line, if it is not a checkout
    if args.threads:
        torch.set_num_threads(args.threads)
    log = (lambda line: None) if args.json else (lambda line: print(line, file=sys.stderr, flush=True))

    cfg, batch = PRESETS["gpt-mini"]["cfg"], PRESETS["gpt-mini"]["batch_size"]
    native, why = autotune.bf16_capability("cpu")
    precisions = [p for p in args.precisions.split(",") if p]
    skipped = []
    if "bf16" in precisions and not native and not args.force_bf16:
        precisions.remove("bf16")
        skipped.append(f"bf16: {why} (--force-bf16 times it anyway)")
    modes = [m for m in args.modes.split(",") if m]
    specs = [dict(s, nanogpt=args.nanogpt, nanogpt_vocab=args.nanogpt_vocab, threads=args.threads)
             for s in contestants(precisions, modes, args.untied)]

    peaks = gemm_peaks(sorted(set(precisions) | {"fp32"}))
    racers: dict[str, Contestant] = {}
    try:
        for spec in specs:  # one at a time: compiling is not what is measured
            racers[spec["name"]] = racer = Contestant(spec)
            log(f"# {spec['name']}: own process, built and warmed up in {racer.ready['ready']:.1f} s, "
                f"first loss {racer.ready['first_loss']:.4f}")
        times = {name: [] for name in racers}
        for _ in range(args.rounds):
            for name, racer in racers.items():
                times[name].append(racer.step())
    finally:
        for racer in racers.values():
            racer.close()
    after = gemm_peaks(sorted(peaks))
    peaks = {k: max(v, after[k]) for k, v in peaks.items()}

    tokens = batch * cfg["context_length"]
    rows = []
    for spec in specs:
        name = spec["name"]
        fpt = flops_per_token(dict(cfg, vocab_size=args.nanogpt_vocab) if spec["kind"] == "nanogpt" else cfg)
        seconds = statistics.median(times[name])
        tps = tokens / seconds
        rows.append({"path": name, "precision": spec["precision"], "seconds_per_step": seconds, "tokens_per_s": tps,
                     "mfu": tps * fpt / 1e9 / peaks[spec["precision"]], "warmup_s": racers[name].ready["ready"],
                     "allocator": racers[name].ready["allocator"], "pid": racers[name].ready["pid"],
                     "all_seconds": times[name]})
    by_name = {r["path"]: r for r in rows}
    for r in rows:
        if r["path"].startswith("nanoGPT"):
            continue
        same = r["path"].replace("llmkit", "nanoGPT").replace(" untied", "")
        for key, other in (("vs_nanogpt_same_mode", same), ("vs_nanogpt_kept_memory", same + " +kept memory"),
                           ("vs_nanogpt_compiled_bf16", "nanoGPT compiled bf16"),
                           ("vs_nanogpt_compiled_fp32", "nanoGPT compiled fp32")):
            if other in by_name:
                r[key] = r["tokens_per_s"] / by_name[other]["tokens_per_s"]
    result = {"preset": "gpt-mini", "cfg": cfg, "batch_size": batch, "nanogpt_vocab": args.nanogpt_vocab,
              "rounds": args.rounds, "threads": next(iter(racers.values())).ready["threads"] if racers else None,
              "machine": autotune.machine("cpu"), "bf16_native": native, "peak_gflops": peaks,
              "processes": "one per contestant", "rows": rows, "skipped": skipped}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"gpt-mini (batch {batch} x {cfg['context_length']}), {result['threads']} threads, one process per "
          f"path, median of {args.rounds} interleaved rounds; GEMM peak GFLOP/s: "
          + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    print(f"{'path':<40} {'s/step':>7} {'tokens/s':>9} {'MFU':>6} {'vs nanoGPT':>10} {'vs +kept':>8} {'warm-up s':>9}")
    for r in rows:
        ratio = f"{r['vs_nanogpt_same_mode']:.2f}x" if "vs_nanogpt_same_mode" in r else "-"
        kept = f"{r['vs_nanogpt_kept_memory']:.2f}x" if "vs_nanogpt_kept_memory" in r else "-"
        print(f"{r['path']:<40} {r['seconds_per_step']:>7.3f} {r['tokens_per_s']:>9.0f} {r['mfu']:>6.1%} "
              f"{ratio:>10} {kept:>8} {r['warmup_s']:>9.1f}")
    for s in skipped:
        print(f"skipped {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
