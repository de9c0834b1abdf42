"""Fine-tuning strategies: which parameters train, and which modules are added, for a task.

    strategy = llmkit.create("finetune_strategies", "lora", rank=16, alpha=16)
    model = strategy.prepare(model, "classification", num_classes=2)   # or "instruction" / "lm"
    strategy.describe(model)   # {"strategy": "lora", "trainable": ..., "total": ..., "added": [...]}

A strategy works on any model that exposes the attributes it needs from the book's ``GPTModel``
(``out_head``, ``trf_blocks`` with ``att``/``ff``, ``final_norm``, the attention's ``W_query`` ...);
when one is missing, ``prepare`` says which. ``prepare`` changes the model in place (except
``feature-extraction``, which returns a wrapper) and returns the model to train.

Options belong to the strategy: ``options`` holds each one's default, an unknown key fails with the
closest match, and a run config passes a ``[finetune.<name>]`` section straight through. Every
strategy also takes ``epochs`` and ``lr``, which override the stage's for that strategy only.
The class defaults are the ones ``llmkit run`` uses, sized for small models on a CPU.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from .errors import LLMKitError
from .hookspecs import hookimpl
from .lora import TARGETS as LORA_TARGETS
from .lora import apply_lora, check_rank_alpha, target_paths
from .registry import closest

TASKS = ("classification", "instruction", "lm")
# Options every strategy takes: None means the stage's own number of epochs and learning rate.
TRAINING_OPTIONS = {"epochs": None, "lr": None}


def count_trainable(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; trainable means ``requires_grad``."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def _emb_dim(model):
    """The width of the final hidden states, read from the head (or the token embedding)."""
    head = getattr(model, "out_head", None)
    if isinstance(head, nn.Linear):
        return head.in_features
    tok_emb = getattr(model, "tok_emb", None)
    return tok_emb.embedding_dim if isinstance(tok_emb, nn.Embedding) else None


def _place_like(module, model):
    """Move a new module onto the model's device and dtype."""
    ref = next(model.parameters(), None)
    return module if ref is None else module.to(device=ref.device, dtype=ref.dtype)


def _set_trainable(model, flag):
    for param in model.parameters():
        param.requires_grad = flag


class FinetuneStrategy:
    """Base class: validated options, ``prepare(model, task)`` and ``describe(model)``."""

    name = "base"
    options: dict = {}  # option -> default
    tasks = TASKS

    def __init__(self, **options):
        known = {**TRAINING_OPTIONS, **self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            hint = closest(unknown[0], list(known))
            accepted = ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "none but epochs and lr"
            raise LLMKitError(
                f"finetune strategy '{self.name}' has no option {', '.join(unknown)}"
                + (f" (did you mean '{hint}'?)" if hint else "") + f"; its options are: {accepted}."
            )
        self.config = {**self.options, **options}
        self.added = []
        self._check_training_options()
        self.check_options()

    def _check_training_options(self):
        epochs, lr = self.config.get("epochs"), self.config.get("lr")
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
            raise LLMKitError(f"finetune strategy '{self.name}': epochs must be an integer >= 1, got {epochs!r}.")
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0):
            raise LLMKitError(f"finetune strategy '{self.name}': lr must be a positive number, got {lr!r}.")

    def check_options(self):
        """Reject bad option values early (subclasses)."""

    def fail(self, model, missing):
        raise LLMKitError(f"finetune strategy '{self.name}' does not fit {type(model).__name__}: it lacks {missing}.")

    def prepare(self, model, task="lm", num_classes=2):
        if task not in self.tasks:
            raise LLMKitError(
                f"finetune strategy '{self.name}' cannot do task {task!r}; its tasks are: {', '.join(self.tasks)}."
            )
        if task == "classification" and (not isinstance(num_classes, int) or num_classes < 2):
            raise LLMKitError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
        self.added = []
        return self._prepare(model, task, num_classes)

    def _prepare(self, model, task, num_classes):
        raise NotImplementedError

    def check_head(self, model):
        """The width a classification head needs; fails when there is no head to replace."""
        emb_dim = _emb_dim(model)
        if emb_dim is None or not hasattr(model, "out_head"):
            self.fail(model, "an nn.Linear out_head (and emb_dim) to replace with a classification head")
        return emb_dim

    def replace_head(self, model, num_classes):
        """A fresh ``Linear(emb_dim, num_classes)`` as ``out_head`` (the book's classification head)."""
        emb_dim = self.check_head(model)
        model.out_head = _place_like(nn.Linear(emb_dim, num_classes), model)
        self.added.append("out_head")
        return model

    def describe(self, model):
        trainable, total = count_trainable(model)
        return {"strategy": self.name, "trainable": trainable, "total": total, "added": list(self.added)}


class FullFinetune(FinetuneStrategy):
    """Train every parameter; for classification, first swap in a new head."""

    name = "full"

    def _prepare(self, model, task, num_classes):
        if task == "classification":
            self.replace_head(model, num_classes)
        _set_trainable(model, True)
        return model


class LoRAFinetune(FinetuneStrategy):
    """Freeze the model and train low-rank updates (LoRA) of its linear layers."""

    name = "lora"
    options = {"rank": 8, "alpha": 16, "target": "all"}  # the book uses rank 16 on GPT-2 small

    def check_options(self):
        check_rank_alpha(self.config["rank"], self.config["alpha"])
        if self.config["target"] not in LORA_TARGETS:
            raise LLMKitError(
                f"Unknown LoRA target {self.config['target']!r}; choose one of: {', '.join(LORA_TARGETS)}."
            )

    def _prepare(self, model, task, num_classes):
        target = self.config["target"]
        if task == "classification":
            self.check_head(model)  # check everything before changing anything
        if not target_paths(model, target):
            what = "attention layers named W_query/W_key/W_value/out_proj" if target != "all" else "any nn.Linear"
            self.fail(model, f"{what} for target {target!r}")
        if task == "classification":
            self.replace_head(model, num_classes)  # the book's order: new head, freeze, then LoRA
        _set_trainable(model, False)
        paths = apply_lora(model, self.config["rank"], self.config["alpha"], target)
        self.added += [f"{path}.lora" for path in paths]
        return model


class ClassificationFinetune(FinetuneStrategy):
    """The book's stage-8 recipe: new head, train the last block(s) and the final norm."""

    name = "classification"
    options = {"trainable_blocks": 1}
    tasks = ("classification",)

    def _prepare(self, model, task, num_classes):
        missing = [a for a in ("trf_blocks", "final_norm") if not hasattr(model, a)]
        if _emb_dim(model) is None or not isinstance(getattr(model, "out_head", None), nn.Linear):
            missing.append("an nn.Linear out_head")
        if missing:
            self.fail(model, " and ".join(missing))
        blocks = list(model.trf_blocks)
        k = self.config["trainable_blocks"]
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= len(blocks):
            raise LLMKitError(f"trainable_blocks must be between 0 and {len(blocks)}, got {k!r}.")
        # The book's order: freeze everything, a new head (trainable), then thaw the last blocks and final norm.
        _set_trainable(model, False)
        self.replace_head(model, num_classes)
        for module in blocks[len(blocks) - k:] + [model.final_norm]:
            _set_trainable(module, True)
        return model


# --------------------------------------------------------------------------- feature extraction


class FeatureExtractionClassifier(nn.Module):
    """A frozen body's pooled final-norm states -> small MLP head -> class logits.

    ``forward(in_idx)`` returns (B, T, num_classes) in which every position holds the same pooled
    prediction, so the book's last-token loss and accuracy functions work unchanged.
    """

    fixed_features = True  # features(ids) never change while training: the classify stage computes them once

    def __init__(self, body, emb_dim, num_classes, hidden=256, activation="gelu", dropout=0.1, pool="last",
                 pad_token_id=50256):
        super().__init__()
        body.out_head = nn.Identity()  # the body now returns final-norm hidden states (B, T, E)
        self.body = body
        self.pool = pool
        self.pad_token_id = pad_token_id
        act = nn.GELU(approximate="tanh") if activation == "gelu" else nn.ReLU()
        self.head = nn.Sequential(nn.Linear(emb_dim, hidden), act, nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    @property
    def context_length(self) -> int:
        from .contracts import context_length

        return context_length(self.body)

    @property
    def pos_emb(self):  # the book's helpers (classify_review) read the context length here
        return self.body.pos_emb

    def train(self, mode=True):
        super().train(mode)
        self.body.eval()  # fixed features: no dropout in the frozen body
        return self

    def features(self, in_idx):
        """(B, T) ids -> (B, E) pooled hidden states, computed without autograd."""
        with torch.no_grad():
            hidden = self.body(in_idx)  # (B, T, E)
        if self.pool == "last":
            return hidden[:, -1, :]
        keep = (in_idx != self.pad_token_id).unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        keep = torch.where(keep.sum(dim=1, keepdim=True) > 0, keep, torch.ones_like(keep))  # all-pad row: use all
        return (hidden * keep).sum(dim=1) / keep.sum(dim=1)  # (B, E)

    def forward(self, in_idx):
        logits = self.head(self.features(in_idx))  # (B, C)
        return logits.unsqueeze(1).expand(-1, in_idx.shape[1], -1)  # (B, T, C)


class FeatureExtractionFinetune(FinetuneStrategy):
    """Freeze the whole model, pool its final hidden states and train a small MLP head."""

    name = "feature-extraction"
    # Its body is frozen, so the stage computes the features once: many cheap epochs of the head alone.
    options = {"pool": "mean", "hidden": 128, "activation": "gelu", "dropout": 0.1, "pad_token_id": 50256,
               "epochs": 10, "lr": 3e-3}
    tasks = ("classification",)

    def check_options(self):
        if self.config["pool"] not in ("last", "mean"):
            raise LLMKitError(f"pool must be 'last' or 'mean', got {self.config['pool']!r}.")
        if self.config["activation"] not in ("gelu", "relu"):
            raise LLMKitError(f"activation must be 'gelu' or 'relu', got {self.config['activation']!r}.")

    def _prepare(self, model, task, num_classes):
        emb_dim = _emb_dim(model)
        if emb_dim is None or not hasattr(model, "out_head"):
            self.fail(model, "an out_head applied to the final hidden states (and emb_dim)")
        _set_trainable(model, False)
        head_options = {k: v for k, v in self.config.items() if k not in TRAINING_OPTIONS}
        wrapper = FeatureExtractionClassifier(model, emb_dim, num_classes, **head_options)
        _place_like(wrapper.head, model)
        wrapper.train(model.training)  # keeps the body in eval mode from the start
        self.added.append("head")
        return wrapper


# --------------------------------------------------------------------------- adapters


class Adapter(nn.Module):
    """Bottleneck adapter with a residual: x + up(GELU(down(x))); starts as the identity."""

    def __init__(self, emb_dim, bottleneck):
        super().__init__()
        self.down = nn.Linear(emb_dim, bottleneck)
        self.act = nn.GELU(approximate="tanh")
        self.up = nn.Linear(bottleneck, emb_dim)
        nn.init.zeros_(self.up.weight)  # zero up-projection: the adapted model equals the base one
        nn.init.zeros_(self.up.bias)

    def forward(self, x):
        return x + self.up(self.act(self.down(x)))  # (B, T, E)


class WithAdapter(nn.Module):
    """Runs a wrapped sub-layer (``att`` or ``ff``), then an ``Adapter`` on its output."""

    def __init__(self, module, emb_dim, bottleneck):
        super().__init__()
        self.module = module
        self.adapter = Adapter(emb_dim, bottleneck)

    def forward(self, x, **kwargs):
        return self.adapter(self.module(x, **kwargs))


class AdapterFinetune(FinetuneStrategy):
    """Freeze the model and train bottleneck adapters after each block's attention and MLP."""

    name = "adapter"
    options = {"bottleneck": 32}

    def check_options(self):
        b = self.config["bottleneck"]
        if isinstance(b, bool) or not isinstance(b, int) or b <= 0:
            raise LLMKitError(f"adapter bottleneck must be a positive integer, got {b!r}; pass e.g. bottleneck=64.")

    def _prepare(self, model, task, num_classes):
        blocks = getattr(model, "trf_blocks", None)
        emb_dim = _emb_dim(model)
        if blocks is None or emb_dim is None or not all(hasattr(b, "att") and hasattr(b, "ff") for b in blocks):
            self.fail(model, "trf_blocks whose blocks have att and ff (and an out_head or tok_emb for emb_dim)")
        if task == "classification":
            self.replace_head(model, num_classes)
        _set_trainable(model, False)
        for i, block in enumerate(blocks):
            for name in ("att", "ff"):
                if isinstance(getattr(block, name), WithAdapter):
                    continue  # prepared before: keep the existing adapter
                wrapped = WithAdapter(getattr(block, name), emb_dim, self.config["bottleneck"])
                _place_like(wrapped.adapter, model)
                setattr(block, name, wrapped)
                self.added.append(f"trf_blocks.{i}.{name}.adapter")
        for module in model.modules():
            if isinstance(module, Adapter):
                _set_trainable(module, True)
        if task == "classification":
            _set_trainable(model.out_head, True)
        return model


STRATEGIES = (FullFinetune, LoRAFinetune, ClassificationFinetune, FeatureExtractionFinetune, AdapterFinetune)


@hookimpl
def register_finetune_strategies(register):
    for strategy in STRATEGIES:
        register(strategy.name, strategy, doc=inspect.getdoc(strategy).splitlines()[0])
