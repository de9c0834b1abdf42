"""The plugin hooks: one per component family, each pointing at its protocol in ``llmkit.contracts``.

Each hook receives a ``register(name, factory, doc=None)`` callback and calls it once per component
the plugin provides. ``factory`` is a class or function; ``doc`` defaults to its docstring's first line.
"""

import pluggy

hookspec = pluggy.HookspecMarker("llmkit")
hookimpl = pluggy.HookimplMarker("llmkit")


@hookspec
def register_tokenizers(register):
    """Register tokenizers: factories of ``contracts.Tokenizer`` (``encode``/``decode``, maybe ``from_text``)."""


@hookspec
def register_samplers(register):
    """Register samplers: ``factory(token_ids, batch_size, max_length, **options)`` -> ``contracts.Batches``."""


@hookspec
def register_attention(register):
    """Register attention: the book's ``MultiHeadAttention`` signature -> ``contracts.Attention``."""


@hookspec
def register_models(register):
    """Register language models: ``factory(cfg)`` with the book's config dict -> ``contracts.LanguageModel``."""


@hookspec
def register_finetune_strategies(register):
    """Register fine-tuning strategies: ``factory(**options)`` -> ``contracts.FinetuneStrategy``."""


@hookspec
def register_devices(register):
    """Register devices: ``factory(precision="auto")`` -> ``contracts.Device``."""


@hookspec
def register_decoders(register):
    """Register decoders: functions with the book's ``generate`` signature (``contracts.Decoder``)."""
