"""Grading many submissions at once: one coordinator writes the gradebook, workers run the notebooks.

For each submission (student x assignment):

    A  coordinator  nbgrader's sanitize preprocessors (locked cells and tests restored from the
                    gradebook, which is only read) -> a ``worker.Job``: notebooks as JSON, files as bytes
    B  worker       ``worker.execute``: the sandboxed kernel runs the student's cells, the trusted
                    executor judges every test cell -> a ``worker.Result``: the executed notebooks
    C  coordinator  nbgrader's own Autograde, with ``ApplyResults`` in the executor's place: the
                    worker's outputs go in, SaveAutoGrades records the points (one transaction per
                    notebook), late penalties; then feedback, returned to the exchange

Workers are processes of a Dask cluster: a local one (``workers=N``) or a running scheduler anywhere
(``cluster="tcp://host:8786"``); ``workers=0`` runs phase B in this process. A worker that fails
records nothing, so a previous grade stays as it was. Each recorded grade is appended to a log
(``autograded/.llmkit-grading.jsonl``) with the hash of what was graded, so a re-run grades only new
or changed submissions, and a coordinator killed at any point loses no grade it recorded.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmkit.errors import LLMKitError
from . import worker

LOG_NAME = ".llmkit-grading.jsonl"
MAX_SUBMISSION_MB = float(os.environ.get("LLMKIT_MAX_SUBMISSION_MB", "100"))
EXECUTOR = "llmkit_instructor.grading.trusted.TrustedExecute"


def kernel_threads() -> int:
    """Torch threads for every kernel and the grader's checks beside it (``LLMKIT_GRADING_THREADS``, default 1).

    The same count everywhere keeps a grade independent of ``--workers``, the cluster and the machine's
    cores (a thread count changes how reductions are split, so the last bits of a float); the
    parallelism comes from the workers, one per core."""
    text = os.environ.get("LLMKIT_GRADING_THREADS", "1")
    try:
        threads = int(text)
    except ValueError:
        threads = 0
    if threads < 1:
        raise LLMKitError(f"LLMKIT_GRADING_THREADS={text!r} is not a positive whole number; set it to 1 "
                          "(the default) or to the torch threads each grading kernel may use")
    return threads


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def have_dask() -> bool:
    import importlib.util

    return importlib.util.find_spec("distributed") is not None


# --------------------------------------------------------------------------- what needs grading


def _tree_hash(folder: Path, digest, ignore=(".ipynb_checkpoints", "__pycache__")) -> None:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in ignore for part in rel.parts) or not path.is_file():
            continue
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def submission_hash(course_root: Path, student: str, assignment: str) -> str:
    """What a grade depends on: the submitted folder and the assignment's source (its tests)."""
    digest = hashlib.sha256()
    _tree_hash(course_root / "submitted" / student / assignment, digest)
    digest.update(b"\0source\0")
    _tree_hash(course_root / "source" / assignment, digest)
    return digest.hexdigest()[:32]


class GradingLog:
    """An append-only record of every grade the coordinator committed, last entry wins.

    One JSON line per grade, flushed to disk before the next submission: a coordinator killed
    mid-line leaves at most one torn line, which is ignored (that submission is graded again).
    """

    def __init__(self, course_root: Path):
        self.path = course_root / "autograded" / LOG_NAME

    def entries(self) -> dict[tuple[str, str], dict]:
        found = {}
        if not self.path.is_file():
            return found
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                found[entry["student"], entry["assignment"]] = entry
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def append(self, **entry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as out:
            torn = False
            if out.seek(0, os.SEEK_END) > 0:  # a line cut by a killed coordinator: start a fresh one
                out.seek(-1, os.SEEK_END)
                torn = out.read(1) != b"\n"
            out.write((("\n" if torn else "") + json.dumps(entry, sort_keys=True) + "\n").encode())
            out.flush()
            os.fsync(out.fileno())


def plan(course_root: Path, nbapi, pairs, force: bool = False):
    """Split (student, assignment) pairs into (to grade [(student, assignment, hash)], unchanged)."""
    logged = GradingLog(course_root).entries()
    recorded = set()
    with nbapi.gradebook as gb:
        for assignment in gb.assignments:
            recorded |= {(s.student_id, assignment.name) for s in assignment.submissions}
    todo, unchanged = [], []
    for student, assignment in pairs:
        digest = submission_hash(course_root, student, assignment)
        entry = logged.get((student, assignment))
        same = entry is not None and entry.get("hash") == digest and (student, assignment) in recorded
        if same and not force:
            unchanged.append((student, assignment))
        else:
            todo.append((student, assignment, digest))
    return todo, unchanged


# --------------------------------------------------------------------------- phase A


class Sanitizer:
    """nbgrader's sanitize step, read-only, as data for a worker (phase A)."""

    def __init__(self, nbapi, threads: int = 0):
        from nbgrader.converters import Autograde

        self.nbapi = nbapi
        self.coursedir = nbapi.coursedir
        self.autograde = Autograde(coursedir=nbapi.coursedir, parent=nbapi)  # the course's settings
        # The exporter exactly as nbgrader's converter makes it (no nbconvert default preprocessors).
        self.exporter = self.autograde.exporter_class(parent=self.autograde, config=self.autograde.config)
        self.exporter._preprocessors = []
        for pp in self.autograde.sanitize_preprocessors:
            self.exporter.register_preprocessor(pp)
        self.executor = _executor_class(self.autograde.autograde_preprocessors)
        self.config = _executor_config(nbapi.config, self.executor)
        # What the executor would read from the gradebook and the course's salt file, read here once.
        self.salt = self.executor(parent=self.autograde)._salt() if hasattr(self.executor, "_salt") else 0
        self.threads = threads

    def _files(self, submitted: Path, assignment: str) -> dict[str, bytes]:
        """The folder nbgrader's autograde would run in: the student's files, then the instructor's."""
        from nbgrader.utils import find_all_files

        ignore = list(self.coursedir.ignore) + ["*.ipynb"]
        source = Path(self.coursedir.format_path(self.coursedir.source_directory, ".", assignment))
        excluded = {str(source / x) for x in self.autograde.exclude_overwriting.get(assignment, [])}
        files, size = {}, 0
        for root, skip in ((submitted, set()), (source, excluded)):
            for name in find_all_files(str(root), ignore):
                if name in skip:
                    continue
                data = Path(name).read_bytes()
                size += len(data)
                files[Path(name).relative_to(root).as_posix()] = data
        if size > MAX_SUBMISSION_MB * 2**20:
            raise LLMKitError(f"the submission folder holds {size / 2**20:.0f} MB, more than "
                              f"LLMKIT_MAX_SUBMISSION_MB={MAX_SUBMISSION_MB:g}")
        return files

    def job(self, student: str, assignment: str) -> worker.Job:
        import nbformat

        submitted = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment))
        with self.nbapi.gradebook as gb:
            try:
                known = {nb.name for nb in gb.find_assignment(assignment).notebooks}
            except Exception:  # noqa: BLE001 - MissingEntry
                raise LLMKitError(f"{assignment} is not in the gradebook; run `llmkit course build {assignment}`") \
                    from None
        notebooks, instructor = {}, {}
        for path in sorted(submitted.glob("*.ipynb")):
            if path.stem not in known:
                continue
            resources = {"unique_key": path.stem, "nbgrader": {
                "student": student, "assignment": assignment, "notebook": path.stem,
                "db_url": self.coursedir.db_url}}
            try:
                text, _ = self.exporter.from_filename(str(path), resources=resources)
            except nbformat.reader.NotJSONError:
                raise LLMKitError(f"{path.name} is not a notebook (invalid JSON)") from None
            except Exception as exc:  # noqa: BLE001 - e.g. nbgrader's metadata checks refuse it
                raise LLMKitError(f"{path.name} cannot be graded: {type(exc).__name__}: {_last_line(exc)}") from None
            notebooks[path.stem] = text
            if hasattr(self.executor, "_instructor_cells"):
                instructor[path.stem] = self.executor._instructor_cells(resources["nbgrader"])
        return worker.Job(student, assignment, notebooks, self._files(submitted, assignment), self.config,
                          instructor=instructor, salt=self.salt, threads=self.threads,
                          executor=f"{self.executor.__module__}.{self.executor.__qualname__}")


def _executor_config(config, cls) -> dict:
    """The traitlets config sections the course's executor reads (its class and its bases)."""
    names = {c.__name__ for c in cls.__mro__}
    return {name: dict(section) for name, section in config.items() if name in names}


def _executor_class(preprocessors):
    from nbgrader.preprocessors import Execute
    from traitlets.utils.importstring import import_item

    for pp in preprocessors:
        cls = import_item(pp) if isinstance(pp, str) else pp
        if isinstance(cls, type) and issubclass(cls, Execute):
            return cls
    raise LLMKitError("the course's Autograde.autograde_preprocessors has no executor; put "
                      f"'{EXECUTOR}' first in nbgrader_config.py")


# --------------------------------------------------------------------------- phase C


def _apply_results_class():
    from nbgrader.preprocessors import NbGraderPreprocessor

    class ApplyResults(NbGraderPreprocessor):
        """Stands in for the executor in phase C: the outputs are the worker's, nothing runs here."""

        def __init__(self, executed: dict[str, str], **kwargs):
            super().__init__(**kwargs)
            self.executed = executed

        def preprocess(self, nb, resources):
            import nbformat

            notebook_id = resources["nbgrader"]["notebook"]
            if notebook_id not in self.executed:
                raise LLMKitError(f"the worker returned no {notebook_id}.ipynb")
            ran = nbformat.reads(self.executed[notebook_id], as_version=nbformat.NO_CONVERT)
            if [c.source for c in ran.cells] != [c.source for c in nb.cells]:
                raise LLMKitError(f"{notebook_id}.ipynb changed while it was graded; grade it again")
            for cell, done in zip(nb.cells, ran.cells):
                if cell.cell_type == "code":
                    cell.outputs = done.get("outputs", [])
                    cell.execution_count = done.get("execution_count")
            if "language_info" in ran.metadata:
                nb.metadata["language_info"] = ran.metadata["language_info"]
            return nb, resources

    return ApplyResults


def record(nbapi, result: worker.Result) -> str:
    """Phase C: nbgrader's Autograde with the worker's outputs; returns an error line, '' when recorded."""
    from nbgrader.converters import Autograde
    from nbgrader.utils import capture_log, temp_attrs

    ApplyResults = _apply_results_class()
    with temp_attrs(nbapi.coursedir, assignment_id=result.assignment, student_id=result.student):
        app = Autograde(coursedir=nbapi.coursedir, parent=nbapi)
        executor = _executor_class(app.autograde_preprocessors)
        app.autograde_preprocessors = [
            ApplyResults(result.notebooks, parent=app) if _is(pp, executor) else pp
            for pp in app.autograde_preprocessors]
        app.force = True
        app.create_student = True
        outcome = capture_log(app)
    return "" if outcome["success"] else _last_line(outcome.get("error", ""))


def _is(pp, cls) -> bool:
    from traitlets.utils.importstring import import_item

    return (import_item(pp) if isinstance(pp, str) else pp) is cls


def _last_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "unknown error"


def score(nbapi, student: str, assignment: str) -> tuple[float, float]:
    with nbapi.gradebook as gb:
        sub = gb.find_submission(assignment, student)
        return float(sub.score or 0), float(sub.max_score or 0)


# --------------------------------------------------------------------------- workers


class InProcess(cf.Executor):
    """Phase B in the coordinator's own process, one job at a time (``workers=0``)."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            future.set_exception(exc)
        return future


class OnDask(cf.Executor):
    """Phase B on a Dask cluster, as concurrent.futures; a result leaves the cluster's memory once here."""

    def __init__(self, client):
        self.client = client

    def submit(self, fn, /, *args, **kwargs):
        outer = cf.Future()

        def deliver(inner):  # Dask calls it in a thread of its own once the job is done
            try:
                outer.set_result(inner.result())
            except BaseException as exc:  # noqa: BLE001 - delivered through the future
                outer.set_exception(exc)
            finally:
                inner.release()

        self.client.submit(fn, *args, pure=False, **kwargs).add_done_callback(deliver)
        return outer


@contextlib.contextmanager
def pool(workers: int, cluster: str | None = None):
    """(executor, slots): a concurrent.futures executor for phase B, and how many jobs may be in flight."""
    if not cluster and workers == 0:
        yield InProcess(), 1
        return
    if not have_dask():
        raise LLMKitError("parallel grading needs Dask: pip install 'dask[distributed]' (a dependency of "
                          "plugins/instructor), or grade in this process with --workers 0")
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1, "logging.distributed": "error"}):
        if cluster:
            try:
                client = Client(cluster, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise LLMKitError(f"cannot reach the Dask scheduler at {cluster} ({exc}); start one with "
                                  "`dask scheduler` and workers with `dask worker ADDRESS`") from None
            local = None
        else:
            local = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                 dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR)
            client = Client(local)
        try:
            if not client.nthreads():
                try:
                    client.wait_for_workers(1, timeout=60)
                except TimeoutError:
                    raise LLMKitError(f"the Dask scheduler at {cluster} has no workers; start them with "
                                      f"`dask worker {cluster}` on the grading machines") from None
            slots = max(1, sum(client.nthreads().values()))
            yield OnDask(client), 2 * slots
        finally:
            client.close()
            if local is not None:
                local.close()


# --------------------------------------------------------------------------- the coordinator


@dataclass
class Outcome:
    graded: list = field(default_factory=list)  # (student, assignment)
    failed: list = field(default_factory=list)  # (student, assignment, reason)
    unchanged: list = field(default_factory=list)  # (student, assignment): graded before, same content
    returned: list = field(default_factory=list)  # (student, assignment): feedback in the exchange
    seconds: dict = field(default_factory=dict)  # stage -> seconds over all notebooks
    notebooks: int = 0
    wall_seconds: float = 0.0
    workers: str = ""


def grade_all(course_root: Path, nbapi, todo, workers: int, cluster: str | None = None,
              after_record=None, progress: bool = True) -> Outcome:
    """Grade ``todo`` [(student, assignment, hash)]; ``after_record(student, assignment)`` runs after each grade."""
    from tqdm.auto import tqdm

    log = GradingLog(course_root)
    outcome = Outcome(seconds=dict.fromkeys((*worker.STAGES, "prepare", "record"), 0.0))
    if not todo:
        return outcome
    started = time.perf_counter()
    sanitizer = Sanitizer(nbapi, threads=kernel_threads())
    queue = list(todo)
    hashes = {(s, a): h for s, a, h in todo}
    with pool(workers, cluster) as (executor, slots), \
            tqdm(total=len(todo), desc="grade", unit="submission", disable=not progress or not todo) as bar:
        outcome.workers = cluster or (f"{workers} local worker(s)" if workers else "this process")
        running: dict = {}
        while queue or running:
            while queue and len(running) < slots:
                student, assignment, _ = queue.pop(0)
                t0 = time.perf_counter()
                try:
                    job = sanitizer.job(student, assignment)
                except Exception as exc:  # noqa: BLE001 - one broken submission never stops the others
                    reason = str(exc) if isinstance(exc, LLMKitError) else f"{type(exc).__name__}: {_last_line(exc)}"
                    outcome.failed.append((student, assignment, reason))
                    bar.update()
                    continue
                finally:
                    outcome.seconds["prepare"] += time.perf_counter() - t0
                running[executor.submit(worker.execute, job)] = (student, assignment)
            if not running:
                continue
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                student, assignment = running.pop(future)
                _finish(nbapi, log, outcome, future, student, assignment, hashes[student, assignment], after_record)
                bar.update()
    outcome.wall_seconds = time.perf_counter() - started
    return outcome


def _finish(nbapi, log, outcome, future, student, assignment, digest, after_record):
    try:
        result = future.result()
    except Exception as exc:  # noqa: BLE001 - a worker process died (e.g. KilledWorker) or vanished
        outcome.failed.append((student, assignment, f"the worker failed: {type(exc).__name__}: {_last_line(exc)}"))
        return
    if result.error:
        outcome.failed.append((student, assignment, f"the worker failed: {result.error}"))
        return
    t0 = time.perf_counter()
    error = record(nbapi, result)
    if error:
        outcome.seconds["record"] += time.perf_counter() - t0
        outcome.failed.append((student, assignment, error))
        return
    try:
        if after_record is not None and after_record(student, assignment):
            outcome.returned.append((student, assignment))
    except LLMKitError as exc:  # recorded, but not logged: the next run grades it and tries again
        outcome.seconds["record"] += time.perf_counter() - t0
        outcome.failed.append((student, assignment, str(exc)))
        return
    points, top = score(nbapi, student, assignment)
    outcome.seconds["record"] += time.perf_counter() - t0
    for stage, seconds in result.seconds.items():
        outcome.seconds[stage] = outcome.seconds.get(stage, 0.0) + seconds
    outcome.notebooks += len(result.notebooks)
    outcome.graded.append((student, assignment))
    log.append(student=student, assignment=assignment, hash=digest, score=points, max_score=top,
               worker=result.worker, at=time.strftime("%Y-%m-%dT%H:%M:%S"),
               seconds=round(sum(result.seconds.values()), 2))
