"""Trusted autograding: nbgrader's executor, with every verdict computed outside the student's kernel.

``TrustedExecute`` replaces nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors`` (see
``course/nbgrader_config.py``), so ``llmkit course grade`` and the formgrader's "autograde" both take
this path. For each notebook it:

1. starts the student's kernel in the sandbox (``sandbox.py``) and runs the notebook's ordinary
   cells there, as the student did;
2. runs every graded test cell *here*, in the grader, from the instructor's source that nbgrader
   restored: names the cell reads from the notebook arrive as data (tensors, numbers, strings) or as
   ``RemoteObject`` handles, so the student's classes run in their kernel while the comparison, the
   diagnosis and the verdict happen in this process. Visible test cells also run in the kernel first,
   so the notebook's later cells see what they saw when the student ran it;
3. writes each test cell's outputs itself: what the check printed, or one error line with the
   diagnosis (never a traceback of grader code). nbgrader's ``SaveAutoGrades`` then records points
   from those outputs, in the grader process, in one transaction per notebook.

A kernel that dies, exits, floods, hangs or ignores interrupts costs the student what did not run;
the feedback says where and why, and grading goes on.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import contextvars
import io
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import torch
import zmq
from jupyter_client import AsyncKernelManager, BlockingKernelClient
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Integer, Unicode

from llmkit.exercise import register_defined_check
from llmkit.i18n.runtime import language

from . import GradingError, salted_seeds
from .sanitize import sanitize_notebook
from .integrity import Cell, SourceIntegrity
from .remote import KernelGone, KernelSession, RemoteObject, StudentCodeError, wait_until_connected
from . import sandbox

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MAX_TRUSTED_OUTPUT = 20_000
MAX_CELL_OUTPUT = 100_000  # characters of one student cell's text output kept for the feedback
MAX_REPLY_BYTES = 512 * 2**20  # one message from the kernel, a large model's weights included

# The integrity oracle of the notebook being graded; assert_defined_in_notebook reads it.
current_integrity: contextvars.ContextVar = contextvars.ContextVar("llmkit_integrity", default=None)
# The kernel session of the test cell being run, for checks that must ship objects into the kernel.
current_session: contextvars.ContextVar = contextvars.ContextVar("llmkit_session", default=None)


def _nb(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) if "metadata" in cell else {}


def is_test_cell(cell) -> bool:
    meta = _nb(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def without_hidden(source: str) -> str:
    return re.sub(rf"{re.escape(HIDDEN_BEGIN)}.*?{re.escape(HIDDEN_END)}\n?", "", source, flags=re.S)


def graded_names(sources) -> set[str]:
    """Names the (instructor's) test cells hand to checks: the objects graded in this notebook."""
    names = set()
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                    (node.func.id.startswith("check_") or node.func.id == "assert_defined_in_notebook"):
                names |= {a.id for a in node.args if isinstance(a, ast.Name)}
    return names


def answer_modules(names: set[str]) -> set[str]:
    """Modules of the reference solutions that define any of ``names``: the sandbox leaves them out."""
    where = sandbox.package_dir("llmkit_solutions")
    found = set()
    if where is None:
        return found
    for path in where.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        defined = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        if defined & names:
            found.add(".".join(("llmkit_solutions", *path.relative_to(where).with_suffix("").parts)))
    return found


def _english_name(assignment: str) -> str:
    """04-attention-es -> 04-attention: an edition hides the same answers as its English assignment."""
    from llmkit.i18n.edition import base_assignment

    return base_assignment(assignment)[0]


def _edition_language(assignment: str) -> str | None:
    """04-attention-es -> es; the English assignment -> None."""
    from llmkit.i18n.edition import base_assignment

    return base_assignment(assignment)[1]


def _bounded_context(context):
    """Sockets made from this context drop a peer that sends one message bigger than MAX_REPLY_BYTES."""
    context.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES)
    return context


def _has_code(source: str) -> bool:
    try:
        return bool(ast.parse(source).body)
    except SyntaxError:
        return True


def _free_names(code) -> set[str]:
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack.extend(k for k in c.co_consts if hasattr(k, "co_names"))
    return names


def _error_output(ename: str, message: str) -> NotebookNode:
    message = message.strip() or ename
    return NotebookNode(output_type="error", ename=ename, evalue=message, traceback=[f"{ename}: {message}"])


def _stream(text: str) -> NotebookNode:
    return NotebookNode(output_type="stream", name="stdout", text=text)


class TrustedExecute(Execute):
    """nbgrader's Execute, with test cells judged in the grader and the kernel in a sandbox."""

    sandbox = Bool(True, help="Run student kernels in the bubblewrap sandbox (never turn off for a real class).")\
        .tag(config=True)
    hidden_modules = Dict(default_value={}, help="Per assignment, extra modules (answer equivalents such as "
                          "plugins) the sandbox leaves out, besides the reference modules of its graded names.")\
        .tag(config=True)
    notebook_timeout = Integer(900, help="Wall-clock seconds for one notebook, kernel start included.")\
        .tag(config=True)
    # A cell's last outputs can reach us seconds after its reply on a loaded machine (two kernels and
    # the grader on two cores). nbgrader's 4 s, raised as an error, ended healthy kernels and cost
    # students the tests after; verdicts come from this process, never from the kernel's outputs, so
    # a late output only costs its display.
    iopub_timeout = Integer(30, help="Seconds to wait for a cell's outputs after its reply.").tag(config=True)
    raise_on_iopub_timeout = Bool(False, help="Late outputs are dropped, the notebook goes on.").tag(config=True)
    salt_file = Unicode("", help="A file holding the course's secret salt for hidden-check inputs (created on "
                        "first use, never visible to a kernel); empty: inputs follow the published seeds.")\
        .tag(config=True)

    # ------------------------------------------------------------------ kernel

    def create_kernel_manager(self):
        if not self.sandbox:
            self.log.warning("grading WITHOUT the sandbox: student code can read and change the course")
            self._scratch = None
            return AsyncKernelManager(kernel_name="python3")
        self._scratch = sandbox.new_scratch()
        uid = sandbox.fresh_uid()
        source = Path(self.resources.get("metadata", {}).get("path") or ".")
        work = sandbox.prepare_workdir(source, self._scratch, uid)
        limits = sandbox.Limits(wall_seconds=self.notebook_timeout)
        spec = sandbox.SandboxSpec(workdir=work, hidden_modules=self._hidden, limits=limits, uid=uid)
        km = sandbox.SandboxedKernelManager(spec, self._scratch)
        _bounded_context(km.context)  # nbclient's own client reads the kernel's outputs through it
        return km

    def _kill(self, why: str):
        self._dead = self._dead or why
        try:
            proc = getattr(self.km.provisioner, "process", None)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        except Exception:  # noqa: BLE001 - already gone
            pass

    # ------------------------------------------------------------------ notebook

    def preprocess(self, nb, resources=None, km=None):
        resources = resources or {}
        info = resources.get("nbgrader", {})
        assignment = info.get("assignment", "")
        self._instructor = self._instructor_cells(info)
        self._hidden = answer_modules(graded_names(self._instructor.values())) | \
            set(self.hidden_modules.get(_english_name(assignment), []))
        self._dead = None
        self._graded = set()  # indices of test cells whose verdict was given (a pass has no output)
        self._output_used = {}
        self._language = _edition_language(assignment)  # an edition's checks speak its language
        self._trusted_base = self._locked_imports(nb)
        self._integrity = SourceIntegrity([Cell(i, c.source, not self._is_instructor(c))
                                           for i, c in enumerate(nb.cells) if c.cell_type == "code"])
        self.resources = resources
        watchdog = threading.Timer(self.notebook_timeout, lambda: self._kill(
            f"the notebook ran longer than {self.notebook_timeout} s"))
        token = current_integrity.set(None)
        try:
            self.nb = nb
            try:
                super().preprocess(nb, resources, km=None)
            except Exception as exc:  # noqa: BLE001 - the kernel stopped answering, or never started
                if type(exc).__name__ == "CellTimeoutError" and "IOPub" in str(exc):
                    why = f"the kernel's output stopped arriving for {self.iopub_timeout} s"
                elif type(exc).__name__ == "CellTimeoutError":
                    why = f"a cell ran longer than {self.timeout} s and did not stop when interrupted"
                else:
                    why = f"the kernel could not run ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                self._dead = self._dead or why
                self._kill(self._dead)
                self.log.error("kernel failed: %s", exc)
            self._fail_rest(nb, start=getattr(self, "_next_index", 0))
            sanitize_notebook(nb, self._is_instructor)  # what the student wrote is shown to the instructor, never run
        finally:
            watchdog.cancel()
            current_integrity.reset(token)
            self._cleanup_scratch()
        return nb, resources

    @staticmethod
    def _instructor_cells(info: dict) -> dict:
        """grade_id -> source of the instructor's locked cells, read from the gradebook (never the submission)."""
        from nbgrader.api import Gradebook, MissingEntry

        if not info.get("db_url"):
            return {}
        try:
            with Gradebook(info["db_url"]) as gb:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
                return {cell.name: cell.source for cell in notebook.source_cells if cell.locked}
        except MissingEntry:
            return {}

    def _is_instructor(self, cell) -> bool:
        """Only code the gradebook holds, byte for byte, may run in the grader (a student can add any metadata)."""
        grade_id = _nb(cell).get("grade_id")
        return grade_id is not None and self._instructor.get(grade_id) == cell.source

    def _cleanup_scratch(self):
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    def _locked_imports(self, nb) -> dict:
        """The imports of the instructor's locked cells, done here: test cells use our torch, not the kernel's."""
        ns: dict = {"__builtins__": builtins, "__name__": "__llmkit_test__"}
        for cell in nb.cells:
            if cell.cell_type != "code" or not self._is_instructor(cell) or is_test_cell(cell):
                continue
            try:
                tree = ast.parse(without_hidden(cell.source))
            except SyntaxError:
                continue
            for node in tree.body:
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    try:
                        exec(compile(ast.Module(body=[node], type_ignores=[]), "<setup imports>", "exec"), ns)
                    except Exception:  # noqa: BLE001 - e.g. an import only the kernel has
                        continue
        return ns

    def preprocess_cell(self, cell, resources, index):
        self._next_index = index + 1
        if cell.cell_type != "code":
            return cell, self.resources
        if self._dead:
            self._fail_cell(cell)
            return cell, self.resources
        if not hasattr(self, "_session"):
            self._open_session()
        try:
            if is_test_cell(cell) and self._is_instructor(cell):
                self._grade_test_cell(cell, index)
            elif is_test_cell(cell):  # a test cell the gradebook does not know: never run here, never graded
                cell.outputs = [_error_output("NotGraded", "this cell is not one of the assignment's tests")]
            else:
                super().preprocess_cell(cell, resources, index)
                self._cap_outputs(cell)
        except KernelGone as exc:
            self._dead = self._dead or str(exc)
            self._fail_cell(cell)
        except Exception as exc:  # noqa: BLE001 - DeadKernelError and friends from nbclient
            if not self._kernel_alive():
                self._dead = self._dead or f"the kernel died ({type(exc).__name__})"
                self._fail_cell(cell)
            else:
                raise
        return cell, self.resources

    def _kernel_alive(self) -> bool:
        try:
            proc = getattr(self.km.provisioner, "process", None)
            return proc is not None and proc.poll() is None
        except Exception:  # noqa: BLE001
            return False

    def _open_session(self):
        client = BlockingKernelClient(context=_bounded_context(zmq.Context()))
        client.load_connection_info(self.km.get_connection_info())
        client.start_channels()
        self._client = client
        deadline = time.monotonic() + self.notebook_timeout
        self._session = KernelSession(client, deadline=deadline, op_timeout=float(self.timeout or 120))
        try:
            wait_until_connected(client, timeout=60)
        except TimeoutError:
            self._dead = "the grader's probe could not reach the kernel"
            return
        reply = client.execute_interactive("import llmkit.probe as __llmkit_probe__", timeout=60,
                                           store_history=False, output_hook=lambda m: None)
        if reply["content"]["status"] != "ok":
            self._dead = "the grader's probe could not start in the kernel"

    def _cleanup_kernel(self):
        client = getattr(self, "_client", None)
        if client is not None:
            client.stop_channels()
            del self._client
        if hasattr(self, "_session"):
            del self._session
        super()._cleanup_kernel()

    # ------------------------------------------------------------------ test cells

    def _grade_test_cell(self, cell, index):
        source = cell.source
        visible = without_hidden(source)
        session = self._session
        session.request("resolve", names=[], _push_rng=False)  # trusted RNG := the kernel's, before the cell
        before = torch.get_rng_state()
        if _has_code(visible):
            kernel_cell = NotebookNode(cell_type="code", source=visible, metadata={}, outputs=[],
                                       execution_count=None)
            try:  # the kernel runs the visible part too, so later cells see what the student saw
                super().preprocess_cell(kernel_cell, self.resources, index)
            finally:
                self.nb.cells[index] = cell  # nbclient stores the cell it ran; keep the instructor's
            if self._dead or not self._kernel_alive():
                raise KernelGone(self._dead or "the kernel died")
        session.request("resolve", names=[], _push_rng=False)
        after = torch.get_rng_state()
        torch.set_rng_state(before)
        cell.outputs = self._run_trusted(source, index, hidden=HIDDEN_BEGIN in source)
        self._graded.add(index)  # its verdict stands, whatever happens to the kernel later
        torch.set_rng_state(after)
        if not session.dead:
            session.request("resolve", names=[])  # the kernel continues from its own state

    def _run_trusted(self, source: str, index: int, hidden: bool) -> list:
        try:
            code = compile(source, f"<test cell {index}>", "exec")
        except SyntaxError as exc:
            return [_error_output("SyntaxError", f"the test cell does not parse: {exc}")]
        ns = dict(self._trusted_base)
        wanted = sorted(n for n in _free_names(code) if n not in ns and not hasattr(builtins, n))
        out = io.StringIO()
        token = current_integrity.set((self._integrity, index))
        session_token = current_session.set(self._session)
        try:
            found = self._session.resolve(wanted) if wanted else {}
            for name, value in found.items():
                if isinstance(value, RemoteObject):
                    object.__setattr__(value, "origin", name)
                ns[name] = value
            salt = self._salt() if hidden else 0
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), salted_seeds(salt), \
                    language(self._language):
                exec(code, ns)
        except KernelGone:
            raise
        except GradingError as exc:
            return self._with_prints(out, _error_output("GradingError", str(exc)))
        except StudentCodeError as exc:
            return self._with_prints(out, _error_output("StudentCodeError", f"your code raised {exc}"))
        except AssertionError as exc:
            line = self._failing_line(exc, source) if not hidden else ""
            message = str(exc) or "a check failed"
            return self._with_prints(out, _error_output("AssertionError", f"{message}{line}"))
        except NameError as exc:
            why = f"{exc}: the cell that defines it raised or is missing"
            try:  # an import the sandbox refused says more than the missing name
                self._integrity.check(getattr(exc, "name", None) or "", index)
            except GradingError as integrity_error:
                why = str(integrity_error)
            return self._with_prints(out, _error_output("NameError", why))
        except Exception as exc:  # noqa: BLE001 - anything else the test met: the message, never our traceback
            return self._with_prints(out, _error_output(type(exc).__name__, str(exc)[:1000]))
        finally:
            current_integrity.reset(token)
            current_session.reset(session_token)
            self._session.revoke_loans()
        text = out.getvalue()
        return [_stream(text[:MAX_TRUSTED_OUTPUT])] if text else []

    def _salt(self) -> int:
        if not self.salt_file:
            return 0
        path = Path(self.salt_file)
        if not path.exists():
            import secrets

            path.write_text(str(secrets.randbits(62) + 1))
            path.chmod(0o600)
        return int(path.read_text().strip() or 0)

    @staticmethod
    def _failing_line(exc: BaseException, source: str) -> str:
        tb = exc.__traceback__
        lineno = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename.startswith("<test cell"):
                lineno = tb.tb_lineno
            tb = tb.tb_next
        lines = source.splitlines()
        if lineno and 0 < lineno <= len(lines):
            return f" (test line {lineno}: {lines[lineno - 1].strip()[:200]})"
        return ""

    @staticmethod
    def _with_prints(out: io.StringIO, error: NotebookNode) -> list:
        text = out.getvalue()
        return ([_stream(text[:MAX_TRUSTED_OUTPUT])] if text else []) + [error]

    # ------------------------------------------------------------------ failures

    def _fail_cell(self, cell):
        if is_test_cell(cell):
            cell.outputs = [_error_output("KernelDied", f"not graded: {self._dead}")]

    def _fail_rest(self, nb, start: int):
        """After the kernel died: every test cell without a verdict fails. A test that passed before
        (no output, as every pass) keeps its points."""
        if not self._dead:
            return
        graded = getattr(self, "_graded", set())
        for index, cell in enumerate(nb.cells):
            if index in graded or not is_test_cell(cell):
                continue
            if index >= start and not any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                self._fail_cell(cell)
            elif not cell.get("outputs"):  # never reached before the kernel died
                self._fail_cell(cell)

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output hook, capped: a flood costs the student its output, never the grader's memory."""
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
        used = self._output_used.get(cell_index, 0)
        self._output_used[cell_index] = used + size
        if used + size > MAX_CELL_OUTPUT:
            if used <= MAX_CELL_OUTPUT:
                outs.append(_stream(f"... output cut at {MAX_CELL_OUTPUT} characters ...\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

    @staticmethod
    def _cap_outputs(cell):
        total = 0
        kept = []
        for output in cell.get("outputs", []):
            size = len(str(output.get("text", ""))) + sum(len(str(v)) for v in output.get("data", {}).values())
            if total + size > MAX_CELL_OUTPUT:
                kept.append(_stream(f"... output cut at {MAX_CELL_OUTPUT} characters ...\n"))
                break
            total += size
            kept.append(output)
        cell.outputs = kept

    async def _async_handle_timeout(self, timeout, cell=None):
        """An interrupted cell must give the kernel back; one that ignores the interrupt ends the kernel."""
        reply = await super()._async_handle_timeout(timeout, cell)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                msg = await self.kc.get_iopub_msg(timeout=0.5)
            except Exception:  # noqa: BLE001 - queue empty
                continue
            if msg.get("msg_type") == "status" and msg.get("content", {}).get("execution_state") == "idle":
                return reply
        self._kill(f"a cell ran longer than {timeout} s and ignored the interrupt")
        return reply


def check_defined(obj: RemoteObject, name: str | None = None) -> None:
    """``assert_defined_in_notebook`` for a kernel object: decided from the submitted source."""
    state = current_integrity.get()
    origin = name or obj.origin
    if state is None or not origin:
        raise GradingError("this object cannot be traced to a definition in the notebook")
    integrity, index = state
    integrity.check(origin, before=index)


register_defined_check(RemoteObject, check_defined)  # what assert_defined_in_notebook asks of a kernel object
