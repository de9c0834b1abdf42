"""Generation playground: prompt, temperature, top-k, max tokens and a model/checkpoint picker.

    from llmkit.widgets import generation_playground
    generation_playground("runs/run-20250101-120000")      # a run folder or its checkpoint.pt
    generation_playground("runs")                          # every run under runs/, in the picker
    generation_playground(model, tokenizer="gpt2")         # a model in memory
    generation_playground({"before": model0, "after": "runs/x/checkpoint.pt"}, tokenizer=tok)

Every change of a control regenerates the text with ``torch.manual_seed(seed)`` (inside
``fork_rng``, so the notebook's own random state is untouched): the same settings give the same text.
"""

from __future__ import annotations

import html
from pathlib import Path

import torch

from ..contracts import context_length
from ..errors import LLMKitError
from ..tokenizers import encode_text
from ._display import LLMKitWidget
from .tokenizer_explorer import resolve_tokenizer

SETTINGS = ("prompt", "temperature", "top_k", "max_tokens", "seed")


def _sources(spec) -> dict:
    """label -> model or checkpoint path."""
    if isinstance(spec, dict):
        return dict(spec)
    if isinstance(spec, (list, tuple)):
        return {(str(s) if isinstance(s, (str, Path)) else f"model {i}"): s for i, s in enumerate(spec)}
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if path.is_dir() and not (path / "checkpoint.pt").is_file():
            found = sorted(path.glob("*/checkpoint.pt"))
            if not found:
                raise LLMKitError(f"{path} holds no checkpoint.pt, nor run folders with one; "
                                  "train with llmkit run first.")
            return {str(p.parent): p for p in found}
        return {str(path): path}
    return {"model": spec}


class GenerationPlayground(LLMKitWidget):
    css_class = "llmkit-generation-playground"

    def __init__(self, model_or_checkpoint, tokenizer=None, prompt: str = "The", temperature: float = 0.0,
                 top_k: int = 0, max_tokens: int = 20, seed: int = 123):
        super().__init__()
        self.sources = _sources(model_or_checkpoint)
        self.tokenizer = None if tokenizer is None else resolve_tokenizer(tokenizer)[1]
        self._loaded: dict = {}
        self.choice = next(iter(self.sources))
        self.prompt, self.temperature, self.top_k = prompt, temperature, top_k
        self.max_tokens, self.seed = max_tokens, seed
        self.text, self.last_ids = "", []

    def model_and_tokenizer(self, label: str | None = None):
        label = self.choice if label is None else label
        if label not in self._loaded:
            source = self.sources[label]
            if isinstance(source, torch.nn.Module):
                if self.tokenizer is None:
                    raise LLMKitError("generation_playground got a model without a tokenizer; pass tokenizer=... "
                                      "(a name such as 'gpt2' or the tokenizer object).")
                self._loaded[label] = (source, self.tokenizer)
            else:
                from ..run.artifacts import load

                path = Path(source)
                trained = load(path / "checkpoint.pt" if path.is_dir() else path, expect="text")
                self._loaded[label] = (trained.model, trained.tokenizer)
        return self._loaded[label]

    def generate(self, **settings) -> str:
        """The prompt and its continuation for the current settings (overridable by keyword)."""
        from ..decoding import complete_ids

        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise LLMKitError(f"Unknown setting {', '.join(unknown)}; settings are: {', '.join(SETTINGS)}.")
        s = {name: settings.get(name, getattr(self, name)) for name in SETTINGS}
        model, tokenizer = self.model_and_tokenizer()
        ids = encode_text(tokenizer, s["prompt"]) or encode_text(tokenizer, " ")
        device = next(model.parameters()).device
        context = context_length(model)
        # The model is put in eval mode (no dropout) and back; fork_rng leaves the notebook's RNG untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s["seed"])
            new = complete_ids(model, ids, s["max_tokens"], device, temperature=s["temperature"],
                               top_k=s["top_k"] or None)
        self.last_ids = ids[-context:] + new
        return tokenizer.decode(self.last_ids)

    def render_html(self) -> str:
        self.text = self.generate()
        shown_prompt = self.prompt if self.text.startswith(self.prompt) else ""
        rest = self.text[len(shown_prompt):]
        return (f'<pre class="llmkit-generated" style="white-space:pre-wrap;border:1px solid #ddd;padding:6px">'
                f"<b>{html.escape(shown_prompt)}</b>{html.escape(rest)}</pre>")

    def _repr_html_(self) -> str:
        settings = ", ".join(f"{k}={getattr(self, k)!r}" for k in SETTINGS[1:])
        return f"<div><div>{html.escape(self.choice)}: {html.escape(settings)}</div>{self.render_html()}</div>"

    def __repr__(self) -> str:
        return f"GenerationPlayground({self.choice!r}, temperature={self.temperature}, top_k={self.top_k})"

    def _build_ui(self):
        import ipywidgets as w

        wide = w.Layout(width="98%")
        label = {"description_width": "initial"}
        c = self.controls
        c["model"] = w.Dropdown(options=list(self.sources), value=self.choice, description="model", layout=wide)
        c["prompt"] = w.Text(value=self.prompt, description="prompt", continuous_update=False, layout=wide)
        c["temperature"] = w.FloatSlider(value=self.temperature, min=0.0, max=2.0, step=0.1,
                                         description="temperature", style=label)
        c["top_k"] = w.IntSlider(value=self.top_k, min=0, max=100, description="top-k (0: off)", style=label)
        c["max_tokens"] = w.IntSlider(value=self.max_tokens, min=1, max=200, description="max tokens", style=label)
        c["seed"] = w.IntText(value=self.seed, description="seed")
        self.message = w.HTML("")
        self.output = w.HTML("")

        def update(change=None):
            self.choice = c["model"].value
            for name in SETTINGS:
                setattr(self, name, c[name].value)
            try:
                self.output.value = self.render_html()
                self.message.value = ""
            except LLMKitError as err:
                self.message.value = f'<span style="color:#b91c1c">{html.escape(str(err))}</span>'

        self._observe(update, "model", *SETTINGS)
        update()
        return w.VBox([c["model"], c["prompt"], w.HBox([c["temperature"], c["top_k"]]),
                       w.HBox([c["max_tokens"], c["seed"]]), self.message, self.output])


def generation_playground(model_or_checkpoint, tokenizer=None, **settings) -> GenerationPlayground:
    """Generate from a model, checkpoint, run folder, folder of runs, or a {label: any of these} dict."""
    return GenerationPlayground(model_or_checkpoint, tokenizer, **settings)
