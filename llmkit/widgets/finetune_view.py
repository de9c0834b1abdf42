"""Fine-tuning view: trainable vs frozen parameters for each fine-tuning strategy.

    from llmkit.widgets import finetune_view
    finetune_view(model)                                   # the five built-in strategies
    finetune_view(model, ("full", ("lora", {"rank": 4})), task="classification")

Each strategy is created from the registry and applied to a deep copy of the model, so the model you
pass is never changed. A strategy that cannot do the chosen task is listed as not applicable.
"""

from __future__ import annotations

import copy

from tqdm.auto import tqdm

from ..errors import LLMKitError
from ..finetune import TASKS
from ..plugins import create
from ._display import LLMKitWidget, figure_png, new_figure


class FinetuneView(LLMKitWidget):
    css_class = "llmkit-finetune-view"

    def __init__(self, model, strategies=("full", "lora", "classification", "feature-extraction", "adapter"),
                 task: str = "classification", num_classes: int = 2):
        super().__init__()
        self.model, self.task, self.num_classes = model, task, num_classes
        # "name" or ("name", {options}); a label says which options were used
        self.strategies = [(s, {}) if isinstance(s, str) else (s[0], dict(s[1])) for s in strategies]
        self._cache: dict[str, list[dict]] = {}

    def rows(self, task: str | None = None) -> list[dict]:
        """Per strategy: label, trainable, frozen, total, added modules, or ``error`` when it does not apply."""
        task = self.task if task is None else task
        if task not in self._cache:
            rows = []
            for name, options in tqdm(self.strategies, desc="strategies", leave=False,
                                      disable=len(self.strategies) < 2):
                label = name + ("" if not options else " " + ", ".join(f"{k}={v}" for k, v in options.items()))
                try:
                    strategy = create("finetune_strategies", name, **options)
                    prepared = strategy.prepare(copy.deepcopy(self.model), task, num_classes=self.num_classes)
                    info = strategy.describe(prepared)
                except LLMKitError as err:
                    rows.append({"strategy": label, "error": str(err)})
                    continue
                except NotImplementedError:  # a student's strategy whose code is still to write
                    rows.append({"strategy": label, "error": "not written yet", "unwritten": True})
                    continue
                rows.append({"strategy": label, "trainable": info["trainable"], "total": info["total"],
                             "frozen": info["total"] - info["trainable"], "added": info["added"]})
            self._cache[task] = rows
        return self._cache[task]

    def figure(self, task: str | None = None):
        task = self.task if task is None else task
        rows = self.rows(task)
        fig = new_figure(6.4, 0.6 + 0.55 * len(rows))
        ax = fig.add_subplot()
        labels = [r["strategy"] for r in rows][::-1]
        trainable = [r.get("trainable", 0) for r in rows][::-1]
        frozen = [r.get("frozen", 0) for r in rows][::-1]
        ax.barh(labels, trainable, color="#16a34a", label="trainable")
        ax.barh(labels, frozen, left=trainable, color="#cbd5e1", label="frozen")
        for y, row in enumerate(rows[::-1]):
            note = (f"{row['trainable']:,} trainable ({100 * row['trainable'] / max(row['total'], 1):.2f}%)"
                    if "error" not in row else "not written yet" if row.get("unwritten")
                    else "not applicable to this task")
            ax.text(0, y, " " + note, va="center", fontsize=8)
        ax.set_xlabel("parameters")
        ax.set_title(f"task: {task}", fontsize=10, loc="left")
        ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
        return fig

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure())

    def __repr__(self) -> str:
        parts = [f"{r['strategy']}: {r['trainable']:,}/{r['total']:,}" if "error" not in r else f"{r['strategy']}: n/a"
                 for r in self.rows()]
        return f"FinetuneView(task={self.task!r}; " + "; ".join(parts) + ")"

    def _build_ui(self):
        import ipywidgets as w

        self.controls["task"] = w.Dropdown(options=list(TASKS), value=self.task, description="task")
        self.output = w.Image(value=self._repr_png_(), format="png")

        def update(change):
            self.task = change["new"]
            self.output.value = self._repr_png_()

        self._observe(update, "task")
        return w.VBox([self.controls["task"], self.output])


def finetune_view(model, strategies=("full", "lora", "classification", "feature-extraction", "adapter"),
                  task: str = "classification", num_classes: int = 2) -> FinetuneView:
    """Bar chart of trainable vs frozen parameters when each strategy prepares (a copy of) ``model``."""
    return FinetuneView(model, strategies, task, num_classes)
