"""Checkpoints: one format for every model a run writes, and one loader that rebuilds model and tokenizer.

Beside the weights (and, while pretraining, what ``--resume`` needs: optimizer, schedule, RNG states
and loop position, see ``llmkit.checkpoint``), every checkpoint carries what rebuilds the model
without the corpus or the code that trained it:

    model_name, model_cfg            ``create("models", model_name, model_cfg)``
    tokenizer_name, tokenizer_data   the tokenizer's registry name and its own saved bytes
    run_config                       the whole config of the run that wrote it
    finetune                         fine-tuned only: task, strategy and its options, num_classes,
                                     max_length, pad_token_id, ... (the strategy rebuilds the model)

``load(path)`` is the one way back, for ``llmkit generate``, ``chat``, ``classify``, ``finetune --from``,
``pretrain --from`` and the playground widget alike.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint, load_model_state
from ..errors import LLMKitError
from ..plugins import create, get

TASK_COMMANDS = {"classification": "llmkit classify", "instruction": "llmkit chat"}


@dataclass
class Trained:
    """A model and everything that rebuilds it."""

    model: torch.nn.Module | None  # None when loaded with build=False
    tokenizer: object
    model_name: str
    model_cfg: dict
    tokenizer_name: str
    run_config: dict | None = None  # RunConfig.to_dict() of the run that wrote it
    finetune: dict | None = None  # fine-tuned: task, strategy, options, ...
    weights: dict | None = None  # the state dict, when the model itself was not built (build=False)


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


def checkpoint_fields(trained: Trained, run_config: dict, **finetune) -> dict:
    """What a checkpoint stores beside the weights; ``finetune`` keywords mark a fine-tuned one."""
    fields = {"run_config": run_config, "model_name": trained.model_name, "model_cfg": dict(trained.model_cfg),
              "tokenizer_name": trained.tokenizer_name, "tokenizer_data": tokenizer_bytes(trained.tokenizer)}
    if finetune:
        fields["finetune"] = finetune
    return fields


def _model_name(payload: dict) -> str:
    # Checkpoints written before model_name was stored keep it in their run config.
    return payload.get("model_name") or payload.get("run_config", {}).get("model", {}).get("name") or "gpt"


def load(path, device=None, expect: str | None = None, build: bool = True) -> Trained:
    """Rebuild ``Trained`` from a checkpoint written by a run, in eval mode on ``device``.

    ``expect``: "pretrained" (a model to fine-tune or continue), "classification" or "instruction"
    (a model fine-tuned for that task), "text" (anything that writes text), or None (anything).
    ``build=False`` skips building the model and keeps its state dict in ``weights`` (a run that
    continues from the checkpoint builds the model itself, seeded).
    """
    payload = load_checkpoint(path)
    if "model_cfg" not in payload or payload.get("tokenizer_data") is None:
        raise LLMKitError(f"{path} lacks the model config or tokenizer; use a checkpoint.pt written by llmkit run.")
    info = payload.get("finetune")
    task = info["task"] if info else None
    if expect in TASK_COMMANDS and task is None:
        raise LLMKitError(f"{path} is not a fine-tuned checkpoint; make one with llmkit finetune "
                          "(or llmkit run's classify/instruct stages).")
    if expect in TASK_COMMANDS and task != expect:
        raise LLMKitError(f"{path} was fine-tuned for {task}, not {expect}; use it with {TASK_COMMANDS[task]}.")
    if expect == "pretrained" and task is not None:
        raise LLMKitError(f"{path} is already fine-tuned ({task}, {info['strategy']}); "
                          "start from the pretrained checkpoint.pt.")
    if expect == "text" and task == "classification":
        raise LLMKitError(f"{path} was fine-tuned for classification and writes no text; "
                          "use it with llmkit classify.")
    name = _model_name(payload)
    tokenizer = tokenizer_from_bytes(payload["tokenizer_name"], payload["tokenizer_data"])
    if not build:
        return Trained(None, tokenizer, name, dict(payload["model_cfg"]), payload["tokenizer_name"],
                       payload.get("run_config"), info, weights=payload["model"])
    model = create("models", name, payload["model_cfg"])
    if info:
        strategy = create("finetune_strategies", info["strategy"], **info["options"])
        model = strategy.prepare(model, task, num_classes=info.get("num_classes", 2))
    load_model_state(model, payload["model"], source=f"checkpoint {path}")
    if device is not None:
        model = model.to(device.torch_device)
    return Trained(model.eval(), tokenizer, name, dict(payload["model_cfg"]), payload["tokenizer_name"],
                   payload.get("run_config"), info)


def load_pretrained(source, model_name: str = "gpt") -> Trained:
    """A model to fine-tune: a run's ``checkpoint.pt``, or GPT-2 weights (a Hugging Face or OpenAI folder,
    a ``.safetensors``/``.bin`` file) read by the ``model_name`` model's ``from_pretrained``."""
    path = Path(source)
    if path.is_file() and path.suffix not in (".safetensors", ".bin"):
        try:
            payload = load_checkpoint(path)
        except LLMKitError:
            payload = None  # e.g. the book's {"model_state_dict", "cfg"} file: from_pretrained reads it
        if payload is not None and "model_cfg" in payload:
            return load(path, expect="pretrained")
    factory = get("models", model_name).factory
    from_pretrained = getattr(factory, "from_pretrained", None)
    if from_pretrained is None:
        raise LLMKitError(f"model '{model_name}' cannot read GPT-2 weights ({path}); start from a run's "
                          "checkpoint.pt, or choose a model with from_pretrained (--set model.name=...).")
    model, cfg = from_pretrained(path)
    return Trained(model.eval(), get("tokenizers", "gpt2").factory(), model_name, dict(cfg), "gpt2")
