"""Sliding-window view: the (input, target) pairs the book's data loader cuts from a token stream.

    from llmkit.widgets import sliding_window_view
    sliding_window_view("In the heart of the city stood the old library", max_length=4, stride=1)

The windows start where the book's ``GPTDatasetV1`` (and the kit's ``sliding-window`` sampler) start
them (``llmkit.data.window_starts``); the sliders change ``max_length`` and ``stride``.
"""

from __future__ import annotations

import html

from ..data import window_starts
from ..errors import LLMKitError
from ..tokenizers import encode_text
from ._display import LLMKitWidget
from .tokenizer_explorer import resolve_tokenizer


class SlidingWindowView(LLMKitWidget):
    css_class = "llmkit-sliding-window"

    def __init__(self, text_or_ids, max_length: int = 4, stride: int = 1, tokenizer="gpt2", max_rows: int = 12):
        super().__init__()
        self.tokenizer = None if tokenizer is None else resolve_tokenizer(tokenizer)[1]
        if isinstance(text_or_ids, str):
            if self.tokenizer is None:
                raise LLMKitError("sliding_window_view got text but tokenizer=None; pass a tokenizer, or token ids.")
            self.ids = encode_text(self.tokenizer, text_or_ids)
        else:
            self.ids = [int(i) for i in text_or_ids]
        self.max_length, self.stride, self.max_rows = max_length, stride, max_rows

    def pairs(self, max_length: int | None = None, stride: int | None = None) -> list[tuple[list, list]]:
        """[(input ids, target ids)] for the window; raises LLMKitError when the text is too short."""
        length = max_length or self.max_length
        return [(self.ids[s : s + length], self.ids[s + 1 : s + length + 1])
                for s in window_starts(len(self.ids), length, stride or self.stride)]

    def _text(self, ids) -> str:
        if self.tokenizer is None:
            return ""
        return " ".join(repr(self.tokenizer.decode([i])) for i in ids)

    def summary(self) -> str:
        try:
            n = len(self.pairs())
        except LLMKitError as err:
            return str(err)
        overlap = ("windows overlap" if self.stride < self.max_length else
                   "no overlap" if self.stride == self.max_length else "tokens skipped between windows")
        return (f"{len(self.ids)} tokens → {n} pairs (max_length {self.max_length}, stride {self.stride}: "
                f"{overlap})")

    def render_html(self) -> str:
        head = f'<div class="llmkit-summary" style="margin:4px 0">{html.escape(self.summary())}</div>'
        try:
            pairs = self.pairs()
        except LLMKitError:
            return head
        cell = 'style="border:1px solid #ddd;padding:2px 6px;font-family:monospace;text-align:left"'
        rows = [f"<tr><th {cell}>#</th><th {cell}>input</th><th {cell}>target</th>"
                + (f"<th {cell}>input text</th><th {cell}>target text</th>" if self.tokenizer else "") + "</tr>"]
        for n, (x, y) in enumerate(pairs[: self.max_rows]):
            texts = (f"<td {cell}>{html.escape(self._text(x))}</td><td {cell}>{html.escape(self._text(y))}</td>"
                     if self.tokenizer else "")
            rows.append(f'<tr class="llmkit-pair"><td {cell}>{n}</td><td {cell}>{x}</td><td {cell}>{y}</td>'
                        f"{texts}</tr>")
        more = (f"<div>... and {len(pairs) - self.max_rows} more pairs</div>" if len(pairs) > self.max_rows else "")
        return f'{head}<table style="border-collapse:collapse">{"".join(rows)}</table>{more}'

    def _repr_html_(self) -> str:
        return self.render_html()

    def __repr__(self) -> str:
        return f"SlidingWindowView({self.summary()})"

    def _build_ui(self):
        import ipywidgets as w

        top = max(1, min(64, len(self.ids) - 1))
        self.controls["max_length"] = w.IntSlider(value=min(self.max_length, top), min=1, max=top,
                                                  description="max_length")
        self.controls["stride"] = w.IntSlider(value=min(self.stride, top), min=1, max=top, description="stride")
        self.max_length, self.stride = self.controls["max_length"].value, self.controls["stride"].value
        self.output = w.HTML(self.render_html())

        def update(change):
            self.max_length = self.controls["max_length"].value
            self.stride = self.controls["stride"].value
            self.output.value = self.render_html()

        self._observe(update, "max_length", "stride")
        return w.VBox([w.HBox([self.controls["max_length"], self.controls["stride"]]), self.output])


def sliding_window_view(text_or_ids, max_length: int = 4, stride: int = 1, tokenizer="gpt2") -> SlidingWindowView:
    """Input/target pairs of ``text_or_ids`` (ids are decoded with ``tokenizer`` unless it is None)."""
    return SlidingWindowView(text_or_ids, max_length, stride, tokenizer)
