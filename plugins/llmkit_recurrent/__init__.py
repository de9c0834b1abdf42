"""Recurrent and state-space language models as ``models`` plugins (plugin ``recurrent``).

    rnn   Elman RNN blocks            llmkit run --set model.name='"rnn"'
    lstm  LSTM blocks                 llmkit run --set model.name='"lstm"'
    ssm   selective state-space (Mamba-style) blocks, plain PyTorch, sequential scan

Each takes the book's cfg dict and maps (batch, tokens) ids to (batch, tokens, vocab) logits, so the
run's data, trainer, decoders, fine-tuning strategies and report work unchanged. See ``model.py``.
"""

from llmkit.hookspecs import hookimpl

from .model import MODELS, LSTMLM, RNNLM, SSMLM, RecurrentLM, RecurrentState
from .ssm import SelectiveSSM

__all__ = ["LSTMLM", "MODELS", "RNNLM", "RecurrentLM", "RecurrentState", "SSMLM", "SelectiveSSM"]


@hookimpl
def register_models(register):
    for name, cls in MODELS.items():
        register(name, cls)
