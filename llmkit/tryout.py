"""Run a component (a student's, by registry name) inside the kit's pipeline, beside the reference.

    llmkit.register("attention", "mine")(MultiHeadAttention)
    from llmkit.tryout import try_component
    try_component("attention", "mine")        # short pretraining with each; losses side by side + a plot

Used by the last cell of each course notebook. The run is tiny (seconds on a laptop CPU) and seeded,
so the two curves differ only by the component.
"""

from __future__ import annotations

import copy
import time

import torch

from .devices import CPUDevice
from .errors import LLMKitError
from .registry import canonical_family
from .runconfig import RunConfig, load_run_config

# What each family's name sets in the run config.
FAMILY_SETTING = {"attention": "model.attention", "tokenizers": "tokenizer.name", "samplers": "sampler.name",
                  "models": "model.name"}
# What a student's component runs beside: the kit's defaults. ("mha" as model.attention means the
# model's own attention, so no reference solution is needed for any of them.)
DEFAULT_REFERENCE = {"attention": "mha", "tokenizers": "bpe", "samplers": "random-block", "models": "gpt"}


def tiny_config(steps: int = 40, **overrides) -> RunConfig:
    settings = ["model.emb_dim=64", "model.n_heads=4", "model.n_layers=2", "model.context_length=64",
                "model.drop_rate=0.0", "tokenizer.name=\"char\"", "sampler.batch_size=8",
                f"train.max_steps={steps}", f"train.eval_every={max(1, steps // 4)}", "train.eval_batches=2",
                "train.warmup_steps=5", "train.lr=0.003", f"sampler.batches_per_epoch={steps}", "train.epochs=1"]
    settings += [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in overrides.items()]
    return load_run_config(None, [s.replace("'", '"') for s in settings])


def _train_once(cfg: RunConfig, seed: int) -> dict:
    from .run.data import build_model, make_eval_loader, make_train_loader, prepare_data
    from .training import train

    prepared = prepare_data(cfg)
    torch.manual_seed(seed)
    model = build_model(cfg, prepared.model_cfg)
    evals = {"val": make_eval_loader(cfg, prepared.val_ids)}
    started = time.perf_counter()
    # a progress bar per run: the two runs together take about ten seconds on a laptop
    state = train(model, make_train_loader(cfg, prepared.train_ids), evals, cfg.train, CPUDevice("fp32"),
                  show_progress=True)
    losses = [(r["step"], r["val_loss"]) for r in state.history if r["kind"] == "eval"]
    return {"val_losses": losses, "seconds": time.perf_counter() - started, "tokens_seen": state.tokens_seen}


def try_component(family: str, name: str, reference: str | None = None, steps: int = 40, seed: int = 123,
                  plot: bool = True) -> dict:
    """Pretrain a tiny GPT with ``name`` and with the reference; print and plot validation losses."""
    import os

    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        print("(The side-by-side run is skipped while grading; it never affects your score.)")
        return {}
    family = canonical_family(family)
    if family not in FAMILY_SETTING:
        raise LLMKitError(f"try_component works for {', '.join(FAMILY_SETTING)}; got {family}.")
    reference = reference or DEFAULT_REFERENCE[family]
    setting = FAMILY_SETTING[family]
    results = {}
    for label in dict.fromkeys([name, reference]):
        cfg = tiny_config(steps)
        section, key = setting.split(".")
        setattr(getattr(cfg, section), key, label)
        if family == "attention":
            cfg.model.name = "gpt-book"  # the production "gpt" fuses its own attention; the book's GPT takes any
        results[label] = _train_once(copy.deepcopy(cfg), seed)
    print(f"{'step':>6} " + " ".join(f"{label:>14}" for label in results))
    steps_seen = [s for s, _ in results[name]["val_losses"]]
    for i, step in enumerate(steps_seen):
        print(f"{step:>6} " + " ".join(f"{r['val_losses'][i][1]:>14.3f}" for r in results.values()))
    if plot:
        _plot(results, family)
    return results


def _plot(results: dict, family: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    # Equal curves lie on top of each other: the reference is dashed so that both stay visible.
    for (label, r), style in zip(results.items(), ("-", "--")):
        steps, losses = zip(*r["val_losses"])
        ax.plot(steps, losses, style, marker=".", label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss")
    ax.set_title(f"{family}: yours beside the reference")
    ax.legend()
    from .i18n import localize_figure

    localize_figure(fig)  # in the language of the notebook's edition, if it has one
    fig.tight_layout()
    plt.show()
