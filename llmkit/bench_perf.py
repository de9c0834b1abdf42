"""Performance benchmarks: training tokens/s with MFU, and generation tokens/s against other paths.

Every figure comes from one process: the paths run in turns (A, B, C, A, B, C ...) and each reports
the median, so a machine shared with other work slows them alike; the matmul peaks that MFU divides
by are measured in the same run (the fastest of several GEMMs, before and after the paths).

    python -m llmkit.bench_perf train --preset gpt-mini            # reference vs production paths
    python -m llmkit.bench_perf train --preset gpt-mini --json     # one JSON document, for CI logs
    python -m llmkit.bench_perf generate                           # 124M: production vs reference vs HF

MFU counts the matmul FLOPs of a step, 6 per weight per token for forward and backward, plus the
attention scores and values over the full window (12 * layers * T * emb_dim per token: nanoGPT's
and PaLM's convention), against the measured GEMM peak of the path's precision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from . import autotune
from .allocator import keep_freed_memory
from .plugins import create, get, names

PRESETS = {
    # The issue's benchmark model: 6 layers, 384 wide, GPT-2 vocabulary, context 256, batch 4.
    "gpt-mini": dict(cfg=dict(vocab_size=50257, context_length=256, emb_dim=384, n_heads=6, n_layers=6,
                              drop_rate=0.0, qkv_bias=True), batch_size=4),
    # GPT-2 small with the book's training context.
    "124M": dict(cfg=dict(vocab_size=50257, context_length=256, emb_dim=768, n_heads=12, n_layers=12,
                          drop_rate=0.0, qkv_bias=True), batch_size=2),
    # Seconds, for tests.
    "tiny": dict(cfg=dict(vocab_size=512, context_length=32, emb_dim=64, n_heads=4, n_layers=2,
                          drop_rate=0.0, qkv_bias=True), batch_size=2),
}
GPT2_124M = dict(vocab_size=50257, context_length=1024, emb_dim=768, n_heads=12, n_layers=12, drop_rate=0.0,
                 qkv_bias=True)


def flops_per_token(cfg: dict) -> float:
    """Training FLOPs per token: 6 x matmul weights (blocks and head) + attention over the window."""
    e, layers = cfg["emb_dim"], cfg["n_layers"]
    matmul_weights = layers * 12 * e * e + e * cfg["vocab_size"]  # QKV+out 4E^2, MLP 8E^2; the head
    return 6 * matmul_weights + 12 * layers * cfg["context_length"] * e


def gemm_peaks(precisions=("fp32", "bf16")) -> dict[str, float]:
    """GFLOP/s per precision: fp32 on 1024^3; bf16 on 256^3 where it is emulated (it is 100x slower)."""
    peaks = {}
    native = autotune.bf16_capability("cpu")[0]
    for p in precisions:
        n = 1024 if p == "fp32" or native else 256
        peaks[p] = max(autotune.matmul_gflops("cpu", dtypes=(p,), n=n, repeats=5)[p],
                       autotune.matmul_gflops("cpu", dtypes=(p,), n=512, repeats=5)[p])
    return peaks


def run_interleaved(steps: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each call, the steps taken in turns for ``rounds`` rounds."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------- training


@dataclass
class TrainPath:
    """One way to train: which model, precision and tricks."""

    name: str
    model: str = "gpt"  # registry name: "gpt" (production) or "gpt-book" (the reference)
    precision: str = "fp32"
    compile: bool = False
    tie_weights: bool = False
    fused_loss: bool = True  # model(x, targets=y); False: cross-entropy of the full logits
    fused_adamw: bool = True


DEFAULT_TRAIN_PATHS = [
    TrainPath("book (reference)", model="gpt-book", fused_loss=False, fused_adamw=False),
    TrainPath("gpt eager", fused_loss=False, fused_adamw=False),  # same model, only the kernels change
    TrainPath("gpt eager +loss +adamw"),
    TrainPath("gpt eager +tied", tie_weights=True),
    TrainPath("gpt compiled", compile=True),
    TrainPath("gpt compiled +tied", compile=True, tie_weights=True),
]


def make_train_step(path: TrainPath, cfg: dict, batch_size: int, seed: int = 0) -> Callable[[], float]:
    """A closure running one training step of ``path`` (forward, backward, AdamW) on fixed random data."""
    torch.manual_seed(seed)
    model_cfg = dict(cfg, tie_weights=True) if path.tie_weights else dict(cfg)
    model = create("models", path.model, model_cfg).train()
    data = torch.randint(0, cfg["vocab_size"], (batch_size, cfg["context_length"] + 1),
                         generator=torch.Generator().manual_seed(seed))
    inputs, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=4e-4, betas=(0.9, 0.95), **({"fused": True} if path.fused_adamw else {}))
    forward = torch.compile(model, fullgraph=path.model == "gpt", dynamic=False) if path.compile else model
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(path.precision)

    def step():
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            if path.fused_loss:
                loss = forward(inputs, targets=targets)
            else:
                logits = forward(inputs)  # (B, T, V)
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def bench_train(preset: str = "gpt-mini", paths: list[TrainPath] | None = None, rounds: int = 5,
                threads: int | None = None, seed: int = 0, log=None) -> dict:
    """Tokens/s, step time and MFU of each path, measured interleaved in this process."""
    if threads:
        torch.set_num_threads(threads)
    allocator = keep_freed_memory()  # as train() does; a process-wide setting, so every path gets it
    spec = PRESETS[preset]
    cfg, batch = spec["cfg"], spec["batch_size"]
    paths = list(paths or DEFAULT_TRAIN_PATHS)
    known = set(names("models"))
    skipped = [{"path": p.name, "reason": f"model '{p.model}' is not registered"} for p in paths if p.model not in known]
    paths = [p for p in paths if p.model in known]
    precisions = sorted({p.precision for p in paths} | {"fp32"})
    peaks_before = gemm_peaks(precisions)
    steps, warmup = {}, {}
    for p in paths:
        start = time.perf_counter()
        step = make_train_step(p, cfg, batch, seed)
        step(), step()  # warm-up; a compiled path compiles forward and backward here
        warmup[p.name] = time.perf_counter() - start
        steps[p.name] = step
        if log:
            log(f"# {p.name}: built and warmed up in {warmup[p.name]:.1f} s")
    times = run_interleaved(steps, rounds)
    peaks_after = gemm_peaks(precisions)
    peaks = {k: max(peaks_before[k], peaks_after[k]) for k in precisions}
    tokens = batch * cfg["context_length"]
    fpt = flops_per_token(cfg)
    rows = []
    for p in paths:
        seconds = statistics.median(times[p.name])
        tps = tokens / seconds
        rows.append({**asdict(p), "seconds_per_step": seconds, "tokens_per_s": tps,
                     "gflops": tps * fpt / 1e9, "mfu": tps * fpt / 1e9 / peaks[p.precision],
                     "mfu_vs_fp32_peak": tps * fpt / 1e9 / peaks["fp32"], "warmup_s": warmup[p.name],
                     "all_seconds": times[p.name]})
    base = rows[0]["tokens_per_s"] if rows else 1.0
    for r in rows:
        r["ratio"] = r["tokens_per_s"] / base
    return {"bench": "train", "preset": preset, "cfg": cfg, "batch_size": batch, "rounds": rounds,
            "threads": torch.get_num_threads(), "machine": autotune.machine("cpu"),
            "bf16_native": autotune.bf16_capability("cpu"), "flops_per_token": fpt,
            "peak_gflops": peaks, "keep_freed_memory": allocator, "rows": rows, "skipped": skipped}


def print_train(result: dict) -> None:
    peaks = ", ".join(f"{k} {v:.0f}" for k, v in result["peak_gflops"].items())
    print(f"training, preset {result['preset']} (batch {result['batch_size']} x {result['cfg']['context_length']}), "
          f"{result['threads']} threads, median of {result['rounds']} interleaved rounds; "
          f"GEMM peak GFLOP/s: {peaks}; {result['flops_per_token'] / 1e6:.1f} MFLOP/token; "
          f"keep freed memory: {result['keep_freed_memory']}")
    print(f"{'path':<26} {'prec':<5} {'s/step':>7} {'tokens/s':>9} {'MFU':>6} {'ratio':>6} {'warm-up s':>9}")
    for r in result["rows"]:
        print(f"{r['name']:<26} {r['precision']:<5} {r['seconds_per_step']:>7.3f} {r['tokens_per_s']:>9.0f} "
              f"{r['mfu']:>6.1%} {r['ratio']:>5.2f}x {r['warmup_s']:>9.1f}")
    for s in result["skipped"]:
        print(f"skipped {s['path']}: {s['reason']}")


# --------------------------------------------------------------------------- generation


def hf_gpt2_from(model, cfg: dict):
    """A transformers GPT2LMHeadModel holding exactly ``model``'s weights (book names -> GPT-2's)."""
    import transformers

    config = transformers.GPT2Config(vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"],
                                     n_embd=cfg["emb_dim"], n_layer=cfg["n_layers"], n_head=cfg["n_heads"],
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False)
    hf = transformers.GPT2LMHeadModel(config).eval()
    sd = model.state_dict()
    new = {"transformer.wte.weight": sd["tok_emb.weight"], "transformer.wpe.weight": sd["pos_emb.weight"],
           "transformer.ln_f.weight": sd["final_norm.scale"], "transformer.ln_f.bias": sd["final_norm.shift"],
           "lm_head.weight": sd["out_head.weight"]}
    for i in range(cfg["n_layers"]):
        b, h = f"trf_blocks.{i}.", f"transformer.h.{i}."
        qkv = [sd[b + f"att.W_{n}.weight"] for n in ("query", "key", "value")]
        new[h + "attn.c_attn.weight"] = torch.cat(qkv).t()  # GPT-2's Conv1D stores (in, out)
        new[h + "attn.c_attn.bias"] = torch.cat([sd[b + f"att.W_{n}.bias"] for n in ("query", "key", "value")])
        new[h + "attn.c_proj.weight"] = sd[b + "att.out_proj.weight"].t()
        new[h + "attn.c_proj.bias"] = sd[b + "att.out_proj.bias"]
        new[h + "mlp.c_fc.weight"] = sd[b + "ff.layers.0.weight"].t()
        new[h + "mlp.c_fc.bias"] = sd[b + "ff.layers.0.bias"]
        new[h + "mlp.c_proj.weight"] = sd[b + "ff.layers.2.weight"].t()
        new[h + "mlp.c_proj.bias"] = sd[b + "ff.layers.2.bias"]
        for ours, theirs in (("norm1", "ln_1"), ("norm2", "ln_2")):
            new[h + f"{theirs}.weight"] = sd[b + f"{ours}.scale"]
            new[h + f"{theirs}.bias"] = sd[b + f"{ours}.shift"]
    missing, unexpected = hf.load_state_dict({k: v.contiguous() for k, v in new.items()}, strict=False)
    missing = [k for k in missing if not k.endswith((".attn.bias", ".attn.masked_bias"))]
    if missing or unexpected:
        raise RuntimeError(f"GPT-2 conversion left {missing} missing and {unexpected} unexpected")
    return hf


def bench_generate(batch_size: int = 1, prompt_tokens: int = 32, new_tokens: int = 64, rounds: int = 3,
                   threads: int | None = None, seed: int = 123, cfg: dict | None = None,
                   extra: tuple = ("bf16", "int8", "int8-dynamic"), hf: bool = True, lookup: int = 8, draft_tokens: int = 8,
                   log=None) -> dict:
    """Greedy decoding tokens/s: production (fp32, with prompt lookup, bf16/int8 copies alone and as
    drafts that fp32 checks), the reference, and HF."""
    from llmkit_gpt import generate, quantize_for_decoding  # the production decoder and its copies

    if threads:
        torch.set_num_threads(threads)
    cfg = dict(cfg or GPT2_124M)
    torch.manual_seed(seed)
    model = create("models", "gpt", cfg).eval()
    prompt = torch.randint(0, cfg["vocab_size"], (batch_size, prompt_tokens),
                           generator=torch.Generator().manual_seed(seed))
    ctx = cfg["context_length"]
    paths: dict[str, Callable[[], torch.Tensor]] = {"gpt fp32 (production)": lambda: generate(model, prompt, new_tokens)}
    skipped = []
    if "gpt-book" in names("models"):
        ref = create("models", "gpt-book", cfg).eval()
        ref.load_state_dict(model.state_dict())
        book = get("decoders", "book").factory if "book" in names("decoders") else None
        if book is not None:
            paths["book + KV cache (reference)"] = lambda: book(ref, prompt, new_tokens, ctx, use_cache=True)
        else:
            skipped.append({"path": "reference", "reason": "decoder 'book' is not registered"})
    else:
        skipped.append({"path": "reference", "reason": "model 'gpt-book' is not registered"})
    if hf:
        try:
            hf_model = hf_gpt2_from(model, cfg)
            mask = torch.ones_like(prompt)

            def hf_generate():
                with torch.no_grad():
                    return hf_model.generate(prompt, attention_mask=mask, max_new_tokens=new_tokens,
                                             min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                                             pad_token_id=cfg["vocab_size"] - 1)
            paths["transformers GPT2 generate"] = hf_generate
        except ImportError:
            skipped.append({"path": "transformers", "reason": "transformers is not installed (pip install -e '.[dev]')"})
    if lookup:
        paths[f"gpt fp32 + lookup {lookup}"] = lambda: generate(model, prompt, new_tokens, lookup=lookup)
    copies = {d: quantize_for_decoding(model, d) for d in extra}
    for d, copy in copies.items():
        paths[f"gpt {d} copy"] = (lambda c=copy: generate(c, prompt, new_tokens))
    if draft_tokens:
        for d, copy in copies.items():  # fp32's own greedy ids, guessed ahead by the lighter copy
            paths[f"gpt fp32 + {d} draft {draft_tokens}"] = (
                lambda c=copy: generate(model, prompt, new_tokens, draft=c, draft_tokens=draft_tokens))
    outputs = {}
    for name, fn in paths.items():
        start = time.perf_counter()
        outputs[name] = fn()  # warm-up, and the ids compared below
        if log:
            log(f"# {name}: warm-up {time.perf_counter() - start:.1f} s")
    times = run_interleaved(paths, rounds)
    production = outputs["gpt fp32 (production)"]
    rows = []
    for name in paths:
        seconds = statistics.median(times[name])
        same = outputs[name].shape == production.shape and torch.equal(outputs[name], production)
        agree = float((outputs[name][:, prompt_tokens:] == production[:, prompt_tokens:]).float().mean()) \
            if outputs[name].shape == production.shape else 0.0
        rows.append({"path": name, "seconds": seconds, "tokens_per_s": batch_size * new_tokens / seconds,
                     "identical_to_production_fp32": same, "token_agreement": agree, "all_seconds": times[name]})
    by_name = {r["path"]: r["tokens_per_s"] for r in rows}
    for r in rows:
        for other, key in (("transformers GPT2 generate", "vs_hf"), ("book + KV cache (reference)", "vs_reference")):
            if other in by_name:
                r[key] = r["tokens_per_s"] / by_name[other]
    return {"bench": "generate", "cfg": cfg, "batch_size": batch_size, "prompt_tokens": prompt_tokens,
            "new_tokens": new_tokens, "rounds": rounds, "threads": torch.get_num_threads(),
            "machine": autotune.machine("cpu"), "rows": rows, "skipped": skipped}


def print_generate(result: dict) -> None:
    print(f"greedy generation, {result['cfg']['n_layers']}-layer {result['cfg']['emb_dim']}-wide GPT, batch "
          f"{result['batch_size']}, {result['prompt_tokens']}-token prompt, {result['new_tokens']} new tokens, "
          f"{result['threads']} threads, median of {result['rounds']} interleaved rounds")
    print(f"{'path':<30} {'tokens/s':>9} {'vs HF':>6} {'vs ref':>6}  same ids as production fp32")
    for r in result["rows"]:
        vs_hf = f"{r['vs_hf']:.2f}x" if "vs_hf" in r else "-"
        vs_ref = f"{r['vs_reference']:.2f}x" if "vs_reference" in r else "-"
        same = "yes" if r["identical_to_production_fp32"] else f"no ({r['token_agreement']:.0%} of tokens)"
        print(f"{r['path']:<30} {r['tokens_per_s']:>9.1f} {vs_hf:>6} {vs_ref:>6}  {same}")
    for s in result["skipped"]:
        print(f"skipped {s['path']}: {s['reason']}")


# --------------------------------------------------------------------------- command line


def parse_paths(spec: str | None) -> list[TrainPath] | None:
    """"book,gpt,gpt+compile+tied+bf16" -> TrainPaths; None keeps the default set."""
    if not spec:
        return None
    paths = []
    for item in spec.split(","):
        parts = item.strip().split("+")
        base = parts[0]
        path = TrainPath(item.strip(), model="gpt-book" if base == "book" else "gpt")
        if base == "book":
            path.fused_loss = path.fused_adamw = False
        for flag in parts[1:]:
            if flag in ("bf16", "fp32"):
                path.precision = flag
            elif flag == "compile":
                path.compile = True
            elif flag == "tied":
                path.tie_weights = True
            elif flag == "plain":
                path.fused_loss = path.fused_adamw = False
            else:
                raise SystemExit(f"unknown path flag '{flag}' in '{item}': use bf16, fp32, compile, tied or plain")
        paths.append(path)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmkit.bench_perf", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="training tokens/s and MFU per path")
    t.add_argument("--preset", default="gpt-mini", choices=sorted(PRESETS))
    t.add_argument("--paths", default=None, help="comma list, e.g. book,gpt,gpt+compile,gpt+compile+tied+bf16")
    t.add_argument("--rounds", type=int, default=5)
    g = sub.add_parser("generate", help="generation tokens/s: production, reference, transformers")
    g.add_argument("--batch-size", type=int, default=1)
    g.add_argument("--prompt-tokens", type=int, default=32)
    g.add_argument("--new-tokens", type=int, default=64)
    g.add_argument("--rounds", type=int, default=3)
    g.add_argument("--copies", default="bf16,int8,int8-dynamic", help="lighter decoding copies to time too ('' for none)")
    g.add_argument("--lookup", type=int, default=8, help="also time prompt-lookup decoding with this many guesses (0: no)")
    g.add_argument("--draft", type=int, default=8,
                   help="also time fp32 checking this many guesses of each copy per pass (0: no)")
    g.add_argument("--no-hf", action="store_true")
    for p in (t, g):
        p.add_argument("--threads", type=int, default=None)
        p.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args(argv)
    log = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    if args.command == "train":
        result = bench_train(args.preset, parse_paths(args.paths), args.rounds, args.threads, log=log)
        show = print_train
    else:
        copies = tuple(c for c in args.copies.split(",") if c)
        result = bench_generate(args.batch_size, args.prompt_tokens, args.new_tokens, args.rounds, args.threads,
                                extra=copies, hf=not args.no_hf, lookup=args.lookup, draft_tokens=args.draft, log=log)
        show = print_generate
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        show(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
