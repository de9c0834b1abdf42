"""The ``pretrain`` stage: tokenizer -> sampler -> model -> training loop -> samples, into the run folder.

It starts a model from scratch, continues one from a run's checkpoint on this config's corpus
(``llmkit pretrain --from``, which also measures how much the model forgets of its old corpus), or
resumes a killed run bit for bit (``--resume``). It leaves ``checkpoint.pt``, ``tokenizer.json``,
``metrics.jsonl``, ``loss.png`` and ``samples.md`` behind.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from ... import autotune
from ...checkpoint import load_checkpoint, load_model_state
from ...decoding import complete
from ...devices import Device
from ...io import atomic_write_text
from ...plots import plot_losses
from ...runconfig import RunConfig, run_config_from_dict
from ...training import average_loss, train
from .. import artifacts
from ..data import build_model, make_eval_loader, make_train_loader, prepare_data
from ..rundir import StageResult

NAME = "pretrain"
SAMPLE_PROMPTS = ("The", "Once upon a time", "In the morning")


def check(cfg: RunConfig) -> None:
    """Nothing to check ahead: the corpus and tokenizer fail with one line as soon as they are read."""


def wants_compile(cfg: RunConfig, device: Device, model_cfg: dict, loader) -> bool:
    """``device.compile``: on, off, or auto: when this machine measured compiling to pay for this run's length."""
    if cfg.device.compile != "auto":
        return cfg.device.compile == "on"
    if device.world_size > 1:
        return False  # every rank must decide alike; a measurement per rank might not
    steps = cfg.train.max_steps if cfg.train.max_steps > 0 else cfg.train.epochs * len(loader)
    # From the settings, not a batch: drawing one would move the sampler's random state.
    batch_tokens = cfg.sampler.batch_size * (cfg.sampler.max_length or model_cfg["context_length"])
    return autotune.choose_compile_for(device.torch_device, model_cfg, batch_tokens, steps)


def run(cfg: RunConfig, run_dir: Path, device: Device, resume: bool = False, init_from: str | None = None,
        callbacks=(), show_progress=None) -> tuple[StageResult, artifacts.Trained]:
    """Pretrain (or continue pretraining ``init_from`` on this config's corpus) into ``run_dir``."""
    # 1. Where we start: from scratch, from a checkpoint to continue, or from our own to resume.
    resume_payload = load_checkpoint(run_dir / "checkpoint.pt") if resume else None
    start = None
    if resume or init_from:
        start = artifacts.load(run_dir / "checkpoint.pt" if resume else init_from, expect="pretrained", build=False)
    if start is not None:
        # The checkpoint fixes the tokenizer and the architecture; the corpus and the training may change.
        cfg.tokenizer.name = start.tokenizer_name
        cfg.model = run_config_from_dict({"model": (start.run_config or {}).get("model", {})}).model
        cfg.model.name = start.model_name

    # 2. Data: the corpus, split and encoded (the tokenizer is trained here unless it comes with the start).
    prepared = prepare_data(cfg, start.tokenizer if start else None)
    if start is not None:
        prepared.model_cfg = dict(start.model_cfg)
    if device.is_main and hasattr(prepared.tokenizer, "save"):
        prepared.tokenizer.save(run_dir / "tokenizer.json")

    # 3. The model, seeded, placed on the device.
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg, prepared.model_cfg)
    forgetting = None
    if init_from and not resume:
        load_model_state(model, start.weights, source=f"checkpoint {init_from}")
        old = run_config_from_dict(start.run_config or {}, where=str(init_from))
        forgetting = {"old_corpus": old.data.corpus,
                      "old_loader": make_eval_loader(old, prepare_data(old, prepared.tokenizer).val_ids)}
    model = device.prepare_model(model)
    base_model = device.unwrap(model)
    trained = artifacts.Trained(base_model, prepared.tokenizer, cfg.model.name, prepared.model_cfg, cfg.tokenizer.name,
                                cfg.to_dict())

    # 4. Train, evaluating on fixed windows of both splits.
    eval_loaders = {"train": make_eval_loader(cfg, prepared.train_ids), "val": make_eval_loader(cfg, prepared.val_ids)}
    if forgetting:
        forgetting["before"] = average_loss(base_model, forgetting["old_loader"], device, cfg.train.eval_batches)
    loader = make_train_loader(cfg, prepared.train_ids)
    compile_step = wants_compile(cfg, device, prepared.model_cfg, loader)
    started = time.perf_counter()
    state = train(model, loader, eval_loaders, cfg.train, device,
                  tokenizer=prepared.tokenizer, run_dir=run_dir, resume_from=resume_payload, callbacks=callbacks,
                  checkpoint_extra=artifacts.checkpoint_fields(trained, cfg.to_dict()), show_progress=show_progress,
                  compile=compile_step)
    seconds = time.perf_counter() - started
    if forgetting:
        forgetting["after"] = average_loss(base_model, forgetting["old_loader"], device, cfg.train.eval_batches)

    # 5. Figures, the loss curve and samples.
    evals = [r for r in state.history if r["kind"] == "eval"]
    summary = {
        "parameters": sum(p.numel() for p in base_model.parameters()),
        "vocab_size": prepared.model_cfg["vocab_size"],
        "ln_vocab": math.log(prepared.model_cfg["vocab_size"]),
        "train_tokens": len(prepared.train_ids),
        "val_tokens": len(prepared.val_ids),
        "steps": state.step,
        "tokens_seen": state.tokens_seen,
        "initial_val_loss": evals[0]["val_loss"] if evals else None,
        "final_val_loss": evals[-1]["val_loss"] if evals else None,
        "best_val_loss": state.best_val_loss,
        "final_train_loss": evals[-1]["train_loss"] if evals else None,
        "seconds": seconds,
        "tokens_per_s": state.tokens_seen / max(state.elapsed_s, 1e-9),
        "device": repr(device),
        "compiled": compile_step,
    }
    if forgetting:
        summary["forgetting"] = {k: forgetting[k] for k in ("old_corpus", "before", "after")}
    markdown = ""
    if device.is_main:
        plot_losses(evals, run_dir / "loss.png", title=f"Pretraining on {cfg.data.corpus}")
        samples = write_samples(trained, cfg.generate.decoder, device, run_dir / "samples.md")
        markdown = report(cfg, summary, samples[:2])
    return StageResult(NAME, summary, markdown), trained


def write_samples(trained: artifacts.Trained, decoder: str, device: Device, path: Path, n_tokens: int = 60,
                  seed: int = 123) -> list[str]:
    """A greedy and a sampled continuation of each prompt, in ``samples.md``."""
    trained.model.eval()
    torch.manual_seed(seed)
    lines, texts = ["# Samples", ""], []
    for prompt in SAMPLE_PROMPTS:
        for label, sampling in (("greedy", {}), ("temperature 0.8, top-k 40", {"temperature": 0.8, "top_k": 40})):
            text = complete(trained.model, trained.tokenizer, prompt, n_tokens, device.torch_device, decoder, **sampling)
            texts.append(text)
            lines += [f"**{prompt!r}, {label}:**", "", "> " + " ".join(text.split()), ""]
    atomic_write_text(path, "\n".join(lines))
    return texts


def report(cfg: RunConfig, s: dict, samples: list[str]) -> str:
    m = cfg.model
    rows = [
        ("corpus", f"{cfg.data.corpus} ({s['train_tokens']:,} train / {s['val_tokens']:,} val tokens)"),
        ("tokenizer", f"{cfg.tokenizer.name}, vocabulary {s['vocab_size']:,} (ln = {s['ln_vocab']:.2f})"),
        ("sampler", f"{cfg.sampler.name}, batch {cfg.sampler.batch_size} x {cfg.sampler.max_length or m.context_length} tokens"),
        ("model", f"{cfg.model.name}: {m.n_layers} layers, {m.n_heads} heads, emb {m.emb_dim}, context {m.context_length}, "
                  f"attention {m.attention}; {s['parameters']:,} parameters"),
        ("device", f"{s['device']}, training step {'compiled' if s.get('compiled') else 'eager'} "
                   f"(precision {cfg.device.precision}, compile {cfg.device.compile})"),
        ("steps", f"{s['steps']:,} ({s['tokens_seen']:,} tokens, {s['tokens_per_s']:,.0f} tokens/s)"),
        ("validation loss", f"{s['initial_val_loss']:.3f} -> {s['final_val_loss']:.3f} (best {s['best_val_loss']:.3f}, "
                            f"perplexity {math.exp(s['final_val_loss']):.1f})"),
        ("time", f"{s['seconds']:.1f} s"),
    ]
    if "forgetting" in s:
        f = s["forgetting"]
        rows.append(("forgetting", f"loss on {f['old_corpus']}: {f['before']:.3f} before -> {f['after']:.3f} after"))
    lines = ["## Pretraining", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "![loss curve](loss.png)", "", "Samples (more in [samples.md](samples.md)):", ""]
    lines += ["> " + " ".join(t.split()) for t in samples]
    return "\n".join(lines)
