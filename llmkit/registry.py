"""The one registry: family -> name -> component, filled by plugins and by ``llmkit.register``."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any, Callable

from .errors import LLMKitError, UnknownComponentError

FAMILIES = ("tokenizers", "samplers", "attention", "models", "finetune_strategies", "devices", "decoders")

# Friendly spellings a person is likely to type; the canonical name is the hook's suffix.
_FAMILY_ALIASES = {
    "tokenizer": "tokenizers",
    "sampler": "samplers",
    "model": "models",
    "finetune_strategy": "finetune_strategies",
    "finetune-strategies": "finetune_strategies",
    "strategy": "finetune_strategies",
    "strategies": "finetune_strategies",
    "device": "devices",
    "decoder": "decoders",
}


@dataclass(frozen=True)
class Component:
    family: str
    name: str
    factory: Callable[..., Any]
    provider: str
    doc: str


def first_doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def closest(name: str, known: list[str]) -> str | None:
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    return matches[0] if matches else None


def canonical_family(family: str) -> str:
    key = family.strip().lower().replace(" ", "_")
    key = _FAMILY_ALIASES.get(key, key)
    if key not in FAMILIES:
        hint = closest(key, list(FAMILIES))
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        raise UnknownComponentError(
            f"Unknown component family '{family}'.{did_you_mean} Families: {', '.join(FAMILIES)}."
        )
    return key


class Registry:
    """Components by family and name. Plugin entries are rebuilt on demand; user entries persist."""

    def __init__(self, hint: Callable[[], str] | None = None) -> None:
        self._entries: dict[str, dict[str, Component]] = {f: {} for f in FAMILIES}
        self._hint = hint  # says which plugins are not loaded, when a name is unknown

    def add(
        self,
        family: str,
        name: str,
        factory: Callable[..., Any],
        provider: str,
        doc: str | None = None,
        replace: bool = False,
    ) -> Component:
        family = canonical_family(family)
        if not isinstance(name, str) or not name.strip():
            raise LLMKitError(f"A {family} component needs a non-empty string name, got {name!r}.")
        if not callable(factory):
            raise LLMKitError(
                f"The factory for {family} '{name}' must be a class or function, got {type(factory).__name__}."
            )
        existing = self._entries[family].get(name)
        if existing is not None and existing.provider != provider and not replace:
            raise LLMKitError(
                f"{family} '{name}' is already provided by {existing.provider}; "
                f"choose another name or pass replace=True to override it."
            )
        component = Component(family, name, factory, provider, doc or first_doc_line(factory))
        self._entries[family][name] = component
        return component

    def get(self, family: str, name: str) -> Component:
        family = canonical_family(family)
        entries = self._entries[family]
        if name in entries:
            return entries[name]
        known = sorted(entries)
        hint = closest(str(name), known)
        did_you_mean = f" Did you mean '{hint}'?" if hint else ""
        listing = ", ".join(known) if known else "none registered yet"
        unloaded = self._hint() if self._hint else ""
        raise UnknownComponentError(
            f"Unknown {family} '{name}'.{did_you_mean} Known {family}: {listing}."
            + (f" {unloaded}" if unloaded else "")
        )

    def names(self, family: str) -> list[str]:
        return sorted(self._entries[canonical_family(family)])

    def components(self, family: str | None = None) -> list[Component]:
        families = FAMILIES if family is None else (canonical_family(family),)
        return [c for f in families for _, c in sorted(self._entries[f].items())]

    def remove_provider(self, provider: str) -> None:
        for entries in self._entries.values():
            for name in [n for n, c in entries.items() if c.provider == provider]:
                del entries[name]
