"""Notebook widgets for each stage of the kit, one line each (see docs/widgets.md).

    from llmkit.widgets import tokenizer_explorer, attention_heatmap, TrainingDashboard
    tokenizer_explorer("Hello, do you like tea?")

Each widget shows an ipywidgets view when a Jupyter front end can render one, and a static
figure/HTML otherwise (``LLMKIT_NO_WIDGETS=1``, nbgrader autograding/validation, plain Python): see
``static_reason()``. ipywidgets is imported only when a view is built.
"""

from ._display import NO_WIDGETS_ENV, LLMKitWidget, static_reason, widgets_enabled
from .attention_heatmap import AttentionHeatmap, attention_heatmap, attention_maps, attention_weights
from .dashboard import TrainingDashboard
from .embedding_view import EmbeddingView, embedding_view
from .finetune_view import FinetuneView, finetune_view
from .playground import GenerationPlayground, generation_playground
from .sliding_window import SlidingWindowView, sliding_window_view
from .tokenizer_explorer import TokenizerExplorer, tokenizer_explorer

__all__ = [
    "NO_WIDGETS_ENV",
    "AttentionHeatmap",
    "EmbeddingView",
    "FinetuneView",
    "GenerationPlayground",
    "LLMKitWidget",
    "SlidingWindowView",
    "TokenizerExplorer",
    "TrainingDashboard",
    "attention_heatmap",
    "attention_maps",
    "attention_weights",
    "embedding_view",
    "finetune_view",
    "generation_playground",
    "sliding_window_view",
    "static_reason",
    "tokenizer_explorer",
    "widgets_enabled",
]
