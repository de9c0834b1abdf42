"""The ``classify`` stage: spam or not, one fresh copy of the pretrained model per strategy, side by side.

For each strategy in ``finetune.strategies``: prepare a copy of the model for 2-way classification,
train a few epochs on the book's balanced, seeded 70/10/20 split, keep the best validation epoch,
and score it on the test split. The report puts trainable parameters, time and accuracy side by side.
A checkpoint per strategy (``RUN_DIR/classify/<strategy>.pt``) rebuilds the classifier for
``llmkit classify``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from ...data import load_sms_spam_collection
from ...devices import Device
from ...errors import LLMKitError
from ...evaluation import classification_step, evaluate, finetune, plot_epochs
from ...finetune_data import CLASS_NAMES, SpamMessages, balanced_split, check_fits_context
from ...runconfig import RunConfig
from ...tokenizers import encode_text
from .. import artifacts
from ..rundir import StageResult, stage_dir
from ._common import check_fit, check_values, fresh_copy, loader, make_strategy, pad_token_id, training

NAME = "classify"
TASK = "classification"


def check(cfg: RunConfig, model_cfg: dict | None = None) -> None:
    """Fail before pretraining on a bad [finetune] value, spam file or strategy."""
    f = cfg.finetune
    check_values(f)
    if not isinstance(f.strategies, list) or not f.strategies:
        raise LLMKitError("finetune.strategies must be a non-empty list, e.g. --set 'finetune.strategies=[\"lora\"]'.")
    if f.max_length:
        check_fits_context(f.max_length, cfg.model.context_length)
    spam_splits(cfg)
    check_fit(cfg, f.strategies, TASK, model_cfg)


def spam_splits(cfg: RunConfig):
    """The book's data path: read, undersample ham to the spam count, shuffle, cut 70/10/20."""
    rows = load_sms_spam_collection(cfg.finetune.spam_path or None)
    if {label for label, _ in rows} != {"ham", "spam"}:
        where = cfg.finetune.spam_path or "the shipped messages.tsv"
        raise LLMKitError(f"{where} has only {'/'.join(sorted({l for l, _ in rows})) or 'no'} messages; "
                          "classification needs both ham and spam.")
    return balanced_split(rows, seed=cfg.run.seed)


class CachedFeatureHead(torch.nn.Module):
    """The trainable head of a feature-extraction classifier, fed pooled features computed once."""

    def __init__(self, classifier):
        super().__init__()
        self.head = classifier.head  # shared: training this trains the classifier's head

    def forward(self, features):
        return self.head(features).unsqueeze(1)  # (B, E) -> (B, 1, C): one "position", as classification_step reads


@torch.no_grad()
def feature_loader(classifier, batches, device: Device, batch_size: int, shuffle: bool, seed: int):
    """The classifier's frozen features of every batch, computed once, as a loader of (features, labels)."""
    classifier.eval()
    features, labels = [], []
    for ids, label in batches:
        features.append(classifier.features(ids.to(device.torch_device)).float())  # (B, E)
        labels.append(label)
    return loader(TensorDataset(torch.cat(features), torch.cat(labels)), batch_size, shuffle, seed)


def run(cfg: RunConfig, run_dir: Path, device: Device, base: artifacts.Trained) -> StageResult:
    """Fine-tune a copy of ``base.model`` per strategy for spam classification; compare them side by side."""
    f, seed = cfg.finetune, cfg.run.seed
    check_values(f)
    folder = stage_dir(run_dir, NAME, device)

    # 1. Data: the balanced split, encoded and padded (or cut) to one length.
    tokenizer, pad = base.tokenizer, pad_token_id(base.tokenizer)
    context = base.model_cfg["context_length"]
    train_rows, val_rows, test_rows = spam_splits(cfg)
    if f.max_train_examples:
        train_rows = train_rows[: f.max_train_examples]
    if f.max_length:
        max_length = f.max_length
        check_fits_context(max_length, context)
    else:  # long enough for 90% of the training messages; the longest 10% are cut
        lengths = sorted(len(encode_text(tokenizer, text)) for _, text in train_rows)
        max_length = max(1, min(context, lengths[int(0.9 * (len(lengths) - 1))]))
    sets = {name: SpamMessages(rows, tokenizer, max_length, pad)
            for name, rows in (("train", train_rows), ("val", val_rows), ("test", test_rows))}
    val_loader, test_loader = (loader(sets[n], f.batch_size, False, seed) for n in ("val", "test"))

    # 2. Each strategy on a fresh copy, from the same seed.
    rows, histories, started = [], {}, time.perf_counter()
    for name in f.strategies:
        torch.manual_seed(seed)  # every strategy: the same initial values, dropout masks and batch order
        train_loader = loader(sets["train"], f.batch_size, True, seed)
        strategy = make_strategy(f, name, TASK, pad)
        epochs, lr = training(strategy, f.classify_epochs, f.classify_lr)
        tuned = strategy.prepare(fresh_copy(base.model), TASK, num_classes=2).to(device.torch_device)
        described = strategy.describe(tuned)
        path = folder / f"{name}.pt"
        extra = artifacts.checkpoint_fields(
            base, cfg.to_dict(), task=TASK, strategy=name, options=dict(strategy.config), num_classes=2,
            max_length=max_length, pad_token_id=pad, class_names=list(CLASS_NAMES))
        common = dict(weight_decay=cfg.train.weight_decay, grad_clip=cfg.train.grad_clip, patience=f.patience,
                      device=device, label=name, metrics_path=folder / "metrics.jsonl", checkpoint_path=path,
                      checkpoint_extra=extra)
        if getattr(tuned, "fixed_features", False):
            # A frozen body in eval mode: its features never change, so compute them once.
            extract_started = time.perf_counter()
            loaders = [feature_loader(tuned, batches, device, f.batch_size, shuffle, seed) for batches, shuffle in
                       ((loader(sets["train"], f.batch_size, False, seed), True), (val_loader, False),
                        (test_loader, False))]
            extract_seconds = time.perf_counter() - extract_started
            head = CachedFeatureHead(tuned)
            result = finetune(head, loaders[0], loaders[1], classification_step, epochs=epochs, lr=lr,
                              save_model=tuned, **common)
            result.seconds += extract_seconds
            test = evaluate(head, loaders[2], classification_step, device)
        else:
            result = finetune(tuned, train_loader, val_loader, classification_step, epochs=epochs, lr=lr, **common)
            test = evaluate(tuned, test_loader, classification_step, device)
        best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
        row = {"strategy": name, "trainable": described["trainable"], "total": described["total"],
               "epochs": len(result.history), "best_epoch": result.best_epoch, "seconds": round(result.seconds, 1),
               "val_accuracy": best["val_accuracy"], "test_accuracy": test["accuracy"],
               "test_loss": test["loss"], "checkpoint": str(path)}
        rows.append(row)
        histories[name] = result.history
        if device.is_main:
            with (folder / "metrics.jsonl").open("a") as out:
                out.write(json.dumps({"kind": "test", "label": name, **row}) + "\n")
        del tuned

    # 3. The comparison.
    best = max(rows, key=lambda r: r["test_accuracy"])
    summary = {"best_strategy": best["strategy"], "best_test_accuracy": round(best["test_accuracy"], 4),
               "seconds": round(time.perf_counter() - started, 1),
               "strategies": {r["strategy"]: r for r in rows},
               "data": {"train": len(sets["train"]), "val": len(sets["val"]), "test": len(sets["test"]),
                        "max_length": max_length, "source": f.spam_path or "shipped messages.tsv"}}
    markdown = ""
    if device.is_main:
        plot_epochs(histories, folder / "curves.png", "Spam classification: per-epoch loss and accuracy")
        markdown = report(summary, rows)
    return StageResult(NAME, summary, markdown)


def report(summary: dict, rows: list) -> str:
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
