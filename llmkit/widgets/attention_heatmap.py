"""Attention heatmap: the attention weights of one layer and head for a prompt.

    from llmkit.widgets import attention_heatmap
    attention_heatmap(model, "gpt2", "Your journey starts with one step", layer=0, head=0)

How the weights are obtained, for any attention: a forward pre-hook on each block's ``att`` records
the input it receives during one ordinary forward pass; the weights are then recomputed from that
input with the module's own ``W_query``/``W_key`` (``num_heads``, ``head_dim``), scaled by
``1/sqrt(head_dim)`` and masked as the module masks. This works for fused kernels too (``sdpa`` never
stores its weights). K has fewer heads under grouped-query attention: query head ``h`` uses K head
``h // (num_heads // kv_heads)``. The mask is the module's ``blocked(start, T, device)`` when it has one
(``sliding-window``), else the causal triangle, narrowed to ``window_size`` when that attribute is
set. A module without the projections gets a clear LLMKitError instead of a wrong picture.
"""

from __future__ import annotations

import torch

from ..contracts import context_length
from ..errors import LLMKitError
from ..tokenizers import encode_text
from ._display import LLMKitWidget, figure_png, new_figure
from .tokenizer_explorer import resolve_tokenizer

REQUIRED = ("W_query", "W_key", "num_heads", "head_dim")
HEAD_COUNT = ("num_heads", "n_heads")  # the book's name, and the kit's GPT's


def _num_heads(att) -> int | None:
    return next((getattr(att, name) for name in HEAD_COUNT if isinstance(getattr(att, name, None), int)), None)


def _inner(att):
    """The attention inside wrappers such as the adapter strategy's ``WithAdapter`` (``.module``)."""
    while not hasattr(att, "W_query") and isinstance(getattr(att, "module", None), torch.nn.Module):
        att = att.module
    return att


def blocked_mask(att, num_tokens: int, device) -> torch.Tensor:
    """(T, T) bool, True where a query may NOT see a key: the module's own rule, else causal (+ window)."""
    if callable(getattr(att, "blocked", None)):
        return att.blocked(0, num_tokens, device)
    q = torch.arange(num_tokens, device=device).unsqueeze(1)
    k = torch.arange(num_tokens, device=device).unsqueeze(0)
    blocked = k > q
    window = getattr(att, "window_size", None)
    if isinstance(window, int) and window > 0:
        blocked = blocked | (q - k >= window)
    return blocked


def check_projections(att):
    """The attention module itself (wrappers removed); a clear LLMKitError when it lacks the projections."""
    inner = _inner(att)
    missing = [name for name in REQUIRED
               if not (hasattr(inner, name) or (name == "num_heads" and _num_heads(inner) is not None))]
    if missing:
        raise LLMKitError(
            f"attention_heatmap cannot read the weights of {type(inner).__name__}: it lacks {', '.join(missing)}; "
            "give it W_query/W_key projections and num_heads/head_dim attributes like the book's MultiHeadAttention."
        )
    return inner


@torch.no_grad()
def attention_weights(att, x: torch.Tensor) -> torch.Tensor:
    """(B, T, d_in) input of an attention module -> its (B, heads, T, T) attention weights."""
    att = check_projections(att)
    b, t, _ = x.shape
    heads, hd = _num_heads(att), att.head_dim
    queries = att.W_query(x).view(b, t, heads, hd).transpose(1, 2)  # (B, H, T, hd)
    keys = att.W_key(x)
    kv_heads = keys.shape[-1] // hd
    keys = keys.view(b, t, kv_heads, hd).transpose(1, 2)  # (B, G, T, hd); G < H under GQA
    if kv_heads != heads:
        keys = keys.repeat_interleave(heads // kv_heads, dim=1)  # query head h -> K head h // group size
    scores = (queries @ keys.transpose(-2, -1)).float()  # (B, H, T, T)
    scores = scores.masked_fill(blocked_mask(att, t, x.device), -torch.inf)
    return torch.softmax(scores / hd**0.5, dim=-1)


@torch.no_grad()
def attention_maps(model, ids) -> torch.Tensor:
    """(layers, heads, T, T) weights of every block of a GPT-style model for one prompt's ids."""
    blocks = getattr(model, "trf_blocks", None)
    if blocks is None:
        raise LLMKitError("attention_heatmap needs a model with trf_blocks (the book's GPTModel); "
                          f"got {type(model).__name__}.")
    for block in blocks:
        check_projections(block.att)  # before running anything
    inputs = {}
    hooks = [block.att.register_forward_pre_hook(lambda module, args, i=i: inputs.__setitem__(i, args[0]))
             for i, block in enumerate(blocks)]
    modes = {module: module.training for module in model.modules()}
    device = next(model.parameters()).device
    try:
        model.eval()  # no dropout
        model(torch.as_tensor(ids, device=device).reshape(1, -1))
    finally:
        for hook in hooks:
            hook.remove()
        for module, mode in modes.items():
            module.training = mode
    return torch.stack([attention_weights(block.att, inputs[i])[0].cpu() for i, block in enumerate(blocks)])


class AttentionHeatmap(LLMKitWidget):
    css_class = "llmkit-attention-heatmap"

    def __init__(self, model, tokenizer, prompt: str, layer: int = 0, head: int = 0):
        super().__init__()
        self.model = model
        self.tokenizer = resolve_tokenizer(tokenizer)[1]
        self.layer, self.head = layer, head
        self.set_prompt(prompt)

    def set_prompt(self, prompt: str):
        ids = encode_text(self.tokenizer, prompt)
        if not ids:
            raise LLMKitError("The prompt encodes to no tokens; type a few words.")
        try:
            context = context_length(self.model)
        except LLMKitError:  # a bare attention module: no limit of its own
            context = len(ids)
        self.prompt, self.ids = prompt, ids[-context:]
        self.tokens = [self.tokenizer.decode([i]) for i in self.ids]
        self.maps = attention_maps(self.model, self.ids)  # (L, H, T, T)

    @property
    def weights(self) -> torch.Tensor:
        """The (T, T) weights shown now: row = query token, column = key token."""
        return self.maps[self.layer, self.head]

    def figure(self, layer: int | None = None, head: int | None = None):
        layer = self.layer if layer is None else layer
        head = self.head if head is None else head
        weights = self.maps[layer, head].numpy()
        size = 2.5 + 0.35 * len(self.tokens)
        fig = new_figure(size + 1, size)
        ax = fig.add_subplot()
        image = ax.imshow(weights, vmin=0.0, vmax=1.0, cmap="viridis")
        labels = [repr(t)[1:-1] for t in self.tokens]
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query")
        name = type(_inner(self.model.trf_blocks[layer].att)).__name__
        ax.set_title(f"layer {layer}, head {head} ({name})", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        return fig

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure())

    def __repr__(self) -> str:
        return (f"AttentionHeatmap({self.prompt!r}, layer={self.layer}, head={self.head}, "
                f"shape={tuple(self.maps.shape)})")

    def _build_ui(self):
        import ipywidgets as w

        layers, heads = self.maps.shape[:2]
        self.controls["layer"] = w.Dropdown(options=list(range(layers)), value=self.layer, description="layer")
        self.controls["head"] = w.Dropdown(options=list(range(heads)), value=self.head, description="head")
        self.controls["prompt"] = w.Text(value=self.prompt, description="prompt", continuous_update=False)
        self.message = w.HTML("")
        self.output = w.Image(value=self._repr_png_(), format="png")

        def update(change):
            self.message.value = ""
            try:
                if self.controls["prompt"].value != self.prompt:
                    self.set_prompt(self.controls["prompt"].value)
            except LLMKitError as err:
                self.message.value = f'<span style="color:#b91c1c">{err}</span>'
                return
            self.layer, self.head = self.controls["layer"].value, self.controls["head"].value
            self.output.value = self._repr_png_()

        self._observe(update, "layer", "head", "prompt")
        return w.VBox([w.HBox([self.controls["layer"], self.controls["head"]]), self.controls["prompt"],
                       self.message, self.output])


def attention_heatmap(model, tokenizer, prompt: str, layer: int = 0, head: int = 0) -> AttentionHeatmap:
    """Heatmap of the attention weights of ``model`` for ``prompt``, with layer/head dropdowns."""
    return AttentionHeatmap(model, tokenizer, prompt, layer, head)
