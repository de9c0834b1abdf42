"""``llmkit compare models gpt lstm ssm``: sequence models side by side, at equal size and equal time.

Each model named (any ``models`` plugin with the book's cfg dict) is sized to about the same number
of parameters (its ``emb_dim`` is searched on the meta device, everything else shared), then trained
on the same corpus, tokenizer and batches for the same time budget (wall clock by default; ``--set
clock=cpu`` counts this process's CPU time, fair on a machine others load). Validation loss is measured
on the same fixed windows at the same moments of the budget (evaluation time is not counted), so the
table and the plot answer: with this much model and this much time, which architecture learns most?

    llmkit compare models gpt lstm ssm --params 300000 --seconds 60
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..data import load_corpus, split_documents
from ..errors import LLMKitError
from ..plugins import create
from ..tokenizers import build_tokenizer, encode_text, vocab_size
from ..training import lm_loss, make_optimizer


@dataclass
class CompareConfig:
    models: list = field(default_factory=lambda: ["gpt", "lstm", "ssm"])
    params: int = 300_000  # target parameter count, embeddings included
    seconds: float = 60.0  # training time per model
    clock: str = "wall"  # "wall", or "cpu" (this process's CPU time: fair on a machine others are loading)
    corpus: str = "builtin"
    vocab_size: int = 512
    context_length: int = 64
    n_layers: int = 2
    n_heads: int = 4
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 20
    evals: int = 8  # validation points spread over the budget
    eval_windows: int = 32
    threads: int = 0
    seed: int = 123


def model_cfg(c: CompareConfig, n_vocab: int, emb_dim: int) -> dict:
    return {"vocab_size": n_vocab, "context_length": c.context_length, "emb_dim": emb_dim, "n_heads": c.n_heads,
            "n_layers": c.n_layers, "drop_rate": 0.0, "qkv_bias": False}


def count(name: str, cfg: dict) -> int:
    with torch.device("meta"):
        model = create("models", name, cfg)
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def sized(name: str, c: CompareConfig, n_vocab: int) -> tuple[dict, int]:
    """The cfg whose parameter count is closest to ``c.params`` (emb_dim a multiple of n_heads)."""
    best = None
    for emb in range(c.n_heads * 2, 1025, c.n_heads):
        cfg = model_cfg(c, n_vocab, emb)
        n = count(name, cfg)
        if best is None or abs(n - c.params) < abs(best[1] - c.params):
            best = (cfg, n)
        if n > c.params:
            break
    return best


def windows(ids: list, length: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` non-overlapping (length + 1)-token windows: (N, length + 1)."""
    data = torch.tensor(ids)
    n = min(limit, (len(data) - 1) // length)
    if n == 0:
        raise LLMKitError(f"the validation text has {len(data)} tokens, fewer than one window; use a longer corpus.")
    return torch.stack([data[i * length : i * length + length + 1] for i in range(n)])


@torch.no_grad()
def val_loss(model, val: torch.Tensor, batch_size: int) -> float:
    model.eval()
    losses = [lm_loss(model, w[:, :-1], w[:, 1:]).item() * len(w) for w in val.split(batch_size)]
    model.train()
    return sum(losses) / len(val)


def train_for(name: str, cfg: dict, train_ids: list, val: torch.Tensor, c: CompareConfig) -> dict:
    """Train ``name`` for ``c.seconds`` of wall time; validation loss at ``c.evals`` moments."""
    torch.manual_seed(c.seed)
    model = create("models", name, cfg)
    optimizer = make_optimizer(model, c.lr, 0.1)
    sampler = create("samplers", "random-block", train_ids, c.batch_size, c.context_length, seed=c.seed,
                     num_batches=10**9)
    curve = [{"seconds": 0.0, "step": 0, "val_loss": val_loss(model, val, c.batch_size)}]
    if c.clock not in ("wall", "cpu"):
        raise LLMKitError(f"clock must be 'wall' or 'cpu', got {c.clock!r}.")
    now = time.perf_counter if c.clock == "wall" else time.process_time
    spent, step, next_eval = 0.0, 0, c.seconds / c.evals
    batches = iter(sampler)
    while spent < c.seconds:
        inputs, targets = next(batches)
        started = now()
        for group in optimizer.param_groups:
            group["lr"] = c.lr * min(1.0, (step + 1) / c.warmup_steps)
        loss = lm_loss(model, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        spent += now() - started
        step += 1
        if spent >= next_eval or spent >= c.seconds:
            curve.append({"seconds": round(spent, 2), "step": step, "val_loss": val_loss(model, val, c.batch_size)})
            next_eval += c.seconds / c.evals
    return {"model": name, "emb_dim": cfg["emb_dim"], "parameters": count(name, cfg), "steps": step,
            "tokens_per_s": step * c.batch_size * c.context_length / max(spent, 1e-9),
            "val_loss": curve[-1]["val_loss"], "best_val_loss": min(p["val_loss"] for p in curve), "curve": curve}


def compare_models(c: CompareConfig, out_dir: Path | None = None, log=print) -> list[dict]:
    if c.threads:
        torch.set_num_threads(c.threads)
    train_text, val_text = split_documents(load_corpus(c.corpus), 0.1, c.seed)
    tokenizer = build_tokenizer("bpe", train_text, vocab_size=c.vocab_size)
    train_ids, val_ids = encode_text(tokenizer, train_text), encode_text(tokenizer, val_text)
    val = windows(val_ids, c.context_length, c.eval_windows)
    n_vocab = vocab_size(tokenizer)
    rows = []
    for name in c.models:
        cfg, n = sized(name, c, n_vocab)
        log(f"{name}: emb_dim {cfg['emb_dim']}, {n:,} parameters, training for {c.seconds:.0f} s ...")
        rows.append(train_for(name, cfg, train_ids, val, c))
        log(f"{name}: {rows[-1]['steps']} steps, val loss {rows[-1]['val_loss']:.3f}")
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "models.json").write_text(json.dumps({"config": asdict(c), "rows": rows}, indent=1))
        plot(rows, out_dir / "models.png", c)
        (out_dir / "models.md").write_text(report(rows, c, math.log(n_vocab)))
    return rows


def plot(rows: list[dict], path: Path, c: CompareConfig) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.plot([p["seconds"] for p in r["curve"]], [p["val_loss"] for p in r["curve"]], marker="o", ms=3,
                label=f"{r['model']} ({r['parameters']:,} params, {r['steps']} steps)")
    ax.set_xlabel(f"training seconds, {c.clock} clock (evaluation not counted)")
    ax.set_ylabel("validation loss")
    ax.set_title(f"Equal size (~{c.params:,} parameters), equal time ({c.seconds:.0f} s)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(rows: list[dict], c: CompareConfig, ln_vocab: float) -> str:
    lines = [f"## Sequence models at equal size and equal time", "",
             f"Corpus `{c.corpus}`, BPE vocabulary {c.vocab_size} (ln = {ln_vocab:.2f}), {c.n_layers} layers, "
             f"context {c.context_length}, batch {c.batch_size}, AdamW {c.lr} after {c.warmup_steps} warmup steps, "
             f"{c.seconds:.0f} s of training each ({c.clock} clock), {torch.get_num_threads()} threads.", "",
             "| model | emb_dim | parameters | steps | tokens/s | val loss (end) | best val loss |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['emb_dim']} | {r['parameters']:,} | {r['steps']} | {r['tokens_per_s']:,.0f} "
                     f"| **{r['val_loss']:.3f}** | {r['best_val_loss']:.3f} |")
    return "\n".join(lines + ["", "![validation loss against training time](models.png)", ""])
