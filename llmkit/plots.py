"""Figures a person wants to look at: loss curves with tokens seen on a second axis."""

from __future__ import annotations

from pathlib import Path


def plot_losses(history: list[dict], path: str | Path, title: str = "Pretraining") -> Path:
    """Train/val loss against steps, tokens seen on a top axis; written as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    tokens = [r["tokens_seen"] for r in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for key, label, style in (("train_loss", "train", "-"), ("val_loss", "validation", "--")):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            ax.plot(steps, values, style, marker=".", label=label)
    ax.set_xlabel("optimizer steps")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    if len(steps) > 1 and steps[-1] > steps[0]:
        top = ax.twiny()
        top.set_xlim(ax.get_xlim())
        # Map step ticks to tokens seen by linear interpolation between evaluation points.
        ticks = [t for t in ax.get_xticks() if steps[0] <= t <= steps[-1]]
        top.set_xticks(ticks)
        top.set_xticklabels([_fmt_tokens(_interp(t, steps, tokens)) for t in ticks])
        top.set_xlabel("tokens seen")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def _fmt_tokens(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else f"{n:.0f}"
