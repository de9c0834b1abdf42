"""The names notebooks and scripts have always imported from here; the code lives in ``llmkit.run``.

    from llmkit.pipeline import prepare_data, make_train_loader, make_eval_loader, run
"""

from .run import STAGES, StageResult, run
from .run.artifacts import Trained, tokenizer_bytes, tokenizer_from_bytes
from .run.artifacts import load as load_checkpoint_model
from .run.data import Prepared, make_eval_loader, make_train_loader, model_config, prepare_data, window_length

__all__ = ["STAGES", "Prepared", "StageResult", "Trained", "load_checkpoint_model", "load_for_generation",
           "make_eval_loader", "make_train_loader", "model_config", "prepare_data", "run", "tokenizer_bytes",
           "tokenizer_from_bytes", "window_length"]


def load_for_generation(checkpoint, device=None):
    """``(model, tokenizer)`` from a run's checkpoint, for writing text."""
    trained = load_checkpoint_model(checkpoint, device, expect="text")
    return trained.model, trained.tokenizer
