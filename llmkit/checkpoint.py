"""Checkpoints: model, optimizer, scheduler, RNG states and loop position in one atomic file.

Everything needed to resume bit-for-bit on the CPU is here: the global torch RNG (dropout), the
sampler's generator state at the start of the current epoch and how many batches of that epoch were
consumed. Loading uses ``weights_only=True``: a checkpoint holds tensors and plain data, never code.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import LLMKitError
from .io import atomic_write_bytes

FORMAT_VERSION = 1


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    epoch: int = 0  # epochs finished
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    tokens_seen: int = 0
    epoch_start_rng: Any = None  # sampler generator state when the current epoch began
    best_val_loss: float = float("inf")
    elapsed_s: float = 0.0
    history: list = field(default_factory=list)  # eval records, for the plot and report


def save_checkpoint(path, model, optimizer=None, scheduler=None, state: TrainState | None = None,
                    **extra: Any) -> Path:
    """Write atomically: a run killed mid-write keeps its previous checkpoint."""
    payload = {
        "format_version": FORMAT_VERSION,
        "model": getattr(model, "module", model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "state": asdict(state) if state is not None else None,
        "torch_rng": torch.get_rng_state(),
        **extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LLMKitError(f"No checkpoint at {path}; check the path (runs keep it at RUN_DIR/checkpoint.pt).")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, another format, a pickle with code...
        raise LLMKitError(f"{path} is not a readable llmkit checkpoint ({type(exc).__name__}); "
                          "use a checkpoint.pt written by llmkit.") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise LLMKitError(f"{path} is not an llmkit checkpoint (no model weights in it).")
    return payload


def load_model_state(model, state_dict, source="checkpoint") -> None:
    """Load weights, turning a config mismatch into one line that says which config differs."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [(k, tuple(state_dict[k].shape), tuple(v.shape)) for k, v in own.items()
             if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or wrong:
        if wrong:
            k, theirs, ours = wrong[0]
            detail = f"{k} is {theirs} in the {source} but {ours} in the model"
        elif missing:
            detail = f"the {source} lacks {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        else:
            detail = f"the {source} has an unexpected {unexpected[0]}"
        raise LLMKitError(f"The {source} was made with another model config ({detail}); "
                          "build the model with the config stored beside it.")
    model.load_state_dict(state_dict)


def restore_state(payload: dict) -> TrainState:
    data = payload.get("state") or {}
    return TrainState(**data)
