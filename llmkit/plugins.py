"""Plugin loading: the kit's own components are plugins; others come from the ``llmkit`` entry points.

``DEFAULT_PLUGINS`` are the kit's production components (strategies, devices, tokenizers, samplers,
the GPT, decoding) and always load: the kit's defaults name them. Everything else, the reference
solutions included (entry point ``reference``), is an entry-point plugin. ``LLMKIT_LOAD_PLUGINS`` is
an allow-list of entry-point names (comma separated). Unset: load every installed plugin. Empty: only
the kit's own. Tests use it to avoid whatever happens to be installed; a student's kernel uses it to
leave the answers out.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from importlib.metadata import entry_points
from typing import Any, Callable

import pluggy

from . import hookspecs
from .registry import FAMILIES, Component, Registry

ENTRY_POINT_GROUP = "llmkit"
ALLOW_LIST_ENV = "LLMKIT_LOAD_PLUGINS"

# Registered like any plugin, in this order, whatever the allow-list says.
DEFAULT_PLUGINS = {
    "llmkit.finetune": "llmkit.finetune",
    "llmkit.devices": "llmkit.devices",
    "llmkit_tokenizers": "llmkit_tokenizers",
    "llmkit_samplers": "llmkit_samplers",
    "llmkit_gpt": "llmkit_gpt",
    "llmkit_generate": "llmkit_generate",
}

pm = pluggy.PluginManager("llmkit")
pm.add_hookspecs(hookspecs)

_registry = Registry(hint=lambda: not_loaded_hint())
_loaded = False
_user_providers: set[str] = set()
_distributions: dict[str, str] = {}  # plugin name -> "dist version", for `llmkit plugins`
_not_loaded: dict[str, str] = {}  # entry-point name -> why it is not loaded, for unknown-name errors


def _load_entry_points() -> None:
    allow = os.environ.get(ALLOW_LIST_ENV)
    wanted = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    found = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.add(ep.name)
        if wanted is not None and ep.name not in wanted:
            _not_loaded[ep.name] = f"left out by {ALLOW_LIST_ENV}"
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except ModuleNotFoundError as exc:
            if exc.name != ep.value.split(":")[0].split(".")[0]:
                _warn_broken(ep.name, exc)
            # Otherwise its package is simply not installed here (e.g. the answers, in a student's kernel).
            _not_loaded[ep.name] = f"not installed: {exc}"
            continue
        except Exception as exc:  # a broken third-party plugin must not break the kit
            _warn_broken(ep.name, exc)
            _not_loaded[ep.name] = f"failed: {type(exc).__name__}"
            continue
        if pm.is_registered(plugin):
            continue  # one of the kit's own, already loaded
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:
            _distributions[ep.name] = f"{ep.dist.name} {ep.dist.version}"
    if wanted:
        for missing in sorted(wanted - found):
            warnings.warn(
                f"{ALLOW_LIST_ENV} names '{missing}', which no installed package provides; "
                f"installed: {', '.join(sorted(found)) or 'none'}.",
                stacklevel=2,
            )


def _warn_broken(name: str, exc: Exception) -> None:
    warnings.warn(
        f"llmkit plugin '{name}' failed to load ({type(exc).__name__}: {exc}); "
        f"leave it out with {ALLOW_LIST_ENV}.",
        stacklevel=3,
    )


def not_loaded_hint() -> str:
    """``Not loaded here: reference (left out by LLMKIT_LOAD_PLUGINS).``, or "" when every plugin loaded."""
    if not _not_loaded:
        return ""
    reasons = "; ".join(f"{name} ({why})" for name, why in sorted(_not_loaded.items()))
    return f"Plugins not loaded here: {reasons}."


def load_plugins() -> None:
    """Register the built-ins and the allowed entry-point plugins (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name, module in DEFAULT_PLUGINS.items():
        if pm.has_plugin(name):
            continue
        try:
            pm.register(importlib.import_module(module), name=name)
        except ModuleNotFoundError as exc:  # an install without it: said when one of its names is asked for
            if exc.name != module.split(".")[0]:
                raise
            _not_loaded[name] = f"not installed: {exc}; reinstall llmkit"
    _load_entry_points()
    refresh()


def refresh() -> None:
    """Rebuild the plugin entries of the registry from every registered plugin's hooks."""
    for provider in {c.provider for c in _registry.components()} - _user_providers:
        _registry.remove_provider(provider)
    for family in FAMILIES:
        caller = getattr(pm.hook, f"register_{family}")
        for impl in caller.get_hookimpls():

            def register(name, factory, doc=None, _family=family, _provider=impl.plugin_name):
                current = _registry.components(_family)
                holder = next((c.provider for c in current if c.name == name), None)
                if holder in _user_providers:
                    return  # a user's registration overrides a plugin's on every refresh
                if holder is not None and holder != _provider:
                    warnings.warn(
                        f"{_family} '{name}' from plugin '{_provider}' is ignored: "
                        f"plugin '{holder}' already provides it.",
                        stacklevel=2,
                    )
                    return
                _registry.add(_family, name, factory, provider=_provider, doc=doc)

            impl.function(register=register)


def add_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object or module (with ``@hookimpl`` functions) at run time."""
    load_plugins()
    pm.register(plugin, name=name)
    refresh()


def registry() -> Registry:
    load_plugins()
    return _registry


def _caller_module(depth: int) -> str:
    frame = sys._getframe(depth)
    module = frame.f_globals.get("__name__", "?")
    return "notebook" if module == "__main__" else module


def register(family: str, name: str, factory: Callable | None = None, *, doc: str | None = None,
             replace: bool = False):
    """Register a component from user code; without ``factory`` it returns a decorator.

    ``llmkit.register("attention", "mine")(MultiHeadAttention)`` makes the pipeline use a student's
    class by name. Re-running the same notebook cell simply replaces the earlier registration.
    """
    provider = _caller_module(2)

    def decorate(obj: Callable) -> Callable:
        registry().add(family, name, obj, provider=provider, doc=doc, replace=replace)
        _user_providers.add(provider)
        return obj

    return decorate if factory is None else decorate(factory)


def get(family: str, name: str) -> Component:
    return registry().get(family, name)


def create(family: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Build a component by name: ``create("models", "gpt", cfg)``."""
    return get(family, name).factory(*args, **kwargs)


def names(family: str) -> list[str]:
    return registry().names(family)


def components(family: str | None = None) -> list[Component]:
    return registry().components(family)


def provider_label(plugin_name: str) -> str:
    """``sdpa (llmkit 0.1.0)`` for an entry-point plugin, the plain name otherwise."""
    dist = _distributions.get(plugin_name)
    return f"{plugin_name} ({dist})" if dist else plugin_name
