"""The contract of each component family, as ``typing.Protocol`` classes: what the kit may rely on.

A plugin, a reference solution and a student's class are interchangeable by name because each one
meets its family's protocol here. The protocols are structural: nothing needs to inherit from them.
Every hook in ``hookspecs.py`` names its protocol, and every family has a conformance suite in
``llmkit.testing`` that checks the behaviour a protocol cannot express (causality, shapes, seeds).

    family               registered factory                                    builds a
    tokenizers           factory(...) or factory.from_text(text, **options)   Tokenizer
    samplers             factory(token_ids, batch_size, max_length, **opts)   Batches
    attention            factory(d_in, d_out, context_length, dropout,        Attention
                                 num_heads, qkv_bias=False, **options)
    models               factory(cfg)                                          LanguageModel
    finetune_strategies  factory(**options)                                    FinetuneStrategy
    devices              factory(precision="auto")                             Device
    decoders             the decoder itself                                    Decoder

``check(family, obj, name)`` turns a missing member into one line, so a component that does not
fit fails where it is chosen, not deep inside a training loop.
"""

from __future__ import annotations

import inspect
from typing import Any, ContextManager, Iterable, Iterator, Protocol, runtime_checkable

import torch

from .errors import LLMKitError
from .kv_cache import KVCache


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> ids. Optional: ``n_vocab`` (else ``vocab_size`` or the book's ``str_to_int``),
    ``eos_id``, ``save(path)`` with a classmethod ``load(path)``, and ``from_text(text, **options)``."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...


@runtime_checkable
class Batches(Protocol):
    """What a sampler factory returns: ``len()`` batches of (inputs, targets), each (batch, max_length)
    long tensors with targets shifted by one token. A ``generator`` attribute (``torch.Generator``)
    that decides the order lets a resumed run replay an epoch exactly."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Attention(Protocol):
    """Causal attention: (batch, tokens, d_in) -> (batch, tokens, d_out). Accepting
    ``forward(x, kv_cache=None)`` (a ``llmkit.kv_cache.LayerCache``) enables cached decoding."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...


@runtime_checkable
class LanguageModel(Protocol):
    """(batch, tokens) ids -> (batch, tokens, vocab_size) logits, an ``nn.Module``.

    ``context_length`` is the longest input it reads. Accepting ``forward(idx, kv_cache=None)`` (a
    ``llmkit.kv_cache.KVCache``) enables cached decoding. The fine-tuning strategies also look for the
    book's module names (``out_head``, ``trf_blocks`` with ``att``/``ff``, ``final_norm``) and say which
    one is missing.
    """

    context_length: int

    def __call__(self, idx: torch.Tensor) -> torch.Tensor: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...

    def state_dict(self) -> dict: ...


@runtime_checkable
class FinetuneStrategy(Protocol):
    """Prepares a model for a task: which parameters train, which modules are added or replaced.

    ``tasks`` lists what it can do (``classification``, ``instruction``, ``lm``); ``config`` holds its
    options (saved in a fine-tuned checkpoint, so the same strategy rebuilds the model);
    ``prepare`` returns the model to train; ``describe`` counts ``trainable`` and ``total`` parameters.
    """

    name: str
    tasks: tuple
    config: dict

    def prepare(self, model: Any, task: str = "lm", num_classes: int = 2) -> Any: ...

    def describe(self, model: Any) -> dict: ...


@runtime_checkable
class Device(Protocol):
    """Where tensors live, which precision training uses, and how ranks share the work.

    One process: ``rank`` 0, ``world_size`` 1, ``shard`` only moves the batch, ``barrier`` and
    ``close`` do nothing. ``llmkit.devices.Device`` is a base class that gives all of this.
    """

    torch_device: torch.device
    precision: str
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool: ...

    def autocast(self) -> ContextManager: ...

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module: ...

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module: ...

    def shard(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def mean_across_ranks(self, value: float) -> float: ...

    def barrier(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Decoder(Protocol):
    """The book's ``generate`` signature: append up to ``max_new_tokens`` ids to ``idx`` (batch, T)
    and return (batch, T + new); ``temperature`` 0 is greedy; stop early when every row's next id
    is ``eos_id``. The same seed gives the same ids."""

    def __call__(self, model: Any, idx: torch.Tensor, max_new_tokens: int, context_size: int,
                 temperature: float = 0.0, top_k: int | None = None, eos_id: int | None = None) -> torch.Tensor: ...


# Family -> the protocol of what its factory builds (or, for decoders, of the factory itself).
PROTOCOLS = {
    "tokenizers": Tokenizer,
    "samplers": Batches,
    "attention": Attention,
    "models": LanguageModel,
    "finetune_strategies": FinetuneStrategy,
    "devices": Device,
    "decoders": Decoder,
}


def members(protocol: type) -> list[str]:
    """The names a protocol declares: its methods, properties and annotated attributes."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {k for k, v in vars(protocol).items() if callable(v) or isinstance(v, property)}
    return sorted(n for n in names if not n.startswith("_") or n in ("__call__", "__iter__", "__len__"))


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The protocol's members that ``obj`` lacks (attributes set in ``__init__`` count)."""
    return [m for m in members(protocol) if not hasattr(obj, m) and not _derived(obj, m)]


def _derived(obj: Any, member: str) -> bool:
    """Members the kit can do without: a book-shaped model's context length comes from ``pos_emb``."""
    return member == "context_length" and _pos_emb_length(obj) is not None


def check(family: str, obj: Any, name: str = "") -> Any:
    """Return ``obj`` when it meets its family's protocol; otherwise one line naming what it lacks."""
    protocol = PROTOCOLS[family]
    missing = missing_members(obj, protocol)
    if missing:
        label = f"{family} '{name}'" if name else f"this {family} component"
        raise LLMKitError(f"{label} ({type(obj).__name__}) lacks {', '.join(missing)}; "
                          f"give it what llmkit.contracts.{protocol.__name__} lists.")
    return obj


# --------------------------------------------------------------------------- what the kit reads from a model


def _pos_emb_length(model: Any) -> int | None:
    pos_emb = getattr(model, "pos_emb", None)
    return getattr(pos_emb, "num_embeddings", None)


def context_length(model: Any) -> int:
    """The longest input ``model`` reads: its declared ``context_length``, or, for a model built the
    book's way (a student's ``GPTModel``, the reference), the size of its position embedding."""
    model = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    declared = getattr(model, "context_length", None)
    if isinstance(declared, int) and not isinstance(declared, bool):
        return declared
    length = _pos_emb_length(model)
    if length is None:
        raise LLMKitError(f"{type(model).__name__} declares no context_length; give the model a "
                          "context_length attribute (llmkit.contracts.LanguageModel).")
    return length


def _accepts_kv_cache(fn: Any) -> bool:
    try:
        return "kv_cache" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def supports_kv_cache(model: Any) -> bool:
    """True when ``model(idx, kv_cache=...)`` works: its forward takes a cache and, for a model built
    from blocks, so does every block's attention (a student's attention may not)."""
    declared = getattr(model, "supports_kv_cache", None)
    if isinstance(declared, bool):
        return declared
    if not _accepts_kv_cache(model.forward):
        return False
    blocks = getattr(model, "trf_blocks", None)
    return blocks is None or all(_accepts_kv_cache(block.att.forward) for block in blocks if hasattr(block, "att"))


def new_kv_cache(model: Any) -> KVCache:
    """An empty cache for ``model``: its own ``new_kv_cache()``, or one layer per transformer block."""
    make = getattr(model, "new_kv_cache", None)
    if callable(make):
        return make()
    blocks = getattr(model, "trf_blocks", None)
    if blocks is None:
        raise LLMKitError(f"{type(model).__name__} takes a kv_cache but has no trf_blocks to size it; "
                          "give the model a new_kv_cache() method.")
    return KVCache(len(blocks))
