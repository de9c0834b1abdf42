"""The notes' fine-tuning recipe, for real: one pretrained encoder, four ways to adapt it, side by side.

    llmkit compare finetune --model minilm            # all-MiniLM-L6-v2 on spam and on the reviews

For each task (the shipped spam messages; the shipped product reviews, longer, three classes) and
each strategy, a fresh copy of the encoder is prepared by the kit's own strategy by name:

    feature-extraction   frozen encoder, mean-pooled features computed once, a small MLP head trained
    full                 every weight trained, a new classification head on the [CLS]/mean pool
    adapter              frozen encoder, bottleneck adapters after each attention and MLP trained
    lora                 frozen encoder, low-rank updates of every linear layer trained

Training is ``llmkit.evaluation.finetune`` (AdamW, warmup + cosine, best validation epoch kept),
scoring ``classification_step`` on a seeded 70/10/20 split. The table gives test accuracy, trainable
parameters and time. Texts are ``[CLS] text [SEP]`` padded with ``[PAD]``, which the encoder masks.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from ..errors import LLMKitError
from ..evaluation import classification_step, evaluate, finetune
from ..plugins import create, get

TASKS = {"spam": ("spam/messages.tsv", 64), "reviews": ("reviews/reviews.tsv", 96)}  # file, max tokens
# Per strategy: its options and the learning rate that suits it (small for full fine-tuning).
STRATEGIES = {
    "feature-extraction": ({"pool": "mean", "hidden": 128, "dropout": 0.1}, 3e-3, 10),
    "full": ({}, 1e-4, 2),
    "adapter": ({"bottleneck": 32}, 1e-3, 2),
    "lora": ({"rank": 8, "alpha": 16, "target": "all"}, 1e-3, 2),
}


@dataclass
class RecipeConfig:
    model: str = "minilm"  # "minilm" (the shipped all-MiniLM-L6-v2), a BERT folder, or "tiny" (random, for tests)
    tasks: list = field(default_factory=lambda: list(TASKS))
    strategies: list = field(default_factory=lambda: list(STRATEGIES))
    epochs: int = 0  # 0: each strategy's own (2; 10 for the cheap feature-extraction head)
    batch_size: int = 16
    max_train_examples: int = 96  # > 0: train on the first N only; 96 keeps 2 CPU cores to minutes (0: all)
    seed: int = 123


def read_labelled(path) -> list[tuple[str, str]]:
    """``label<TAB>text`` lines after a header -> ``[(label, text)]``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows = [tuple(line.split("\t", 1)) for line in lines[1:] if line.strip()]
    if not rows or any(len(r) != 2 for r in rows):
        raise LLMKitError(f"{path} is not a label<TAB>text file with a header line.")
    return rows


def task_rows(task: str) -> list[tuple[str, str]]:
    if task not in TASKS:
        raise LLMKitError(f"unknown task {task!r}; tasks are: {', '.join(TASKS)}.")
    return read_labelled(resources.files("llmkit") / "data" / TASKS[task][0])


def split(rows: list, seed: int, fractions=(0.7, 0.1)) -> tuple[list, list, list]:
    """Seeded shuffle, then train / validation / test."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    a, b = int(fractions[0] * len(rows)), int((fractions[0] + fractions[1]) * len(rows))
    return rows[:a], rows[a:b], rows[b:]


def encode_rows(rows, tokenizer, labels: list[str], max_length: int) -> TensorDataset:
    """``[CLS] text [SEP]`` cut to ``max_length`` and padded with ``[PAD]``: (N, max_length) ids, (N,) labels."""
    pad = tokenizer.pad_id
    ids = []
    for _, text in rows:
        row = tokenizer.with_cls_sep(tokenizer.encode(text)[: max_length - 2])
        ids.append(row + [pad] * (max_length - len(row)))
    return TensorDataset(torch.tensor(ids), torch.tensor([labels.index(label) for label, _ in rows]))


def load_encoder(name: str, seed: int = 123):
    """(model, tokenizer): the shipped MiniLM, a BERT folder, or a tiny random encoder with a BPE vocabulary."""
    encoder = get("models", "bert").factory  # the encoder plugin; fails with the plugins not loaded
    if name != "tiny":
        import llmkit_encoder  # loaded above through the registry

        model, _, tokenizer = llmkit_encoder.load_bert(llmkit_encoder.resolve(name))
        return model, tokenizer
    from ..tokenizers import build_tokenizer

    text = " ".join(t for task in TASKS for _, t in task_rows(task)[:200])
    tokenizer = build_tokenizer("bpe-special", text, vocab_size=400)
    torch.manual_seed(seed)
    cfg = {"vocab_size": tokenizer.n_vocab, "context_length": 128, "emb_dim": 32, "n_heads": 2, "n_layers": 2,
           "drop_rate": 0.1, "qkv_bias": True, "pad_token_id": tokenizer.pad_id, "pool": "mean"}
    return encoder(cfg), tokenizer


class _CachedHead(torch.nn.Module):
    """A feature-extraction classifier's head fed features computed once: (B, E) -> (B, 1, C)."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, features):
        return self.head(features).unsqueeze(1)


@torch.no_grad()
def _features(classifier, dataset: TensorDataset, batch_size: int) -> TensorDataset:
    classifier.eval()
    ids, labels = dataset.tensors
    feats = torch.cat([classifier.features(ids[i:i + batch_size]) for i in range(0, len(ids), batch_size)])
    return TensorDataset(feats, labels)


def run_strategy(base, tokenizer, name: str, sets: dict, num_classes: int, cfg: RecipeConfig) -> dict:
    """One strategy on a fresh copy of ``base``: {"trainable", "total", "seconds", "val_accuracy", "test_accuracy"}."""
    options, lr, epochs = STRATEGIES.get(name, ({}, 1e-3, 3))
    if name == "feature-extraction":
        options = {**options, "pad_token_id": tokenizer.pad_id}
    torch.manual_seed(cfg.seed)
    strategy = create("finetune_strategies", name, **options)
    model = copy.deepcopy(base)
    for p in model.parameters():
        p.requires_grad = True
    model = strategy.prepare(model, "classification", num_classes=num_classes)
    described = strategy.describe(model)
    started = time.perf_counter()
    if getattr(model, "fixed_features", False):  # frozen body: its features never change, compute them once
        sets = {k: _features(model, v, cfg.batch_size) for k, v in sets.items()}
        model = _CachedHead(model.head)
    g = torch.Generator().manual_seed(cfg.seed)
    train = DataLoader(sets["train"], batch_size=cfg.batch_size, shuffle=True, generator=g)
    val = DataLoader(sets["val"], batch_size=64)
    result = finetune(model, train, val, classification_step, epochs=cfg.epochs or epochs, lr=lr, patience=0,
                      show_progress=False)
    seconds = time.perf_counter() - started
    test = evaluate(model, DataLoader(sets["test"], batch_size=64), classification_step)
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    return {"strategy": name, "trainable": described["trainable"], "total": described["total"],
            "epochs": len(result.history), "seconds": seconds, "val_accuracy": best["val_accuracy"],
            "test_accuracy": test["accuracy"]}


def run_recipe(cfg: RecipeConfig, log=print) -> list[dict]:
    """Every (task, strategy) of ``cfg``; one row each, printed as it finishes."""
    base, tokenizer = load_encoder(cfg.model, cfg.seed)
    base.eval()
    rows = []
    for task in cfg.tasks:
        data = task_rows(task)
        labels = sorted({label for label, _ in data})
        train_rows, val_rows, test_rows = split(data, cfg.seed)
        if cfg.max_train_examples:
            train_rows = train_rows[: cfg.max_train_examples]
        max_length = min(TASKS[task][1], base.context_length)
        sets = {k: encode_rows(r, tokenizer, labels, max_length)
                for k, r in (("train", train_rows), ("val", val_rows), ("test", test_rows))}
        for name in cfg.strategies:
            row = {"task": task, "classes": len(labels), "train": len(train_rows), "test": len(test_rows),
                   **run_strategy(base, tokenizer, name, sets, len(labels), cfg)}
            rows.append(row)
            log(f"{task:<8} {name:<19} test accuracy {row['test_accuracy']:.3f}  "
                f"{row['trainable']:>10,} trainable  {row['seconds']:6.1f} s")
    return rows


def report(rows: list[dict], model: str) -> str:
    lines = [f"## Fine-tuning recipe: {model}", "",
             "Each strategy starts from a fresh copy of the pretrained encoder; the weights of the best validation "
             "epoch are scored on the test split. Time is training (and, for feature-extraction, computing the "
             "frozen features once).", "",
             "| task | strategy | test accuracy | trainable parameters | share | epochs | time |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['task']} ({r['classes']} classes, {r['train']} train / {r['test']} test) | {r['strategy']} "
                     f"| **{100 * r['test_accuracy']:.1f}%** | {r['trainable']:,} | "
                     f"{100 * r['trainable'] / r['total']:.2f}% | {r['epochs']} | {r['seconds']:.1f} s |")
    return "\n".join(lines) + "\n"
