"""Embedding view: token vectors, the position vector and their sum (the model's input), in 2-D.

    from llmkit.widgets import embedding_view
    embedding_view(vocab_size=50257, emb_dim=256, context_length=4)   # the book's chapter 2 sizes

The layers are the book's ``nn.Embedding``s built under ``torch.manual_seed(seed)`` (or a model's own
``tok_emb``/``pos_emb``). Vectors are projected on a fixed 2-D basis (the first two dimensions when
``emb_dim == 2``, otherwise the top two principal directions of all token and position vectors), so
moving the position slider shows every token shifted by the same position vector.
"""

from __future__ import annotations

import torch

from ._display import LLMKitWidget, figure_png, new_figure


class EmbeddingView(LLMKitWidget):
    css_class = "llmkit-embedding-view"

    def __init__(self, vocab_size: int, emb_dim: int, context_length: int, token_ids=None, labels=None,
                 position: int = 0, seed: int = 123, model=None):
        super().__init__()
        if model is not None:
            self.tok_emb, self.pos_emb = model.tok_emb, model.pos_emb
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.tok_emb = torch.nn.Embedding(vocab_size, emb_dim)
                self.pos_emb = torch.nn.Embedding(context_length, emb_dim)
        vocab = self.tok_emb.num_embeddings
        self.token_ids = list(token_ids) if token_ids is not None else list(range(min(6, vocab)))
        self.labels = list(labels) if labels is not None else [f"id {i}" for i in self.token_ids]
        self.position = position
        with torch.no_grad():
            self._tokens = self.tok_emb(torch.tensor(self.token_ids)).float()  # (k, E)
            self._positions = self.pos_emb.weight.float().clone()  # (context, E)
        self._fit_projection()

    def _fit_projection(self):
        dim = self._tokens.shape[1]
        if dim <= 2:
            self.basis = torch.eye(dim, 2)  # (E, 2): the first two dimensions as they are
            self.center = torch.zeros(dim)
            return
        points = torch.cat([self._tokens, self._positions])
        self.center = points.mean(dim=0)
        _, _, vh = torch.linalg.svd(points - self.center, full_matrices=False)
        self.basis = vh[:2].T  # (E, 2): the top two principal directions

    def vectors(self, position: int | None = None) -> dict[str, torch.Tensor]:
        """Full-size vectors: ``token`` (k, E), ``position`` (E,), ``input`` = token + position (k, E)."""
        pos = self._positions[self.position if position is None else position]
        return {"token": self._tokens, "position": pos, "input": self._tokens + pos}

    def projected(self, position: int | None = None) -> dict[str, torch.Tensor]:
        """The same vectors on the 2-D basis (``position`` as a displacement, the others as points)."""
        v = self.vectors(position)
        return {"token": (v["token"] - self.center) @ self.basis, "position": v["position"] @ self.basis,
                "input": (v["input"] - self.center) @ self.basis}

    def figure(self, position: int | None = None):
        position = self.position if position is None else position
        p = self.projected(position)
        fig = new_figure(5.5, 4.2)
        ax = fig.add_subplot()
        tok, inp, shift = p["token"].numpy(), p["input"].numpy(), p["position"].numpy()
        # Axis limits cover every position, so the points visibly move as the slider does.
        every = torch.cat([p["token"], ((self._tokens[None] + self._positions[:, None] - self.center) @ self.basis)
                           .reshape(-1, 2)]).numpy()
        ax.scatter(tok[:, 0], tok[:, 1], c="#9ca3af", label="token embedding")
        ax.scatter(inp[:, 0], inp[:, 1], c="#2563eb", label=f"token + position {position}")
        for (x, y), label in zip(tok, self.labels):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax.annotate("", xy=(x + shift[0], y + shift[1]), xytext=(x, y),
                        arrowprops={"arrowstyle": "->", "color": "#f97316", "lw": 1})
        pad = 0.15 * max(1e-6, float(abs(every).max()))
        ax.set_xlim(every[:, 0].min() - pad, every[:, 0].max() + pad)
        ax.set_ylim(every[:, 1].min() - pad, every[:, 1].max() + pad)
        axes = "dims 0, 1" if self._tokens.shape[1] <= 2 else "PCA 1, 2"
        ax.set_title(f"input = token + position embedding (position {position}; {axes})", fontsize=9)
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
        return fig

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure())

    def __repr__(self) -> str:
        return (f"EmbeddingView(vocab {self.tok_emb.num_embeddings}, emb_dim {self._tokens.shape[1]}, "
                f"context {self._positions.shape[0]}, position {self.position})")

    def _build_ui(self):
        import ipywidgets as w

        self.controls["position"] = w.IntSlider(value=self.position, min=0, max=self._positions.shape[0] - 1,
                                                description="position")
        self.output = w.Image(value=self._repr_png_(), format="png")

        def update(change):
            self.position = change["new"]
            self.output.value = self._repr_png_()

        self._observe(update, "position")
        return w.VBox([self.controls["position"], self.output])


def embedding_view(vocab_size: int = 50257, emb_dim: int = 256, context_length: int = 4, **options) -> EmbeddingView:
    """Token + position embeddings of a seeded ``nn.Embedding`` pair (options: token_ids, labels, seed, model)."""
    return EmbeddingView(vocab_size, emb_dim, context_length, **options)
