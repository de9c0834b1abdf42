"""``llmkit run``: the one orchestrator. It checks every stage, then runs them in order into one folder.

    RunConfig (TOML + --set) -> pretrain -> classify -> instruct -> report.md

Each stage is a module in ``llmkit.run.stages`` that reads top to bottom; pretraining produces the
model the others start from, unless a pretrained one is handed in (``llmkit finetune --from``, see
``llmkit.run.commands``). Every stage checks its settings and data before any of them trains, so a
typo in ``[finetune]`` fails in a second, not after pretraining. Components are reached by name
through the registry only; this package never imports one.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import autotune
from ..devices import get_device
from ..errors import LLMKitError
from ..io import atomic_write_text
from ..runconfig import RunConfig, load_run_config, to_toml
from .artifacts import Trained
from .rundir import StageResult, default_run_dir, prepare_run_dir, write_report
from .stages import classify, instruct, pretrain

STAGES = {stage.NAME: stage for stage in (pretrain, classify, instruct)}
COMPILE_CHOICES = ("auto", "on", "off")


def choose_precision(device) -> None:
    """``precision = "auto"``: what this machine measured faster (``llmkit.autotune``, cached), on one
    process on a CPU or a CUDA GPU; several ranks keep the device's static choice, so that they agree."""
    if device.world_size == 1 and device.torch_device.type in ("cpu", "cuda"):
        device.precision = autotune.choose_precision(device.torch_device)

__all__ = ["STAGES", "StageResult", "Trained", "run"]


def run(cfg: RunConfig, run_dir: Path | None = None, resume: bool = False, overwrite: bool = False,
        stages: list[str] | None = None, init_from: str | None = None, base: Trained | None = None,
        callbacks=(), show_progress=None) -> tuple[Path, list[StageResult]]:
    """Run ``stages`` (default ``cfg.run.stages``) into a run folder; return it and the stage results.

    Without ``base`` pretraining always runs first (``init_from`` continues a checkpoint, ``resume``
    a killed run); with ``base`` (a ``Trained`` model) the fine-tuning stages start from it.
    """
    run_dir = Path(run_dir) if run_dir else default_run_dir()
    if resume and (run_dir / "config.toml").is_file():
        cfg = load_run_config(run_dir / "config.toml")  # the killed run's settings, its stages included
    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    if cfg.device.compile not in COMPILE_CHOICES:
        raise LLMKitError(f"device.compile must be one of {', '.join(COMPILE_CHOICES)}, got {cfg.device.compile!r}.")
    device = get_device(cfg.device.name, cfg.device.precision)
    if cfg.device.precision == "auto":
        choose_precision(device)
    stages = list(stages or cfg.run.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise LLMKitError(f"Unknown stage '{unknown[0]}'; stages are: {', '.join(STAGES)}.")
    finetuning = [s for s in stages if s != pretrain.NAME]
    if base is not None and len(finetuning) < len(stages):
        raise LLMKitError("A run that starts from a pretrained model does not pretrain; drop 'pretrain' from the stages.")
    for stage in finetuning:  # settings, data and strategies, before anything trains
        STAGES[stage].check(cfg, base.model_cfg if base is not None else None)
    try:
        prepare_run_dir(run_dir, resume, overwrite, device)
        if not resume and device.is_main:
            atomic_write_text(run_dir / "config.toml", to_toml(cfg))
        results = []
        started = time.perf_counter()
        if base is None:
            result, base = pretrain.run(cfg, run_dir, device, resume=resume, init_from=init_from,
                                        callbacks=callbacks, show_progress=show_progress)
            results.append(result)
        else:
            base.model = base.model.to(device.torch_device)
        for stage in finetuning:
            results.append(STAGES[stage].run(cfg, run_dir, device, base))
        if device.is_main:
            write_report(run_dir, results, time.perf_counter() - started)
        return run_dir, results
    finally:
        device.close()
