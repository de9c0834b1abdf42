"""One exception type for bad input: its message is one line naming the problem and the fix.

The CLI prints it without a traceback; in IPython/Jupyter, importing llmkit installs a handler that
does the same, so a student sees the sentence, not a stack.
"""


class LLMKitError(ValueError):
    """Bad input or configuration. ``str(err)`` is a single line: what is wrong, then how to fix it."""


class UnknownComponentError(LLMKitError, KeyError):
    """A component name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return self.args[0] if self.args else ""


def _show_in_ipython() -> None:
    """Make IPython print LLMKitError as one line instead of a traceback."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def handler(shell, etype, value, tb, tb_offset=None):
        print(f"{etype.__name__}: {value}")
        return None

    shell.set_custom_exc((LLMKitError,), handler)
