"""llmkit: build a GPT-style language model from scratch, one swappable component at a time.

    import llmkit
    llmkit.names("models")                           # ['gpt', 'gpt-book']
    model = llmkit.create("models", "gpt", cfg)      # the kit's GPT; "gpt-book" is the book's GPTModel(cfg)
    llmkit.register("attention", "mine")(MyAttention)  # a student's class, usable by name

Every family's contract is a Protocol in ``llmkit.contracts``; its conformance suite is in ``llmkit.testing``.
"""

from .errors import LLMKitError, UnknownComponentError, _show_in_ipython
from .hookspecs import hookimpl
from .plugins import add_plugin, components, create, get, load_plugins, names, register, registry

__version__ = "0.1.0"

__all__ = [
    "LLMKitError",
    "UnknownComponentError",
    "add_plugin",
    "components",
    "create",
    "get",
    "hookimpl",
    "load_plugins",
    "names",
    "register",
    "registry",
]

_show_in_ipython()


def _offline_tiktoken() -> None:
    """The book calls tiktoken.get_encoding("gpt2"); make that work without a network (llmkit.gpt2_bpe)."""
    from .gpt2_bpe import seed_tiktoken_cache

    seed_tiktoken_cache()


_offline_tiktoken()
