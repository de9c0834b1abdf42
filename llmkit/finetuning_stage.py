"""The names notebooks have imported from here; the code lives in ``llmkit.run.stages`` and ``llmkit.run.commands``.

    from llmkit.finetuning_stage import respond_all
"""

from .run.commands import chat, classify_text, finetune_from
from .run.stages._common import make_strategy, pad_token_id
from .run.stages.classify import spam_splits
from .run.stages.instruct import respond, respond_all

__all__ = ["chat", "classify_text", "finetune_from", "make_strategy", "pad_token_id", "respond", "respond_all",
           "spam_splits"]
