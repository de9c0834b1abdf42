"""The fine-tuning stages of ``llmkit run`` and the ``finetune`` / ``classify`` / ``chat`` commands.

``classify``: for each strategy in ``finetune.strategies``, a fresh copy of the pretrained model is
prepared for 2-way spam classification, trained a few epochs on the book's balanced, seeded 70/10/20
split, and scored on the test split; the report puts trainable parameters, time and accuracy side
by side. ``instruct``: one strategy (``full`` or ``lora``) instruction-tunes the model on the
Alpaca-style set; held-out exact and normalised match are measured before and after.

Every fine-tuned checkpoint (``RUN_DIR/<stage>/<strategy>.pt``) carries what rebuilds it: the base
model's cfg, the strategy and its options, the task, and the tokenizer's bytes.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from llmkit_solutions.classification import (SpamDataset, check_fits_context, classify_review, create_balanced_dataset,
                                             load_sms_spam_collection, random_split)
from llmkit_solutions.instruction import (RESPONSE_HEADER, InstructionDataset, custom_collate_fn, extract_response,
                                          format_input, load_instruction_json, score_responses, split_instructions)

from .checkpoint import load_checkpoint, load_model_state
from .devices import Device, get_device
from .errors import LLMKitError
from .evaluation import classification_step, evaluate, finetune, lm_step, plot_epochs
from .finetune import FeatureExtractionClassifier
from .io import atomic_write_text
from .pipeline import (STAGES, Prepared, StageResult, model_config, prepare_run_dir, tokenizer_bytes,
                       tokenizer_from_bytes, write_report)
from .plugins import create, get
from .runconfig import FinetuneConfig, RunConfig, run_config_from_dict, to_toml
from .tokenizers import encode_text, vocab_size

CLASS_NAMES = ("not spam", "spam")  # label 0 (ham), label 1 (spam)
TASKS = {"classification": "classify", "instruction": "instruct"}  # task -> stage


# --------------------------------------------------------------------------- config and strategies


def pad_token_id(tokenizer) -> int:
    """The id of ``<|endoftext|>``: it pads batches and ends responses."""
    eos = getattr(tokenizer, "eos_id", None)
    if isinstance(eos, int):
        return eos
    ids = encode_text(tokenizer, "<|endoftext|>")
    if len(ids) != 1:
        raise LLMKitError(f"the {type(tokenizer).__name__} tokenizer has no single <|endoftext|> id to pad with; "
                          "fine-tune a model whose tokenizer knows <|endoftext|> (bpe, gpt2, char, simple-v2).")
    return ids[0]


def strategy_options(f, name: str, pad_id: int = 50256) -> dict:
    """The ``[finetune]`` keys that configure the built-in strategy ``name`` (plugins take none)."""
    return {
        "lora": {"rank": f.lora_rank, "alpha": f.lora_alpha, "target": f.lora_target},
        "adapter": {"bottleneck": f.adapter_bottleneck},
        "classification": {"trainable_blocks": f.trainable_blocks},
        "feature-extraction": {"pool": f.feature_pool, "hidden": f.feature_hidden, "pad_token_id": pad_id},
    }.get(name, {})


def make_strategy(f, name: str, task: str, pad_id: int = 50256):
    strategy = create("finetune_strategies", name, **strategy_options(f, name, pad_id))
    if task not in getattr(strategy, "tasks", (task,)):
        raise LLMKitError(f"finetune strategy '{name}' cannot do task {task!r}; its tasks are: "
                          f"{', '.join(strategy.tasks)}. Choose another strategy.")
    return strategy


def _check_values(f) -> None:
    """Numbers that must be positive, with the --set that fixes them."""
    def need(ok, key, what, example):
        if not ok:
            raise LLMKitError(f"finetune.{key} must be {what}, got {getattr(f, key)!r}; "
                              f"set e.g. --set finetune.{key}={example}.")

    need(f.lora_rank > 0, "lora_rank", "a positive integer", 8)
    need(f.lora_alpha > 0, "lora_alpha", "a positive number", 16)
    need(f.adapter_bottleneck > 0, "adapter_bottleneck", "a positive integer", 32)
    for key in ("classify_epochs", "feature_epochs", "instruct_epochs", "batch_size", "max_new_tokens"):
        need(getattr(f, key) >= 1, key, "at least 1", getattr(FinetuneConfig, key, 2))
    for key in ("classify_lr", "feature_lr", "instruct_lr"):
        need(getattr(f, key) > 0, key, "a positive number", getattr(FinetuneConfig, key))
    for key in ("max_length", "patience", "max_train_examples", "max_eval_examples", "samples"):
        need(getattr(f, key) >= 0, key, "0 or more", 0)


def _probe_model(cfg: RunConfig):
    """The run's architecture without real weights (meta device), to see whether a strategy fits it."""
    model_cfg = model_config(cfg, 16)  # the vocabulary size does not change which modules exist
    try:
        with torch.device("meta"):
            return create("models", cfg.model.name, model_cfg)
    except LLMKitError:
        raise
    except Exception:  # a model that cannot be built on the meta device: build it for real
        return create("models", cfg.model.name, model_cfg)


def _check_fit(cfg: RunConfig, names, task: str) -> None:
    for name in names:
        make_strategy(cfg.finetune, name, task).prepare(_probe_model(cfg), task, num_classes=2)


def check_classify(cfg: RunConfig) -> None:
    """Fail before pretraining on a bad [finetune] value, spam file or strategy."""
    f = cfg.finetune
    _check_values(f)
    if not isinstance(f.strategies, list) or not f.strategies:
        raise LLMKitError("finetune.strategies must be a non-empty list, e.g. --set 'finetune.strategies=[\"lora\"]'.")
    if f.max_length:
        check_fits_context(f.max_length, cfg.model.context_length)
    spam_splits(f, cfg.run.seed)
    _check_fit(cfg, f.strategies, "classification")


def check_instruct(cfg: RunConfig) -> None:
    f = cfg.finetune
    _check_values(f)
    load_instruction_json(f.instructions_path or None)
    _check_fit(cfg, [f.instruct_strategy], "instruction")


# --------------------------------------------------------------------------- data


def spam_splits(f, seed: int):
    """The book's data path: read, undersample ham to the spam count, shuffle, cut 70/10/20."""
    rows = load_sms_spam_collection(f.spam_path or None)
    labels = {label for label, _ in rows}
    if labels != {"ham", "spam"}:
        where = f.spam_path or "the shipped messages.tsv"
        raise LLMKitError(f"{where} has only {'/'.join(sorted(labels)) or 'no'} messages; "
                          "classification needs both ham and spam.")
    return random_split(create_balanced_dataset(rows, seed=seed), 0.7, 0.1, seed=seed)


def _loader(dataset, batch_size, shuffle, seed, collate_fn=None):
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate_fn,
                      drop_last=shuffle and len(dataset) > batch_size)


def _stage_dir(run_dir, name: str, device: Device) -> Path:
    """``RUN_DIR/<stage>``, its metrics started afresh (a resumed run repeats the stage from the start)."""
    stage_dir = Path(run_dir) / name
    if device.is_main:
        stage_dir.mkdir(parents=True, exist_ok=True)
        (stage_dir / "metrics.jsonl").unlink(missing_ok=True)
    return stage_dir


def _fresh_copy(model):
    """A deep copy of the pretrained model with every parameter trainable again (strategies freeze)."""
    model = copy.deepcopy(model)
    for param in model.parameters():
        param.requires_grad = True
    return model


class CachedFeatureHead(torch.nn.Module):
    """The trainable head of a feature-extraction classifier, fed pooled features computed once."""

    def __init__(self, classifier):
        super().__init__()
        self.head = classifier.head  # shared: training this trains the classifier's head

    def forward(self, features):
        return self.head(features).unsqueeze(1)  # (B, E) -> (B, 1, C): one "position", as classification_step reads


@torch.no_grad()
def _feature_loader(classifier, loader, device: Device, batch_size: int, shuffle: bool, seed: int):
    classifier.eval()
    features, labels = [], []
    for ids, label in loader:
        features.append(classifier.features(ids.to(device.torch_device)).float())  # (B, E)
        labels.append(label)
    return _loader(TensorDataset(torch.cat(features), torch.cat(labels)), batch_size, shuffle, seed)


def checkpoint_extra(cfg: RunConfig, prepared: Prepared, strategy, task: str, **info) -> dict:
    """What ``load_finetuned`` needs to rebuild the model and its tokenizer."""
    return {"run_config": cfg.to_dict(), "model_cfg": prepared.model_cfg, "model_name": cfg.model.name,
            "tokenizer_name": cfg.tokenizer.name, "tokenizer_data": tokenizer_bytes(prepared.tokenizer),
            "finetune": {"task": task, "strategy": strategy.name, "options": dict(strategy.config), **info}}


# --------------------------------------------------------------------------- the classify stage


def classify_stage(cfg: RunConfig, run_dir: Path, device: Device, model, prepared: Prepared) -> StageResult:
    """Fine-tune a copy of ``model`` per strategy for spam classification; compare them side by side."""
    f, seed = cfg.finetune, cfg.run.seed
    _check_values(f)
    stage_dir = _stage_dir(run_dir, "classify", device)
    tokenizer, pad = prepared.tokenizer, pad_token_id(prepared.tokenizer)
    context = prepared.model_cfg["context_length"]
    train_rows, val_rows, test_rows = spam_splits(f, seed)
    if f.max_train_examples:
        train_rows = train_rows[: f.max_train_examples]
    if f.max_length:
        max_length = f.max_length
        check_fits_context(max_length, context)
    else:  # long enough for 90% of the training messages; the longest 10% are cut
        lengths = sorted(len(encode_text(tokenizer, text)) for _, text in train_rows)
        max_length = max(1, min(context, lengths[int(0.9 * (len(lengths) - 1))]))
    sets = {name: SpamDataset(rows, tokenizer, max_length=max_length, pad_token_id=pad)
            for name, rows in (("train", train_rows), ("val", val_rows), ("test", test_rows))}
    val_loader, test_loader = (_loader(sets[n], f.batch_size, False, seed) for n in ("val", "test"))
    base = device.unwrap(model)

    rows, histories, started = [], {}, time.perf_counter()
    for name in f.strategies:
        torch.manual_seed(seed)  # every strategy: the same initial values, dropout masks and batch order
        train_loader = _loader(sets["train"], f.batch_size, True, seed)
        strategy = make_strategy(f, name, "classification", pad)
        tuned = strategy.prepare(_fresh_copy(base), "classification", num_classes=2).to(device.torch_device)
        described = strategy.describe(tuned)
        extra = checkpoint_extra(cfg, prepared, strategy, "classification", num_classes=2, max_length=max_length,
                                 pad_token_id=pad, class_names=list(CLASS_NAMES))
        path = stage_dir / f"{name}.pt"
        common = dict(weight_decay=f.weight_decay, patience=f.patience, device=device, label=name,
                      metrics_path=stage_dir / "metrics.jsonl", checkpoint_path=path, checkpoint_extra=extra)
        if isinstance(tuned, FeatureExtractionClassifier):
            # The body is frozen and in eval mode: its features never change, so compute them once.
            extract_started = time.perf_counter()
            loaders = [_feature_loader(tuned, loader, device, f.batch_size, shuffle, seed) for loader, shuffle in
                       ((_loader(sets["train"], f.batch_size, False, seed), True), (val_loader, False),
                        (test_loader, False))]
            extract_seconds = time.perf_counter() - extract_started
            head = CachedFeatureHead(tuned)
            result = finetune(head, loaders[0], loaders[1], classification_step, epochs=f.feature_epochs,
                              lr=f.feature_lr, save_model=tuned, **common)
            result.seconds += extract_seconds
            test = evaluate(head, loaders[2], classification_step, device)
        else:
            result = finetune(tuned, train_loader, val_loader, classification_step, epochs=f.classify_epochs,
                              lr=f.classify_lr, **common)
            test = evaluate(tuned, test_loader, classification_step, device)
        best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
        row = {"strategy": name, "trainable": described["trainable"], "total": described["total"],
               "epochs": len(result.history), "best_epoch": result.best_epoch, "seconds": round(result.seconds, 1),
               "val_accuracy": best["val_accuracy"], "test_accuracy": test["accuracy"],
               "test_loss": test["loss"], "checkpoint": str(path)}
        rows.append(row)
        histories[name] = result.history
        if device.is_main:
            with (stage_dir / "metrics.jsonl").open("a") as out:
                out.write(json.dumps({"kind": "test", "label": name, **row}) + "\n")
        del tuned

    best = max(rows, key=lambda r: r["test_accuracy"])
    summary = {"best_strategy": best["strategy"], "best_test_accuracy": round(best["test_accuracy"], 4),
               "seconds": round(time.perf_counter() - started, 1),
               "strategies": {r["strategy"]: r for r in rows},
               "data": {"train": len(sets["train"]), "val": len(sets["val"]), "test": len(sets["test"]),
                        "max_length": max_length, "source": f.spam_path or "shipped messages.tsv"}}
    markdown = ""
    if device.is_main:
        plot_epochs(histories, stage_dir / "curves.png", "Spam classification: per-epoch loss and accuracy")
        markdown = classify_markdown(summary, rows)
    return StageResult("classify", summary, markdown)


def classify_markdown(summary: dict, rows: list) -> str:
    d = summary["data"]
    lines = ["## Fine-tuning: spam classification", "",
             f"Data: {d['source']}, balanced and split 70/10/20 ({d['train']} train / {d['val']} validation / "
             f"{d['test']} test messages), padded or cut to {d['max_length']} tokens. Each strategy starts from a "
             "fresh copy of the pretrained model; the weights of its best validation epoch are kept and scored "
             "on the test split. Time is training plus validation; feature-extraction computes the frozen body's "
             "features once and trains only its head on them.", "",
             "| strategy | trainable parameters | share | epochs (best) | time | val accuracy | test accuracy |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['strategy']} | {r['trainable']:,} | {100 * r['trainable'] / r['total']:.1f}% | "
                     f"{r['epochs']} ({r['best_epoch']}) | {r['seconds']:.1f} s | {100 * r['val_accuracy']:.1f}% | "
                     f"**{100 * r['test_accuracy']:.1f}%** |")
    lines += ["", "![per-epoch curves](classify/curves.png)", "",
              "Checkpoints: " + ", ".join(f"`classify/{r['strategy']}.pt`" for r in rows)
              + " (try `llmkit classify \"text\" --checkpoint RUN_DIR/classify/lora.pt`)."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the instruct stage


def respond(model, tokenizer, entry: dict, device: Device, max_new_tokens: int, eos_id: int) -> str:
    """Greedy answer to one entry: the prompt ends with the ``### Response:`` header; stops at eos."""
    from llmkit_solutions.gpt import generate, supports_kv_cache

    ids = encode_text(tokenizer, format_input(entry) + RESPONSE_HEADER)
    context = model.pos_emb.num_embeddings
    idx = torch.tensor([ids[-context:]], device=device.torch_device)  # (1, T)
    out = generate(model, idx, max_new_tokens, context, eos_id=eos_id, use_cache=supports_kv_cache(model))
    return extract_response(tokenizer.decode(out[0, idx.shape[1]:].tolist()))


def respond_all(model, tokenizer, entries, device, max_new_tokens, eos_id) -> list[str]:
    was_training = model.training
    model.eval()
    answers = [respond(model, tokenizer, e, device, max_new_tokens, eos_id) for e in entries]
    model.train(was_training)
    return answers


def instruct_stage(cfg: RunConfig, run_dir: Path, device: Device, model, prepared: Prepared) -> StageResult:
    """Instruction-tune a copy of ``model``; score held-out answers before and after."""
    f, seed = cfg.finetune, cfg.run.seed
    _check_values(f)
    stage_dir = _stage_dir(run_dir, "instruct", device)
    tokenizer, eos = prepared.tokenizer, pad_token_id(prepared.tokenizer)
    context = prepared.model_cfg["context_length"]
    data = load_instruction_json(f.instructions_path or None)
    train, test, val = split_instructions(data)  # the book's 85/10/5, in file order
    if f.max_train_examples:
        train = train[: f.max_train_examples]
    if f.max_eval_examples:
        test = test[: f.max_eval_examples]
    if not train or not val or not test:
        raise LLMKitError(f"{len(data)} instruction entries leave an empty split (85/10/5); use at least 20 entries.")
    collate = partial(custom_collate_fn, pad_token_id=eos, allowed_max_length=context, mask_prompt=f.mask_prompt)
    train_set = InstructionDataset(train, tokenizer, mask_prompt=f.mask_prompt)
    train_loader = _loader(train_set, f.batch_size, True, seed, collate)
    val_loader = _loader(InstructionDataset(val, tokenizer, mask_prompt=f.mask_prompt), f.batch_size, False, seed,
                         collate)
    too_long = sum(len(item[1] if f.mask_prompt else item) >= context for item in train_set)

    torch.manual_seed(seed)
    strategy = make_strategy(f, f.instruct_strategy, "instruction", eos)
    tuned = strategy.prepare(_fresh_copy(device.unwrap(model)), "instruction").to(device.torch_device)
    described = strategy.describe(tuned)
    generation_started = time.perf_counter()
    before = respond_all(tuned, tokenizer, test, device, f.max_new_tokens, eos)
    seconds_generating = time.perf_counter() - generation_started
    path = stage_dir / f"{strategy.name}.pt"
    extra = checkpoint_extra(cfg, prepared, strategy, "instruction", pad_token_id=eos,
                             max_new_tokens=f.max_new_tokens)
    result = finetune(tuned, train_loader, val_loader, lm_step, epochs=f.instruct_epochs, lr=f.instruct_lr,
                      weight_decay=f.weight_decay, patience=f.patience, device=device,
                      metrics_path=stage_dir / "metrics.jsonl", label=strategy.name, checkpoint_path=path,
                      checkpoint_extra=extra)
    generation_started = time.perf_counter()
    after = respond_all(tuned, tokenizer, test, device, f.max_new_tokens, eos)
    seconds_generating += time.perf_counter() - generation_started
    scores = {"before": score_responses(test, before), "after": score_responses(test, after)}

    summary = {"strategy": strategy.name,
               "exact_match_before": round(scores["before"]["exact_match"], 4),
               "exact_match_after": round(scores["after"]["exact_match"], 4),
               "normalised_match_before": round(scores["before"]["normalised_match"], 4),
               "normalised_match_after": round(scores["after"]["normalised_match"], 4),
               "seconds": round(result.seconds + seconds_generating, 1),
               "details": {"trainable": described["trainable"], "total": described["total"], "train": len(train),
                           "val": len(val), "test": len(test), "truncated_train": too_long,
                           "epochs": len(result.history), "best_epoch": result.best_epoch,
                           "best_val_loss": result.best_val_loss, "train_seconds": round(result.seconds, 1),
                           "generation_seconds": round(seconds_generating, 1), "mask_prompt": f.mask_prompt,
                           "checkpoint": str(path)}}
    markdown = ""
    if device.is_main:
        answers = [{**entry, "before": b, "after": a} for entry, b, a in zip(test, before, after)]
        atomic_write_text(stage_dir / "responses.json", json.dumps(answers, indent=1, ensure_ascii=False))
        plot_epochs({strategy.name: result.history}, stage_dir / "curves.png", "Instruction tuning: per-epoch loss")
        markdown = instruct_markdown(summary, answers[: f.samples])
    return StageResult("instruct", summary, markdown)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "(empty)"


def instruct_markdown(s: dict, samples: list) -> str:
    d = s["details"]
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    lines = ["## Fine-tuning: instructions", "",
             f"Strategy `{s['strategy']}` ({d['trainable']:,} of {d['total']:,} parameters trainable), "
             f"{d['epochs']} epoch(s) (best {d['best_epoch']}) on {d['train']} entries "
             f"({d['truncated_train']} cut to the context), prompt tokens "
             f"{'masked' if d['mask_prompt'] else 'in the loss'}; "
             f"{d['train_seconds']:.1f} s training, {d['generation_seconds']:.1f} s generating. "
             f"Scored on {d['test']} held-out entries with greedy decoding.", "",
             "| | before | after |", "|---|---:|---:|",
             f"| exact match | {pct(s['exact_match_before'])} | **{pct(s['exact_match_after'])}** |",
             f"| normalised match | {pct(s['normalised_match_before'])} | **{pct(s['normalised_match_after'])}** |",
             "", "| instruction | input | expected | before | after |", "|---|---|---|---|---|"]
    for a in samples:
        lines.append(f"| {_cell(a['instruction'])} | {_cell(a['input'])} | {_cell(a['output'])} | "
                     f"{_cell(a['before'])} | {_cell(a['after'])} |")
    lines += ["", "All answers: [instruct/responses.json](instruct/responses.json); curves: "
              "[instruct/curves.png](instruct/curves.png)."]
    return "\n".join(lines)


classify_stage.check = check_classify
instruct_stage.check = check_instruct
STAGES["classify"] = classify_stage
STAGES["instruct"] = instruct_stage


# --------------------------------------------------------------------------- loading models


@dataclass
class Base:
    model: object
    tokenizer: object
    model_cfg: dict
    model_name: str
    tokenizer_name: str
    run_model: dict | None = None  # the [model] section of the run that made it, when there is one


def load_base(source) -> Base:
    """A pretrained model to fine-tune: a run's ``checkpoint.pt`` or a GPT-2 folder/file (HF or OpenAI)."""
    from llmkit_solutions.loading import load_pretrained_gpt

    path = Path(source)
    if path.is_file() and path.suffix not in (".safetensors", ".bin"):
        try:
            payload = load_checkpoint(path)
        except LLMKitError:
            payload = None  # e.g. the book's {"model_state_dict", "cfg"} file: load_pretrained_gpt reads it
        if payload is not None and "finetune" in payload:
            raise LLMKitError(f"{path} is already fine-tuned ({payload['finetune'].get('task')}, "
                              f"{payload['finetune'].get('strategy')}); start from the pretrained checkpoint.pt.")
        if payload is not None and "model_cfg" in payload and payload.get("tokenizer_data") is not None:
            run_model = payload.get("run_config", {}).get("model", {})
            name = run_model.get("name", "gpt")
            model = create("models", name, payload["model_cfg"])
            load_model_state(model, payload["model"], source=f"checkpoint {path}")
            tokenizer = tokenizer_from_bytes(payload["tokenizer_name"], payload["tokenizer_data"])
            return Base(model, tokenizer, dict(payload["model_cfg"]), name, payload["tokenizer_name"], run_model)
    model, model_cfg = load_pretrained_gpt(path)
    return Base(model, get("tokenizers", "gpt2").factory(), dict(model_cfg), "gpt", "gpt2")


def load_finetuned(path, device: Device | None = None, task: str | None = None):
    """Rebuild ``(model, tokenizer, info)`` from a checkpoint written by a fine-tuning stage."""
    payload = load_checkpoint(path)
    info = payload.get("finetune")
    if not info or "model_cfg" not in payload or payload.get("tokenizer_data") is None:
        raise LLMKitError(f"{path} is not a fine-tuned checkpoint; make one with llmkit finetune "
                          "(or llmkit run's classify/instruct stages).")
    if task is not None and info["task"] != task:
        other = "llmkit classify" if info["task"] == "classification" else "llmkit chat"
        raise LLMKitError(f"{path} was fine-tuned for {info['task']}, not {task}; use it with {other}.")
    model = create("models", payload.get("model_name", "gpt"), payload["model_cfg"])
    strategy = create("finetune_strategies", info["strategy"], **info["options"])
    model = strategy.prepare(model, info["task"], num_classes=info.get("num_classes", 2))
    load_model_state(model, payload["model"], source=f"checkpoint {path}")
    tokenizer = tokenizer_from_bytes(payload["tokenizer_name"], payload["tokenizer_data"])
    if device is not None:
        model = model.to(device.torch_device)
    return model.eval(), tokenizer, info


# --------------------------------------------------------------------------- commands


def finetune_from(cfg: RunConfig, source, strategy: str, task: str, run_dir=None, overwrite: bool = False,
                  show=print):
    """``llmkit finetune``: one strategy, one task, from a pretrained checkpoint, into a new run folder."""
    from datetime import datetime

    if task not in TASKS:
        raise LLMKitError(f"Unknown task {task!r}; choose classification or instruction.")
    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    get("finetune_strategies", strategy)  # unknown names fail here, with the closest match
    if task == "classification":
        cfg.finetune.strategies = [strategy]
    else:
        cfg.finetune.instruct_strategy = strategy
    _check_values(cfg.finetune)
    make_strategy(cfg.finetune, strategy, task)  # options and task, before loading a large model
    base = load_base(source)
    # The checkpoint decides the architecture and tokenizer; record them in the saved config.
    if base.run_model:
        cfg.model = run_config_from_dict({"model": base.run_model}).model
    else:
        m = base.model_cfg
        cfg.model.name, cfg.model.context_length, cfg.model.emb_dim = base.model_name, m["context_length"], m["emb_dim"]
        cfg.model.n_heads, cfg.model.n_layers = m["n_heads"], m["n_layers"]
        cfg.model.drop_rate, cfg.model.qkv_bias = float(m["drop_rate"]), bool(m["qkv_bias"])
    cfg.tokenizer.name = base.tokenizer_name
    cfg.tokenizer.vocab_size = vocab_size(base.tokenizer)
    cfg.run.stages = [TASKS[task]]
    stage = STAGES[TASKS[task]]
    stage.check(cfg)
    device = get_device(cfg.device.name, cfg.device.precision)
    run_dir = Path(run_dir) if run_dir else Path("runs") / datetime.now().strftime("finetune-%Y%m%d-%H%M%S")
    try:
        prepare_run_dir(run_dir, resume=False, overwrite=overwrite, device=device)
        if device.is_main:
            atomic_write_text(run_dir / "config.toml", to_toml(cfg))
        started = time.perf_counter()
        prepared = Prepared(base.tokenizer, [], [], base.model_cfg)
        result = stage(cfg, run_dir, device, base.model.to(device.torch_device), prepared)
        if device.is_main:
            write_report(run_dir, cfg, [result], time.perf_counter() - started)
    finally:
        device.close()
    return run_dir, result


def classify_text(text: str, checkpoint, device_name: str = "auto") -> str:
    """``llmkit classify``: "spam" or "not spam" for one message."""
    if not text.strip():
        raise LLMKitError("The text is empty; pass the message to classify, e.g. llmkit classify \"Win a prize!\".")
    device = get_device(device_name, "fp32")
    model, tokenizer, info = load_finetuned(checkpoint, device, task="classification")
    return classify_review(text, model, tokenizer, device.torch_device, max_length=info["max_length"],
                           pad_token_id=info["pad_token_id"])


def chat(checkpoint, lines=None, out=None, device_name: str = "auto", max_new_tokens: int | None = None) -> int:
    """``llmkit chat``: answer each input line as an instruction until EOF or ``exit``; returns the count."""
    lines = sys.stdin if lines is None else lines
    out = out or sys.stdout
    device = get_device(device_name, "fp32")
    model, tokenizer, info = load_finetuned(checkpoint, device, task="instruction")
    limit = max_new_tokens or info.get("max_new_tokens", 64)
    interactive = lines is sys.stdin and sys.stdin.isatty()
    read = lines.readline if hasattr(lines, "readline") else partial(next, iter(lines), "")
    answered = 0
    while True:
        if interactive:
            print("you> ", end="", file=out, flush=True)
        line = read()
        if not line:  # EOF
            break
        text = line.strip()
        if text.lower() in ("exit", "quit"):
            break
        if not text:
            continue
        answer = respond(model, tokenizer, {"instruction": text, "input": ""}, device, limit, info["pad_token_id"])
        print(answer, file=out, flush=True)
        answered += 1
    return answered
