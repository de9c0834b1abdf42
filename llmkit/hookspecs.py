"""The plugin hooks: one per component family.

Each hook receives a ``register(name, factory, doc=None)`` callback and calls it once per component
the plugin provides. ``factory`` is a class or function; ``doc`` defaults to its docstring's first line.
"""

import pluggy

hookspec = pluggy.HookspecMarker("llmkit")
hookimpl = pluggy.HookimplMarker("llmkit")


@hookspec
def register_tokenizers(register):
    """Register tokenizers: objects with ``encode(text) -> list[int]`` and ``decode(ids) -> str``."""


@hookspec
def register_samplers(register):
    """Register samplers: ``factory(token_ids, batch_size, max_length, **options)`` -> (input, target) batches."""


@hookspec
def register_attention(register):
    """Register causal attention modules with the book's ``MultiHeadAttention`` signature."""


@hookspec
def register_models(register):
    """Register language models built as ``factory(cfg)`` from the book's config dict."""


@hookspec
def register_finetune_strategies(register):
    """Register fine-tuning strategies that prepare a model and its trainable parameters."""


@hookspec
def register_devices(register):
    """Register devices: objects that place models and tensors and choose a precision."""
