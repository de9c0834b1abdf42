"""Fine-tuning loop and evaluation shared by the classification and instruction stages.

``finetune(model, train_loader, val_loader, step, ...)`` trains for a few epochs with the kit's
optimizer and schedule (``llmkit.training.make_optimizer`` / ``lr_factor``), evaluates on the
validation loader after every epoch, keeps the weights of the best validation epoch (and writes
them atomically when given a checkpoint path), stops early after ``patience`` epochs without
improvement, and appends one record per epoch to ``metrics.jsonl``.

A *step* function turns a batch into ``(loss, correct, count)``: ``classification_step`` reads the
last token's logits (the book's stage-8 recipe), ``lm_step`` is next-token prediction with ``-100``
targets ignored (stage 9). ``correct`` is ``None`` when accuracy means nothing for the task.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .checkpoint import save_checkpoint
from .devices import CPUDevice, Device
from .errors import LLMKitError
from .training import MetricsLog, TrainConfig, lr_factor, make_optimizer


def classification_step(model, inputs, labels):
    """Cross-entropy of the last position's logits (B, C) against labels (B,); also counts hits."""
    logits = model(inputs)[:, -1, :].float()  # (B, T, C) -> (B, C)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    correct = (logits.argmax(dim=-1) == labels).sum().item()
    return loss, correct, labels.shape[0]


def lm_step(model, inputs, targets):
    """Next-token loss over every target that is not -100 (padding, and the prompt when masked)."""
    logits = model(inputs).float()  # (B, T, vocab)
    count = int((targets != -100).sum().item())
    if count == 0:  # every target masked (e.g. prompts cut to the context): nothing to learn, not NaN
        return logits.sum() * 0.0, None, 0
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    return loss, None, count


@torch.no_grad()
def evaluate(model, loader, step: Callable, device: Device | None = None, max_batches: int | None = None) -> dict:
    """Mean loss (weighted by examples or target tokens) and accuracy over a loader, in eval mode."""
    device = device or CPUDevice()
    was_training = model.training
    model.eval()
    total_loss, correct, count, with_accuracy = 0.0, 0, 0, False
    for i, (inputs, targets) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        inputs, targets = inputs.to(device.torch_device), targets.to(device.torch_device)
        with device.autocast():
            loss, hits, n = step(model, inputs, targets)
        if n == 0:
            continue
        total_loss += loss.item() * n
        count += n
        if hits is not None:
            correct, with_accuracy = correct + hits, True
    model.train(was_training)
    if count == 0:
        return {"loss": float("nan"), "accuracy": None}
    return {"loss": total_loss / count, "accuracy": correct / count if with_accuracy else None}


@dataclass
class FinetuneResult:
    history: list = field(default_factory=list)  # one dict per epoch
    best_epoch: int = 0  # 1-based; 0: no epoch beat the starting point
    best_val_loss: float = math.inf
    stopped_early: bool = False
    steps: int = 0
    seconds: float = 0.0


def finetune(model, train_loader, val_loader, step: Callable, *, epochs: int, lr: float,
             weight_decay: float = TrainConfig.weight_decay, warmup_fraction: float = 0.1,
             grad_clip: float = TrainConfig.grad_clip, patience: int = 2,
             device: Device | None = None, metrics_path: str | Path | None = None, label: str = "finetune",
             checkpoint_path: str | Path | None = None, checkpoint_extra: dict | None = None,
             save_model=None, show_progress: bool | None = None) -> FinetuneResult:
    """Train ``model`` in place; on return it holds the best validation epoch's weights.

    The best epoch is the one with the lowest validation loss (ties keep the earlier epoch).
    ``patience`` epochs in a row without a new best stop training (0 disables early stopping).
    ``save_model`` is what the checkpoint stores when it is not ``model`` itself (e.g. a whole
    classifier whose head alone is trained on cached features).
    """
    if epochs < 1:
        raise LLMKitError(f"epochs must be at least 1, got {epochs}.")
    if len(train_loader) == 0:
        raise LLMKitError("the training set gives no batch; use more examples or a smaller batch_size.")
    device = device or CPUDevice()
    if not any(p.requires_grad for p in model.parameters()):
        raise LLMKitError("the model has no trainable parameters; prepare it with a finetune strategy first.")
    optimizer = make_optimizer(model, lr, weight_decay)
    total_steps = epochs * len(train_loader)
    warmup = max(1, int(warmup_fraction * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup, TrainConfig.min_lr_ratio))
    metrics = MetricsLog(Path(metrics_path) if metrics_path is not None and device.is_main else None)
    trainable = [p for p in model.parameters() if p.requires_grad]

    result = FinetuneResult()
    best_state, bad_epochs = None, 0
    started = time.perf_counter()
    progress = tqdm(total=total_steps, desc=label, unit="step",
                    disable=(not device.is_main) if show_progress is None else not show_progress)
    for epoch in range(1, epochs + 1):
        model.train()
        run_loss, run_correct, run_count, with_accuracy = 0.0, 0, 0, False
        for inputs, targets in train_loader:
            inputs, targets = inputs.to(device.torch_device), targets.to(device.torch_device)
            with device.autocast():
                loss, hits, n = step(model, inputs, targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
            optimizer.step()
            scheduler.step()
            result.steps += 1
            run_loss += loss.item() * n
            run_count += n
            if hits is not None:
                run_correct, with_accuracy = run_correct + hits, True
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
        val = evaluate(model, val_loader, step, device)
        record = {"kind": "epoch", "label": label, "epoch": epoch, "step": result.steps,
                  # train figures are running means over the epoch's batches (dropout on)
                  "train_loss": run_loss / max(run_count, 1),
                  "train_accuracy": run_correct / max(run_count, 1) if with_accuracy else None,
                  "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                  "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - started}
        improved = best_state is None or val["loss"] < result.best_val_loss  # the first epoch always counts
        record["best"] = improved
        result.history.append(record)
        metrics.write(record)
        if improved:
            result.best_val_loss, result.best_epoch, bad_epochs = val["loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint_path is not None and device.is_main:
                save_checkpoint(checkpoint_path, model if save_model is None else save_model,
                                **(checkpoint_extra or {}), finetune_epoch=epoch, val_loss=val["loss"],
                                val_accuracy=val["accuracy"])
        else:
            bad_epochs += 1
            if patience > 0 and bad_epochs >= patience and epoch < epochs:
                result.stopped_early = True
                break
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    return result


def plot_epochs(histories: dict, path: str | Path, title: str) -> Path:
    """Per-epoch loss (left) and accuracy (right, when there is one) for each label: train solid, val dashed."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    has_accuracy = any(r.get("val_accuracy") is not None for h in histories.values() for r in h)
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(10 if has_accuracy else 6, 3.8), dpi=110,
                             squeeze=False)
    panels = [("loss", "cross-entropy loss")] + ([("accuracy", "accuracy")] if has_accuracy else [])
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (metric, ylabel) in zip(axes[0], panels):
        for i, (label, history) in enumerate(histories.items()):
            epochs = [r["epoch"] for r in history]
            color = colors[i % len(colors)]
            for split, style in (("train", "-"), ("val", "--")):
                values = [r.get(f"{split}_{metric}") for r in history]
                if any(v is not None for v in values):
                    ax.plot(epochs, values, style, color=color, marker=".", label=f"{label} {split}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def judge_with_local_server(url: str, entries, responses, model: str = "llama3", timeout: float = 60.0) -> list:
    """Ask a local LLM server to score free-form responses 0-100; never called by the kit itself.

    ``url`` is a chat endpoint you run yourself: Ollama's ``http://localhost:11434/api/chat`` or an
    OpenAI-compatible ``.../v1/chat/completions``. Returns one int (or None when the reply holds no
    number) per response. Nothing is sent anywhere unless you call this with a URL.
    """
    import json
    import re
    import urllib.request

    from .finetune_data import alpaca_prompt

    scores = []
    for entry, response in zip(entries, responses):
        prompt = (f"Given the input `{alpaca_prompt(entry)}` and the correct output `{entry['output']}`, "
                  f"score the response `{response}` on a scale from 0 to 100, where 100 is the best. "
                  "Respond with the integer number only.")
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": False,
                "temperature": 0, "options": {"temperature": 0, "seed": 123}}
        request = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                data = json.loads(reply.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise LLMKitError(f"the judge at {url} did not answer ({type(exc).__name__}: {exc}); "
                              "start your local server or check the URL.") from None
        message = data.get("message") or (data.get("choices") or [{}])[0].get("message") or {}
        found = re.search(r"\d+", str(message.get("content", "")))
        scores.append(min(100, int(found.group())) if found else None)
    return scores
