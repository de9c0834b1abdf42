"""Training dashboard: a listener for the kit's own trainer, drawing as the run goes.

    dashboard = TrainingDashboard()
    llmkit.pipeline.run(cfg, callbacks=[dashboard])          # or llmkit.training.train(..., callbacks=[dashboard])

It never trains anything itself: ``train`` calls it with each event dict ("train": step, loss, lr,
tokens_seen, tokens_per_s; "eval": train_loss, val_loss, val_ppl; "sample": text). With a widget
front end it displays itself at the first event (unless it was displayed already) and updates live;
otherwise ``dashboard.figure()`` (or just ``dashboard`` as a cell's last line) shows the curves.
"""

from __future__ import annotations

import html
import time

from ._display import LLMKitWidget, figure_png, new_figure, png_img_tag, widgets_enabled


class TrainingDashboard(LLMKitWidget):
    css_class = "llmkit-training-dashboard"

    def __init__(self, title: str = "Training", redraw_every: float = 0.5, auto_display: bool = True):
        super().__init__()
        self.title, self.redraw_every, self.auto_display = title, redraw_every, auto_display
        self.records: list[dict] = []  # every event, as received
        self.train_steps, self.train_losses, self.evals, self.samples = [], [], [], []
        self.latest: dict = {}  # the last "train" event
        self._drawn_at, self._plotted_step = 0.0, None  # when, and up to which step, the plot was drawn

    def __call__(self, record: dict) -> None:
        record = dict(record)
        self.records.append(record)
        kind = record.get("kind")
        if kind == "train":
            self.train_steps.append(record["step"])
            self.train_losses.append(record["loss"])
            self.latest = record
        elif kind == "eval":
            self.evals.append(record)
        elif kind == "sample":
            self.samples.append(record)
        if self._ui is None and self.auto_display and not self._shown and widgets_enabled():
            self.show()
        if self._ui is not None:
            self._update(force=kind != "train")

    # ------------------------------------------------------------------ state -> output
    def stats(self) -> dict:
        last_eval = self.evals[-1] if self.evals else {}
        return {"step": self.latest.get("step", last_eval.get("step", 0)), "loss": self.latest.get("loss"),
                "lr": self.latest.get("lr"), "tokens_seen": self.latest.get("tokens_seen", 0),
                "tokens_per_s": self.latest.get("tokens_per_s"), "val_loss": last_eval.get("val_loss"),
                "val_ppl": last_eval.get("val_ppl")}

    def stats_html(self) -> str:
        s = self.stats()
        fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
        items = [("step", fmt(s["step"], ",")), ("train loss", fmt(s["loss"], ".3f")),
                 ("val loss", fmt(s["val_loss"], ".3f")), ("val ppl", fmt(s["val_ppl"], ",.1f")),
                 ("tokens/s", fmt(s["tokens_per_s"], ",.0f")), ("tokens seen", fmt(s["tokens_seen"], ",")),
                 ("lr", fmt(s["lr"], ".2e"))]
        cells = "".join(f'<span style="margin-right:14px"><b>{k}</b> <span class="llmkit-stat" data-stat="{k}">'
                        f"{v}</span></span>" for k, v in items)
        return (f'<div class="llmkit-stats" data-plot-step="{self._plotted_step}" style="font-family:monospace">'
                f"{cells}</div>")

    def sample_html(self) -> str:
        if not self.samples:
            return '<div class="llmkit-sample" style="color:#666">(a sample appears after each epoch)</div>'
        last = self.samples[-1]
        return (f'<div class="llmkit-sample"><b>sample after epoch {last.get("epoch")} (step {last.get("step")}):</b>'
                f'<pre style="white-space:pre-wrap;margin:2px 0">{html.escape(last["text"])}</pre></div>')

    def figure(self):
        """Loss against steps: every training batch, and the evaluations on train/val windows."""
        fig = new_figure(6.4, 3.6)
        ax = fig.add_subplot()
        if self.train_steps:
            ax.plot(self.train_steps, self.train_losses, lw=0.8, alpha=0.6, label="train (batch)")
        for key, label, style in (("train_loss", "train (eval)", "o-"), ("val_loss", "validation", "s--")):
            points = [(r["step"], r[key]) for r in self.evals if key in r]
            if points:
                ax.plot(*zip(*points), style, ms=4, label=label)
        ax.set_xlabel("optimizer steps")
        ax.set_ylabel("cross-entropy loss")
        ax.set_title(self.title, fontsize=10)
        ax.grid(alpha=0.3)
        if self.records:
            ax.legend(fontsize=8)
        return fig

    def _repr_html_(self) -> str:
        return (f'<div>{png_img_tag(figure_png(self.figure()), "loss curves")}{self.stats_html()}'
                f"{self.sample_html()}</div>")

    def __repr__(self) -> str:
        return f"TrainingDashboard({len(self.records)} events, {self.stats()})"

    def show_final(self):
        """After the run: display the finished curves, unless the live view is already on screen.

        (Where widgets are off, e.g. nbgrader's Validate, nothing was displayed while training.)
        """
        if not self._shown:
            self.show()
        return self

    # ------------------------------------------------------------------ widget
    def refresh(self) -> None:
        """Redraw the live view now (the plot is otherwise redrawn at most every ``redraw_every`` s)."""
        if self._ui is not None:
            self._update(force=True)

    def _update(self, force: bool = False):
        now = time.monotonic()
        if force or now - self._drawn_at >= self.redraw_every:
            self.plot.value = figure_png(self.figure())  # before the numbers, so they never run ahead of it
            self._drawn_at, self._plotted_step = now, self.stats()["step"]
        self.stats_box.value = self.stats_html()
        self.sample_box.value = self.sample_html()

    def _build_ui(self):
        import ipywidgets as w

        self.stats_box, self.sample_box = w.HTML(), w.HTML()
        self.plot = w.Image(format="png")
        box = w.VBox([self.plot, self.stats_box, self.sample_box])
        self._update(force=True)
        return box
