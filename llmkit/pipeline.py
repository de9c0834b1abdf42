"""``llmkit run``: corpus -> tokenizer -> sampler -> model -> pretrain -> samples -> checkpoint -> report.

Each step is a plain function the CLI and the notebooks both call. A run folder holds everything a
person wants afterwards: ``config.toml``, ``metrics.jsonl``, ``loss.png``, ``checkpoint.pt``,
``tokenizer.json``, ``samples.md`` and ``report.md``.
"""

from __future__ import annotations

import inspect
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, load_model_state
from .data import load_corpus, split_documents
from .devices import Device, get_device
from .errors import LLMKitError
from .io import atomic_write_text
from .plots import plot_losses
from .plugins import create, get
from .runconfig import RunConfig, load_run_config, run_config_from_dict, to_toml
from .tokenizers import build_tokenizer, encode_text, vocab_size
from .training import average_loss, train

SAMPLE_PROMPTS = ("The", "Once upon a time", "In the morning")


@dataclass
class Prepared:
    tokenizer: object
    train_ids: list
    val_ids: list
    model_cfg: dict
    corpus_chars: int = 0


@dataclass
class StageResult:
    name: str
    summary: dict = field(default_factory=dict)
    markdown: str = ""


def default_run_dir() -> Path:
    return Path("runs") / datetime.now().strftime("run-%Y%m%d-%H%M%S")


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool, device: Device) -> Path:
    """Create the folder; an existing one is only reused with --resume or replaced with --overwrite."""
    exists = run_dir.exists() and any(run_dir.iterdir())
    if resume:
        if not (run_dir / "checkpoint.pt").is_file():
            raise LLMKitError(f"--resume found no checkpoint at {run_dir / 'checkpoint.pt'}; "
                              "start the run without --resume, or point --run-dir at the run to continue.")
    elif exists and not overwrite:
        raise LLMKitError(f"{run_dir} already exists; continue it with --resume, replace it with --overwrite, "
                          "or choose another --run-dir.")
    device.barrier()
    if device.is_main:
        if exists and overwrite and not resume:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    device.barrier()
    return run_dir


def tokenizer_bytes(tokenizer) -> bytes | None:
    """The tokenizer's own save format, so a checkpoint can rebuild it without the corpus."""
    if not hasattr(tokenizer, "save"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer"
        tokenizer.save(path)
        return path.read_bytes()


def tokenizer_from_bytes(name: str, data: bytes):
    factory = get("tokenizers", name).factory
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer"
        path.write_bytes(data)
        return factory.load(path)


def model_config(cfg: RunConfig, n_vocab: int) -> dict:
    """The book's cfg dict for this run, plus the attention name and options."""
    m = cfg.model
    model_cfg = {"vocab_size": n_vocab, "context_length": m.context_length, "emb_dim": m.emb_dim,
                 "n_heads": m.n_heads, "n_layers": m.n_layers, "drop_rate": m.drop_rate, "qkv_bias": m.qkv_bias}
    if m.attention != "mha" or m.attention_options:
        model_cfg["attention"] = m.attention
        model_cfg["attention_options"] = dict(m.attention_options)
    return model_cfg


def window_length(cfg: RunConfig) -> int:
    length = cfg.sampler.max_length or cfg.model.context_length
    if length > cfg.model.context_length:
        raise LLMKitError(f"sampler.max_length ({length}) exceeds model.context_length ({cfg.model.context_length}); "
                          "lower the first or raise the second.")
    return length


def prepare_data(cfg: RunConfig, tokenizer=None) -> Prepared:
    corpus = load_corpus(cfg.data.corpus)
    train_text, val_text = split_documents(corpus, cfg.data.val_fraction, cfg.data.split_seed)
    if tokenizer is None:
        options = {}
        factory = get("tokenizers", cfg.tokenizer.name).factory
        from_text = getattr(factory, "from_text", None)
        if from_text is not None and "vocab_size" in inspect.signature(from_text).parameters:
            options["vocab_size"] = cfg.tokenizer.vocab_size
        tokenizer = build_tokenizer(cfg.tokenizer.name, train_text, **options)
    train_ids, val_ids = encode_text(tokenizer, train_text), encode_text(tokenizer, val_text)
    length = window_length(cfg)
    for split, ids in (("training", train_ids), ("validation", val_ids)):
        if len(ids) < length + 1:
            raise LLMKitError(
                f"The {split} split of {cfg.data.corpus} has {len(ids)} tokens, fewer than one window "
                f"({length + 1}); use a longer corpus, a larger data.val_fraction, or a smaller model.context_length."
            )
    return Prepared(tokenizer, train_ids, val_ids, model_config(cfg, vocab_size(tokenizer)), len(corpus))


def make_train_loader(cfg: RunConfig, ids: list):
    factory = get("samplers", cfg.sampler.name).factory
    params = inspect.signature(factory).parameters
    wanted = {"seed": cfg.run.seed, "stride": cfg.sampler.stride or None,
              "num_batches": cfg.sampler.batches_per_epoch or None, "shuffle": True}
    options = {k: v for k, v in wanted.items() if k in params}
    return factory(ids, cfg.sampler.batch_size, window_length(cfg), **options)


def make_eval_loader(cfg: RunConfig, ids: list):
    """Deterministic, non-overlapping windows: evaluation never touches the training sampler's RNG."""
    from llmkit_solutions.data_sampling import sliding_window_loader

    length = window_length(cfg)
    return sliding_window_loader(ids, batch_size=cfg.sampler.batch_size, max_length=length, stride=length,
                                 shuffle=False, drop_last=False)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def write_samples(model, tokenizer, device: Device, path: Path, n_tokens: int = 60, seed: int = 123) -> list[str]:
    from llmkit_solutions.gpt import generate

    model.eval()
    torch.manual_seed(seed)
    lines, texts = ["# Samples", ""], []
    for prompt in SAMPLE_PROMPTS:
        ids = torch.tensor([encode_text(tokenizer, prompt)], device=device.torch_device)
        for label, kwargs in (("greedy", {}), ("temperature 0.8, top-k 40", {"temperature": 0.8, "top_k": 40})):
            out = generate(model, ids, n_tokens, model.pos_emb.num_embeddings, use_cache=True, **kwargs)
            text = tokenizer.decode(out[0].tolist())
            texts.append(text)
            lines += [f"**{prompt!r}, {label}:**", "", "> " + " ".join(text.split()), ""]
    atomic_write_text(path, "\n".join(lines))
    return texts


def checkpoint_extra(cfg: RunConfig, prepared: Prepared) -> dict:
    return {"run_config": cfg.to_dict(), "model_cfg": prepared.model_cfg, "tokenizer_name": cfg.tokenizer.name,
            "tokenizer_data": tokenizer_bytes(prepared.tokenizer)}


def pretrain_stage(cfg: RunConfig, run_dir: Path, device: Device, resume: bool = False,
                   init_from: str | None = None, callbacks=(), show_progress=None) -> tuple[StageResult, object, Prepared]:
    """Pretrain (or continue pretraining ``init_from`` on this config's corpus) into ``run_dir``."""
    resume_payload = load_checkpoint(run_dir / "checkpoint.pt") if resume else None
    base = resume_payload or (load_checkpoint(init_from) if init_from else None)
    tokenizer = None
    if base is not None:
        if base.get("tokenizer_data") is None or "run_config" not in base:
            raise LLMKitError("That checkpoint lacks its tokenizer or config; continue from a checkpoint.pt "
                              "written by llmkit run or llmkit pretrain.")
        # The checkpoint fixes the tokenizer and the architecture; the corpus and training may change.
        tokenizer = tokenizer_from_bytes(base["tokenizer_name"], base["tokenizer_data"])
        cfg.tokenizer.name = base["tokenizer_name"]
        cfg.model = run_config_from_dict({"model": base["run_config"]["model"]}).model
    prepared = prepare_data(cfg, tokenizer)
    if base is not None:
        prepared.model_cfg = dict(base["model_cfg"])  # the checkpoint decides the architecture
    if device.is_main and hasattr(prepared.tokenizer, "save"):
        prepared.tokenizer.save(run_dir / "tokenizer.json")

    torch.manual_seed(cfg.run.seed)
    model = create("models", cfg.model.name, prepared.model_cfg)
    forgetting = None
    if init_from and not resume:
        load_model_state(model, base["model"], source=f"checkpoint {init_from}")
        old = run_config_from_dict(base["run_config"], where=str(init_from))
        old_val = prepare_data(old, prepared.tokenizer).val_ids
        forgetting = {"old_corpus": old.data.corpus, "old_loader": make_eval_loader(old, old_val)}
    model = device.prepare_model(model)
    base_model = device.unwrap(model)

    eval_loaders = {"train": make_eval_loader(cfg, prepared.train_ids), "val": make_eval_loader(cfg, prepared.val_ids)}
    if forgetting:
        forgetting["before"] = average_loss(base_model, forgetting["old_loader"], device, cfg.train.eval_batches)
    started = time.perf_counter()
    state = train(model, make_train_loader(cfg, prepared.train_ids), eval_loaders, cfg.train, device,
                  tokenizer=prepared.tokenizer, run_dir=run_dir, resume_from=resume_payload,
                  callbacks=callbacks, checkpoint_extra=checkpoint_extra(cfg, prepared),
                  show_progress=show_progress)
    seconds = time.perf_counter() - started
    if forgetting:
        forgetting["after"] = average_loss(base_model, forgetting["old_loader"], device, cfg.train.eval_batches)

    evals = [r for r in state.history if r["kind"] == "eval"]
    summary = {
        "parameters": count_parameters(base_model),
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
    }
    if forgetting:
        summary["forgetting"] = {k: forgetting[k] for k in ("old_corpus", "before", "after")}
    markdown = ""
    if device.is_main:
        plot_losses(evals, run_dir / "loss.png", title=f"Pretraining on {cfg.data.corpus}")
        samples = write_samples(base_model, prepared.tokenizer, device, run_dir / "samples.md")
        markdown = pretrain_markdown(cfg, summary, samples[:2])
    return StageResult("pretrain", summary, markdown), model, prepared


def pretrain_markdown(cfg: RunConfig, s: dict, samples: list[str]) -> str:
    m = cfg.model
    rows = [
        ("corpus", f"{cfg.data.corpus} ({s['train_tokens']:,} train / {s['val_tokens']:,} val tokens)"),
        ("tokenizer", f"{cfg.tokenizer.name}, vocabulary {s['vocab_size']:,} (ln = {s['ln_vocab']:.2f})"),
        ("sampler", f"{cfg.sampler.name}, batch {cfg.sampler.batch_size} x {cfg.sampler.max_length or m.context_length} tokens"),
        ("model", f"{cfg.model.name}: {m.n_layers} layers, {m.n_heads} heads, emb {m.emb_dim}, context {m.context_length}, "
                  f"attention {m.attention}; {s['parameters']:,} parameters"),
        ("device", s["device"]),
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


def run(cfg: RunConfig, run_dir: Path | None = None, resume: bool = False, overwrite: bool = False,
        stages: list[str] | None = None, init_from: str | None = None, callbacks=(),
        show_progress=None) -> tuple[Path, list[StageResult]]:
    """Run the stages of ``cfg.run.stages`` (or ``stages``) into a run folder; return it and the results."""
    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    device = get_device(cfg.device.name, cfg.device.precision)
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    stages = list(stages or cfg.run.stages)
    from . import finetuning_stage  # noqa: F401  (fills STAGES["classify"] and STAGES["instruct"])

    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise LLMKitError(f"Unknown stage '{unknown[0]}'; stages are: {', '.join(STAGES)}.")
    for stage in stages:  # a stage may check its config and data before pretraining starts
        check = getattr(STAGES[stage], "check", None)
        if check is not None:
            check(cfg)
    try:
        prepare_run_dir(run_dir, resume, overwrite, device)
        if resume:
            saved = run_dir / "config.toml"
            cfg = load_run_config(saved) if saved.is_file() else cfg
        elif device.is_main:
            atomic_write_text(run_dir / "config.toml", to_toml(cfg))
        results = []
        started = time.perf_counter()
        result, model, prepared = pretrain_stage(cfg, run_dir, device, resume=resume, init_from=init_from,
                                                 callbacks=callbacks, show_progress=show_progress)
        results.append(result)
        for stage in stages:
            if stage != "pretrain":
                results.append(STAGES[stage](cfg, run_dir, device, model, prepared))
        if device.is_main:
            write_report(run_dir, cfg, results, time.perf_counter() - started)
        return run_dir, results
    finally:
        device.close()


def write_report(run_dir: Path, cfg: RunConfig, results: list[StageResult], seconds: float) -> None:
    body = [f"# llmkit run report", "", f"Run folder `{run_dir}`, finished in {seconds:.1f} s. "
            f"Config: [config.toml](config.toml); metrics: [metrics.jsonl](metrics.jsonl).", ""]
    for result in results:
        body += [result.markdown, ""]
    atomic_write_text(run_dir / "report.md", "\n".join(body))
    atomic_write_text(run_dir / "summary.json", json.dumps({r.name: r.summary for r in results}, indent=2))


# Stage name -> function(cfg, run_dir, device, model, prepared) -> StageResult. Pretraining always runs
# first (it produces the model the others start from); fine-tuning stages register here.
STAGES: dict = {"pretrain": None, "classify": None, "instruct": None}  # the last two: llmkit.finetuning_stage


def load_for_generation(checkpoint: str | Path, device: Device | None = None):
    """Rebuild (model, tokenizer) from a checkpoint written by a run."""
    payload = load_checkpoint(checkpoint)
    if "model_cfg" not in payload or payload.get("tokenizer_data") is None:
        raise LLMKitError(f"{checkpoint} lacks the model config or tokenizer; use a checkpoint.pt written by llmkit run.")
    run_cfg = payload.get("run_config", {}).get("model", {})
    model = create("models", run_cfg.get("name", "gpt"), payload["model_cfg"])
    load_model_state(model, payload["model"], source=f"checkpoint {checkpoint}")
    tokenizer = tokenizer_from_bytes(payload["tokenizer_name"], payload["tokenizer_data"])
    if device is not None:
        model = model.to(device.torch_device)
    return model.eval(), tokenizer
