"""Tokenizer explorer: one text, several tokenizers side by side, each token a coloured span with its id.

    from llmkit.widgets import tokenizer_explorer
    tokenizer_explorer("Hello, do you like tea?", tokenizers=("gpt2", "bpe", "char"))
"""

from __future__ import annotations

import functools
import html
import string

from ..errors import LLMKitError
from ..tokenizers import build_tokenizer, encode_text
from ._display import LLMKitWidget

PALETTE = ("#fde68a", "#bfdbfe", "#bbf7d0", "#fecaca", "#ddd6fe", "#fbcfe8", "#a5f3fc", "#fed7aa")


@functools.lru_cache(maxsize=None)
def trained_tokenizer(name: str):
    """A registered tokenizer by name; those that learn are trained once on the kit's builtin corpus."""
    from ..data import load_corpus

    # printable ASCII is appended so that a char-level vocabulary covers ordinary typing
    text = load_corpus("builtin").text + "\n" + string.printable
    return build_tokenizer(name, text)


def resolve_tokenizer(spec) -> tuple[str, object]:
    """``"gpt2"`` -> (name, tokenizer); ``(label, tokenizer)`` as is; a tokenizer object -> (class name, it)."""
    if isinstance(spec, str):
        return spec, trained_tokenizer(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        return spec
    if not (hasattr(spec, "encode") and hasattr(spec, "decode")):
        raise LLMKitError(f"{spec!r} is not a tokenizer; pass a registered name such as 'gpt2' or an object "
                          "with encode(text) and decode(ids).")
    return type(spec).__name__, spec


def token_pieces(tokenizer, text: str) -> list[tuple[int, str]]:
    """[(id, the text of that id alone)] for ``text``."""
    return [(i, tokenizer.decode([i])) for i in encode_text(tokenizer, text)]


def _span(index: int, token_id: int, piece: str) -> str:
    shown = html.escape(piece).replace("\n", "↵")
    colour = PALETTE[index % len(PALETTE)]
    return (f'<span class="llmkit-token" data-id="{token_id}" title="id {token_id}" style="background:{colour};'
            f'border-radius:3px;padding:1px 2px;margin:1px;display:inline-block;white-space:pre;'
            f'font-family:monospace;line-height:1.1">{shown}<sub style="color:#555">{token_id}</sub></span>')


class TokenizerExplorer(LLMKitWidget):
    css_class = "llmkit-tokenizer-explorer"

    def __init__(self, text: str, tokenizers=("gpt2", "bpe", "char")):
        super().__init__()
        self.text = text
        self.tokenizers = dict(resolve_tokenizer(spec) for spec in tokenizers)

    def tokenize(self, text: str | None = None) -> dict[str, list[tuple[int, str]] | str]:
        """Per tokenizer: its (id, piece) list, or the error message when it cannot encode the text."""
        text = self.text if text is None else text
        out = {}
        for label, tok in self.tokenizers.items():
            try:
                out[label] = token_pieces(tok, text)
            except LLMKitError as err:
                out[label] = str(err)
            except Exception as err:  # noqa: BLE001 - a student's tokenizer: show its error in its panel
                out[label] = f"{type(err).__name__}: {err}"
        return out

    def render_html(self, text: str | None = None) -> str:
        panels = []
        for label, pieces in self.tokenize(text).items():
            if isinstance(pieces, str):
                body = f'<div style="color:#b91c1c">{html.escape(pieces)}</div>'
                head = html.escape(label)
            else:
                spans = "".join(_span(i, tid, piece) for i, (tid, piece) in enumerate(pieces))
                ids = ", ".join(str(tid) for tid, _ in pieces)
                body = (f'<div>{spans}</div><code class="llmkit-ids" style="font-size:11px;color:#444">'
                        f'[{ids}]</code>')
                head = f"{html.escape(label)} &middot; {len(pieces)} tokens"
            panels.append(f'<div class="llmkit-tokenizer-panel" data-tokenizer="{html.escape(label)}" '
                          f'style="flex:1 1 0;min-width:220px;border:1px solid #ddd;border-radius:4px;padding:6px">'
                          f'<div style="font-weight:bold;margin-bottom:4px">{head}</div>{body}</div>')
        return f'<div style="display:flex;gap:8px;flex-wrap:wrap">{"".join(panels)}</div>'

    def _repr_html_(self) -> str:
        return self.render_html()

    def __repr__(self) -> str:
        counts = {k: (len(v) if isinstance(v, list) else "error") for k, v in self.tokenize().items()}
        return f"TokenizerExplorer({self.text!r}, tokens={counts})"

    def _build_ui(self):
        import ipywidgets as w

        self.controls["text"] = w.Textarea(value=self.text, description="Text", continuous_update=True,
                                           layout=w.Layout(width="98%", height="4em"))
        self.output = w.HTML(self.render_html())

        def update(change):
            self.text = change["new"]
            self.output.value = self.render_html()

        self._observe(update, "text")
        return w.VBox([self.controls["text"], self.output])


def tokenizer_explorer(text: str = "Hello, do you like tea? In the sunlit terraces of the palace.",
                       tokenizers=("gpt2", "bpe", "char")) -> TokenizerExplorer:
    """Coloured tokens and ids of ``text`` for each tokenizer (registered names or objects), side by side."""
    return TokenizerExplorer(text, tokenizers)
