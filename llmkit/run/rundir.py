"""The run folder: created once, never overwritten by accident, closed with ``report.md``.

    RUN_DIR/config.toml       the whole config of the run (``--resume`` reads it back)
    RUN_DIR/metrics.jsonl     one record per step / evaluation / sample (pretraining)
    RUN_DIR/checkpoint.pt     the pretrained model (``llmkit.run.artifacts`` reads every checkpoint)
    RUN_DIR/<stage>/...       a fine-tuning stage's checkpoints, metrics and curves
    RUN_DIR/report.md, summary.json
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..devices import Device
from ..errors import LLMKitError
from ..io import atomic_write_text


@dataclass
class StageResult:
    name: str
    summary: dict = field(default_factory=dict)  # figures for summary.json and the CLI
    markdown: str = ""  # the stage's part of report.md


def default_run_dir(prefix: str = "run") -> Path:
    return Path("runs") / datetime.now().strftime(f"{prefix}-%Y%m%d-%H%M%S")


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool, device: Device) -> Path:
    """Create the folder; an existing one is only reused with --resume or replaced with --overwrite."""
    exists = run_dir.exists() and any(run_dir.iterdir())
    if resume:
        if not (run_dir / "checkpoint.pt").is_file():
            raise LLMKitError(f"--resume found no checkpoint at {run_dir / 'checkpoint.pt'}; "
                              "start the run without --resume, or point --run-dir at the run to continue.")
    elif exists and not overwrite:
        raise LLMKitError(f"{run_dir} already exists; continue it with --resume, replace it with --overwrite, "
                          "or choose another --run-dir.")
    device.barrier()
    if device.is_main:
        if exists and overwrite and not resume:
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    device.barrier()
    return run_dir


def stage_dir(run_dir: Path, name: str, device: Device) -> Path:
    """``RUN_DIR/<stage>``, its metrics started afresh (a resumed run repeats the stage from the start)."""
    folder = Path(run_dir) / name
    if device.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.jsonl").unlink(missing_ok=True)
    return folder


def write_report(run_dir: Path, results: list[StageResult], seconds: float) -> None:
    body = ["# llmkit run report", "", f"Run folder `{run_dir}`, finished in {seconds:.1f} s. "
            "Config: [config.toml](config.toml); metrics: [metrics.jsonl](metrics.jsonl).", ""]
    for result in results:
        body += [result.markdown, ""]
    atomic_write_text(run_dir / "report.md", "\n".join(body))
    atomic_write_text(run_dir / "summary.json", json.dumps({r.name: r.summary for r in results}, indent=2))
