"""What the two fine-tuning stages share: building a strategy by name, fresh copies, loaders."""

from __future__ import annotations

import copy

import torch
from torch.utils.data import DataLoader

from ... import contracts
from ...errors import LLMKitError
from ...plugins import create, get
from ...runconfig import FinetuneConfig, RunConfig
from ...tokenizers import encode_text
from ..data import model_config

TASK_STAGES = {"classification": "classify", "instruction": "instruct"}


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


def make_strategy(f: FinetuneConfig, name: str, task: str, pad_id: int | None = None):
    """The strategy ``name`` with its ``[finetune.<name>]`` options, checked against its contract and task.

    Facts the run knows and a strategy may want are passed when it declares an option of that name
    (today one: ``pad_token_id``, the tokenizer's end-of-text id).
    """
    factory = get("finetune_strategies", name).factory
    options = dict(f.options.get(name, {}))
    if pad_id is not None and "pad_token_id" in getattr(factory, "options", {}) and "pad_token_id" not in options:
        options["pad_token_id"] = pad_id
    strategy = contracts.check("finetune_strategies", factory(**options), name)
    if task not in strategy.tasks:
        raise LLMKitError(f"finetune strategy '{name}' cannot do task {task!r}; its tasks are: "
                          f"{', '.join(strategy.tasks)}. Choose another strategy.")
    return strategy


def check_values(f: FinetuneConfig) -> None:
    """Numbers that must be positive, with the --set that fixes them; unknown strategy sections."""
    def need(ok, key, what, example):
        if not ok:
            raise LLMKitError(f"finetune.{key} must be {what}, got {getattr(f, key)!r}; "
                              f"set e.g. --set finetune.{key}={example}.")

    for key in ("classify_epochs", "instruct_epochs", "batch_size", "max_new_tokens"):
        need(getattr(f, key) >= 1, key, "at least 1", getattr(FinetuneConfig, key, 2))
    for key in ("classify_lr", "instruct_lr"):
        need(getattr(f, key) > 0, key, "a positive number", getattr(FinetuneConfig, key))
    for key in ("max_length", "patience", "max_train_examples", "max_eval_examples", "samples"):
        need(getattr(f, key) >= 0, key, "0 or more", 0)
    for name, options in f.options.items():  # a typo in [finetune.lorra] fails here, with the closest match
        if not isinstance(options, dict):
            raise LLMKitError(f"finetune.{name} must be a table of options, e.g. [finetune.{name}] ...; got {options!r}.")
        get("finetune_strategies", name).factory(**options)


def probe_model(cfg: RunConfig, model_cfg: dict | None = None):
    """The run's architecture without real weights (meta device), to see whether a strategy fits it."""
    model_cfg = model_cfg or model_config(cfg, 16)  # the vocabulary size does not change which modules exist
    try:
        with torch.device("meta"):
            return create("models", cfg.model.name, model_cfg)
    except LLMKitError:
        raise
    except Exception:  # a model that cannot be built on the meta device: build it for real
        return create("models", cfg.model.name, model_cfg)


def check_fit(cfg: RunConfig, names, task: str, model_cfg: dict | None = None) -> None:
    for name in names:
        make_strategy(cfg.finetune, name, task).prepare(probe_model(cfg, model_cfg), task, num_classes=2)


def fresh_copy(model):
    """A deep copy of the pretrained model with every parameter trainable again (strategies freeze)."""
    model = copy.deepcopy(model)
    for param in model.parameters():
        param.requires_grad = True
    return model


def loader(dataset, batch_size: int, shuffle: bool, seed: int, collate_fn=None) -> DataLoader:
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=collate_fn,
                      drop_last=shuffle and len(dataset) > batch_size)


def training(strategy, epochs: int, lr: float) -> tuple[int, float]:
    """The stage's epochs and learning rate, unless the strategy's options set its own."""
    return strategy.config.get("epochs") or epochs, strategy.config.get("lr") or lr
