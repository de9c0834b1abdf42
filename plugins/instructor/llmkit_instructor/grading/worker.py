"""Phase B of parallel grading: run one sanitized submission in the sandbox, on any worker.

A worker needs the kit and bubblewrap, nothing of the gradebook or the course folder. It receives a
``Job`` as data (the sanitized notebooks as nbformat JSON, the submission's other files as bytes,
the course's executor settings), runs each notebook with ``TrustedExecute`` (student code in the
sandboxed kernel, every test cell judged here), and returns a ``Result``: the executed notebooks
as JSON and where the time went. The coordinator (``parallel.py``) records them in the gradebook.

    result = execute(job)          # what a Dask worker, or a local one, calls
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from llmkit import errors

STAGES = ("sandbox", "kernel", "probe", "execute", "stop")  # where a notebook's worker time goes


@dataclass
class Job:
    """One student's submission of one assignment, ready to run anywhere."""

    student: str
    assignment: str
    notebooks: dict[str, str]  # notebook id -> sanitized notebook (nbformat JSON)
    files: dict[str, bytes]  # the folder's other files (relative POSIX paths), as nbgrader lays them out
    config: dict  # the executor's traitlets config sections, e.g. {"TrustedExecute": {...}, "Execute": {...}}
    instructor: dict[str, dict[str, str]] = field(default_factory=dict)  # notebook id -> the gradebook's
    # locked cells (grade id -> source): the only code the executor runs in the grader
    salt: int = 0  # the course's secret salt for hidden-check inputs (0: the published seeds)
    executor: str = "llmkit_instructor.grading.trusted.TrustedExecute"
    threads: int = 1  # torch threads for this grader's checks and for the kernel (parallel.kernel_threads)


@dataclass
class Result:
    student: str
    assignment: str
    notebooks: dict[str, str] = field(default_factory=dict)  # notebook id -> executed notebook (JSON)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds, summed over notebooks
    error: str = ""  # set when the worker itself failed: nothing is recorded for this submission
    worker: str = ""  # which worker ran it: a Dask worker's address, else host:pid


def _worker_executor(base, job: Job):
    """``base`` (TrustedExecute) fed from the job instead of the gradebook and the salt file, with a
    stopwatch on the sandbox, the kernel's start, the probe and the shutdown."""

    class OnWorker(base):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seconds = dict.fromkeys(STAGES, 0.0)

        def _instructor_cells(self, info):
            return dict(job.instructor.get(info["notebook"], {}))

        def _salt(self):
            return job.salt

        def _clock(self, stage, started):
            self.seconds[stage] += time.perf_counter() - started

        def create_kernel_manager(self):
            started = time.perf_counter()
            try:
                return super().create_kernel_manager()
            finally:
                self._clock("sandbox", started)

        def start_new_kernel(self, **kwargs):
            started = time.perf_counter()
            try:
                return super().start_new_kernel(**kwargs)
            finally:
                self._clock("kernel", started)

        def start_new_kernel_client(self):
            started = time.perf_counter()
            try:
                return super().start_new_kernel_client()
            finally:
                self._clock("kernel", started)

        def _open_session(self):
            started = time.perf_counter()
            try:
                return super()._open_session()
            finally:
                self._clock("probe", started)

        def _cleanup_kernel(self):
            started = time.perf_counter()
            try:
                return super()._cleanup_kernel()
            finally:
                self._clock("stop", started)

    return OnWorker


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = PurePosixPath(rel)
        if path.is_absolute() or ".." in path.parts:
            raise errors.LLMKitError(f"refusing a file outside the submission: {rel}")
        target = folder.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


_ready: dict[str, bool] = {}


def _prepare_process(job: Job) -> None:
    """Once per worker process: torch's thread count, the sandbox's preflight."""
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
        os.environ["LLMKIT_SANDBOX_THREADS"] = str(job.threads)  # the kernel's OMP_NUM_THREADS
    sandboxed = job.config.get("TrustedExecute", {}).get("sandbox", True)
    if sandboxed and not _ready.get("preflight"):
        from .sandbox import preflight

        preflight()  # a worker machine without bubblewrap fails every job with the fix, at once
        _ready["preflight"] = True


def _worker_name() -> str:
    import socket

    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # not inside a Dask worker
        return f"{socket.gethostname()}:{os.getpid()}"


def execute(job: Job) -> Result:
    """Run every notebook of ``job`` in the sandbox with the trusted executor; never raises for student code."""
    import nbformat
    from traitlets.config import Config
    from traitlets.utils.importstring import import_item

    result = Result(job.student, job.assignment, worker=_worker_name())
    result.seconds = dict.fromkeys(STAGES, 0.0)
    folder = Path(tempfile.mkdtemp(prefix="llmkit-job-"))
    threads_before = _torch_threads()
    try:
        _prepare_process(job)
        _write_files(folder, job.files)
        executor_class = _worker_executor(import_item(job.executor), job)
        config = Config({"NotebookClient": {"shutdown_kernel": "immediate"}})  # the sandbox ends with it
        config.merge(Config(job.config))
        for notebook_id, text in sorted(job.notebooks.items()):
            nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
            (folder / f"{notebook_id}.ipynb").write_text(text, encoding="utf-8")
            executor = executor_class(config=config)
            resources = {"metadata": {"path": str(folder)}, "unique_key": notebook_id,
                         "nbgrader": {"student": job.student, "assignment": job.assignment,
                                      "notebook": notebook_id, "db_url": ""}}
            started = time.perf_counter()
            nb, _ = executor.preprocess(nb, resources)
            total = time.perf_counter() - started
            for stage in ("sandbox", "kernel", "probe", "stop"):
                result.seconds[stage] += executor.seconds[stage]
            result.seconds["execute"] += total - sum(executor.seconds.values())
            result.notebooks[notebook_id] = nbformat.writes(nb)
    except Exception as exc:  # noqa: BLE001 - the worker failed, not the student: nothing gets recorded
        result.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if threads_before:  # grading in the caller's own process (--workers 0) leaves its torch as it was
            import torch

            torch.set_num_threads(threads_before)
    return result


def _torch_threads() -> int:
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else 0
