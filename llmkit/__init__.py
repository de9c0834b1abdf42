"""llmkit: build a GPT-style language model from scratch, one swappable component at a time.

    import llmkit
    llmkit.names("attention")                       # ['gqa', 'mha', 'sdpa', 'sliding-window']
    model = llmkit.create("models", "gpt", cfg)      # the book's GPTModel(cfg)
    llmkit.register("attention", "mine")(MyAttention)  # a student's class, usable by name
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
