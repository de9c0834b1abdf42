"""The trusted side of the grader's data-only channel to a student's kernel.

``KernelSession.request`` sends one operation to ``llmkit.probe`` in the kernel and waits for its
reply, answering the kernel's callbacks on objects the grader lent meanwhile. ``RemoteObject`` is
how a check sees an object that lives in the kernel (the student's class, an instance, a bound
method): calling it, reading an attribute or iterating it becomes a request, and whatever comes
back is data (``llmkit.wire``) or another handle. Comparison, hashing and truth never ask the kernel
whether it "equals" something: an object that claims to equal anything gets nowhere.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import json
import tempfile
import time
from pathlib import Path
from queue import Empty
from typing import Any

import torch

from llmkit import wire
from llmkit.probe import CALLBACK_PROMPT, MIME

from . import GradingError

# Modules whose objects the trusted side may re-import by name instead of proxying (they hold no
# answers). Everything else a notebook name points to stays in the kernel, behind a handle.
TRUSTED_MODULE_ROOTS = ("torch", "numpy", "math", "random", "re", "json", "string", "collections", "itertools",
                        "functools", "operator", "typing", "dataclasses", "pathlib", "os", "inspect", "copy",
                        "tiktoken", "matplotlib", "regex", "unicodedata", "textwrap")
TRUSTED_KIT_MODULES = ("llmkit", "llmkit.config", "llmkit.errors", "llmkit.exercise", "llmkit_instructor.grading",
                       "llmkit.kv_cache", "llmkit.gpt2_bpe", "llmkit.tokenizers", "llmkit.data", "llmkit.io")


class KernelGone(BaseException):
    """The kernel died, exited or stopped answering; what did not run earns nothing.

    A BaseException, so that no check's ``except Exception`` can mistake it for a wrong answer and go on.
    """


class StudentCodeError(Exception):
    """The student's code raised while the grader used it (checks report it with their own context)."""


def _student_exception(kind: str, message: str) -> Exception:
    """The kernel's exception as one of Python's own (so hasattr, list() and friends behave), never its object."""
    builtin = getattr(builtins, kind, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception) and not issubclass(builtin, Warning):
        try:
            exc = builtin(message)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs five arguments
            exc = StudentCodeError(f"{kind}: {message}")
    else:
        exc = StudentCodeError(f"{kind}: {message}" if message else kind)
    exc.from_student_code = True
    return exc


def trusted_module(name: str):
    """The trusted side's own copy of module ``name`` when it holds no answers, else None."""
    if not isinstance(name, str):
        return None
    if name.split(".")[0] in TRUSTED_MODULE_ROOTS or name in TRUSTED_KIT_MODULES:
        try:
            return importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a name the kernel made up
            return None
    return None


def wait_until_connected(client, timeout: float) -> None:
    """Return once the kernel answers on shell *and* this client's IOPub subscription is live.

    A freshly started SUB socket misses whatever the kernel publishes before the subscription reaches
    it; a short execution (its idle status included) can be lost that way, and waiting for it then
    hangs. So ask for kernel_info until its reply comes back together with an IOPub message (as
    jupyter_client's wait_for_ready does, without its heartbeat check, which needs a manager).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.kernel_info()
        try:
            reply = client.get_shell_msg(timeout=1)
        except Empty:
            continue
        if reply["msg_type"] != "kernel_info_reply":
            continue
        try:
            client.get_iopub_msg(timeout=0.2)
        except Empty:
            continue
        while time.monotonic() < deadline:  # drop the kernel_info requests' statuses: no one's output
            try:
                client.get_iopub_msg(timeout=0.05)
            except Empty:
                return
        return
    raise TimeoutError(f"the kernel did not answer within {timeout:.0f} s")


class KernelSession:
    """One sandboxed kernel, seen from the grader: requests out, data back."""

    def __init__(self, client, deadline: float, op_timeout: float = 60.0, max_reply_bytes: int = 256 * 2**20):
        self.client = client
        self.deadline = deadline  # the notebook's wall clock (time.monotonic())
        self.op_timeout = op_timeout
        self.max_reply_bytes = max_reply_bytes
        self.lent: dict[int, Any] = {}
        self._lent_ids: dict[int, int] = {}
        self._next_lent = 0  # ids are never reused: a handle kept from a revoked loan reaches nothing new
        self._proxies: dict[int, RemoteObject] = {}
        self.dead: str | None = None
        self._seq = 0
        self._answering = 0  # > 0 while a callback from the kernel is being answered

    # ------------------------------------------------------------------ codec hooks

    def _lend(self, obj) -> dict:
        if isinstance(obj, RemoteObject):
            if obj._session is not self:
                raise GradingError("an object from another kernel cannot be sent here")
            return {"$h": obj._handle}
        if isinstance(obj, type) or type(obj).__name__ == "module":
            raise GradingError(f"the grader never lends classes or modules ({obj!r})")
        key = id(obj)
        if key not in self._lent_ids or self.lent.get(self._lent_ids[key]) is not obj:
            self._next_lent += 1
            self._lent_ids[key] = self._next_lent
            self.lent[self._next_lent] = obj
        return {"$cb": self._lent_ids[key]}

    def revoke_loans(self) -> None:
        """End every loan: objects lent during one check answer no callback after it, so a student's
        later code cannot keep a grader object (a reference helper, say) and call it for a later exercise."""
        self.lent.clear()
        self._lent_ids.clear()

    def _from_tag(self, tag: dict):
        if "$cb" in tag:  # one of ours, coming back
            obj = self.lent.get(tag["$cb"])
            if obj is None:
                raise wire.WireError("unknown callback id")
            return obj
        handle = tag.get("$h")
        if type(handle) is not int:
            raise wire.WireError("malformed handle")
        if tag.get("kind") == "module":
            module = trusted_module(tag.get("name"))
            if module is not None:
                return module
        proxy = self._proxies.get(handle)
        if proxy is None:
            proxy = RemoteObject(self, handle, tag)
            self._proxies[handle] = proxy
        return proxy

    # ------------------------------------------------------------------ requests

    def request(self, op: str, _push_rng: bool = True, **args):
        """One operation in the kernel; with ``_push_rng`` the kernel first takes the grader's torch RNG state."""
        if self.dead:
            raise KernelGone(self.dead)
        if self._answering:  # the kernel waits in input() for our answer: a request now would never be served
            raise RuntimeError("the grader's object cannot use an object of the kernel while the kernel waits for it; "
                               "pass it data (numbers, strings, lists, tensors)")
        self._seq += 1
        request = {"id": self._seq, "op": op, "rng": wire.rng_state() if _push_rng else None,
                   "payload": wire.encode(args, self._lend)}
        device = str(torch.get_default_device())
        if device != "cpu":  # `with torch.device("meta"):` around a remote call holds in the kernel too
            request["device"] = device
        code = f"__llmkit_probe__.handle({json.dumps(json.dumps(request))})"
        msg_id = self.client.execute(code, silent=False, store_history=False, allow_stdin=True,
                                     stop_on_error=False)
        reply = self._await(msg_id, op)
        if reply.get("rng"):
            try:
                wire.set_rng_state(reply["rng"])
            except Exception:  # noqa: BLE001 - a malformed state is the student's problem, not ours
                pass
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise _student_exception(str(err.get("type", "Error"))[:80], str(err.get("message", ""))[:1000])
        return wire.decode(reply.get("value") or {}, self._from_tag, self.max_reply_bytes)

    def _await(self, msg_id: str, op: str) -> dict:
        started = time.monotonic()
        reply = None
        idle = False
        while not (idle and reply is not None):
            now = time.monotonic()
            if now > self.deadline:
                self._die("the notebook ran out of time")
            if now - started > self.op_timeout:
                self._die(f"the kernel did not answer within {self.op_timeout:.0f} s")
            self._serve_callbacks()
            try:
                msg = self.client.get_iopub_msg(timeout=0 if self._wait_for_kernel(0.05) else 0.05)
            except Empty:
                if not self.client.is_alive():
                    self._die("the kernel died")
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg.get("msg_type")
            content = msg.get("content", {})
            if kind == "display_data" and MIME in content.get("data", {}):
                candidate = content["data"][MIME]
                if isinstance(candidate, dict) and reply is None:
                    reply = candidate
            elif kind == "error" and reply is None:
                reply = {"ok": False, "error": {"type": str(content.get("ename")), "message": str(content.get("evalue"))}}
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
                if reply is None:
                    reply = {"ok": False, "error": {"type": "ProbeError",
                                                    "message": "the kernel gave no answer (was the probe removed?)"}}
        return reply

    def _wait_for_kernel(self, seconds: float) -> bool:
        """Sleep until the kernel publishes output or asks a callback, at most ``seconds`` (False: cannot poll).

        Waiting on both channels at once answers a callback as soon as it is asked, not after the
        output channel's timeout: a check that lends a stub model makes hundreds of them.
        """
        poller = getattr(self, "_poller", None)
        if poller is None:
            try:
                import zmq

                poller = zmq.Poller()
                poller.register(self.client.iopub_channel.socket, zmq.POLLIN)
                poller.register(self.client.stdin_channel.socket, zmq.POLLIN)
            except Exception:  # noqa: BLE001 - a client without zmq sockets: poll the output channel alone
                poller = False
            self._poller = poller
        if poller is False:
            return False
        poller.poll(int(seconds * 1000))
        return True

    def _serve_callbacks(self):
        try:
            msg = self.client.get_stdin_msg(timeout=0)
        except Empty:
            return
        if msg.get("msg_type") != "input_request":
            return
        prompt = str(msg.get("content", {}).get("prompt", ""))
        if not prompt.startswith(CALLBACK_PROMPT):
            self.client.input("")  # the student's own input(): nobody types during grading
            return
        self._answering += 1
        try:
            answer = self._answer_callback(prompt[len(CALLBACK_PROMPT):])
        finally:
            self._answering -= 1
        self.client.input(json.dumps(answer))

    def _answer_callback(self, text: str) -> dict:
        """Run one use of a lent object on data from the kernel; never anything of the kernel's."""
        grad_before = torch.is_grad_enabled()
        try:
            ask = json.loads(text)
            if type(ask.get("grad")) is bool:  # under the kernel's no_grad() the lent object runs without gradients too
                torch.set_grad_enabled(ask["grad"])
            obj = self.lent.get(int(ask["cb"]))
            if obj is None:
                raise LookupError("the grader lent this object for one check only; it is gone now")
            if ask.get("rng"):
                wire.set_rng_state(ask["rng"])
            args = wire.decode(ask["payload"], self._from_tag)
            op = ask.get("op")
            if op == "call":
                value = obj(*args.get("args", ()), **args.get("kwargs", {}))
            elif op == "getattr":
                name = args["name"]
                if not isinstance(name, str) or name.startswith("_"):
                    raise AttributeError("private attributes of the grader's objects are not lent")
                value = getattr(obj, name)
                if isinstance(value, type) or type(value).__name__ in ("module", "function", "builtin_function_or_method") \
                        and getattr(value, "__self__", None) is not obj:
                    raise AttributeError(f"{name} is not lent")
            elif op == "list":
                value = list(obj)
            elif op == "len":
                value = len(obj)
            elif op == "getitem":
                value = obj[args["key"]]
            elif op == "signature":  # inspect.signature() of a lent callable, as data
                from llmkit.probe import _signature

                value = _signature(obj)
            else:
                raise ValueError(f"unknown use {op!r}")
            return {"ok": True, "value": wire.encode(value, self._lend), "rng": wire.rng_state()}
        except Exception as exc:  # noqa: BLE001 - reported back to the kernel as a refusal
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500], "rng": wire.rng_state()}
        finally:
            torch.set_grad_enabled(grad_before)

    def _die(self, why: str):
        self.dead = why
        raise KernelGone(why)

    # ------------------------------------------------------------------ conveniences for checks

    def resolve(self, names: list[str]) -> dict:
        values = self.request("resolve", names=list(names))
        return {k: v for k, v in values.items() if not (isinstance(v, dict) and v == {"$missing": True})}

    def ship(self, obj: torch.nn.Module, *args, **kwargs) -> "RemoteObject":
        """A copy of a grader-side module, built in the kernel from its (kit or torch) class and weights."""
        cls = type(obj)
        return self.request("ship", module=cls.__module__, qualname=cls.__qualname__, args=args, kwargs=kwargs,
                            state=obj.state_dict())

    def build(self, module: str, qualname: str, *args, **kwargs) -> "RemoteObject":
        """An object made in the kernel by a kit or torch class or factory (no weights), e.g. the kernel's own
        GPT-2 tokenizer, for student code that needs the real object rather than a callback."""
        return self.request("ship", module=module, qualname=qualname, args=args, kwargs=kwargs, state=None)

    @contextlib.contextmanager
    def bound(self, **values):
        """Within the block the notebook's names refer to ``values`` in the kernel, then to what they held before.

        Typically a reference helper lent as a callback (never sent as code), so that a student's later
        exercise is graded with the reference's earlier part and one mistake costs points once.
        """
        previous = self.request("assign", names=values)
        try:
            yield
        finally:
            if not self.dead:
                self.request("assign", names=previous)


def _op(proxy: "RemoteObject", op: str, **args):
    return object.__getattribute__(proxy, "_session").request(op, h=proxy, **args)


class RemoteObject:
    """An object that lives in the student's kernel. Using it asks the kernel; the answers are data."""

    __slots__ = ("_session", "_handle", "_meta", "origin", "__weakref__")

    def __init__(self, session: KernelSession, handle: int, meta: dict):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_meta", meta)
        object.__setattr__(self, "origin", None)  # the notebook name it was found under, if any

    # what it is (reported by the kernel: informative, never trusted for a verdict)
    @property
    def kind(self) -> str:
        return str(object.__getattribute__(self, "_meta").get("kind"))

    @property
    def __name__(self):  # noqa: A003 - mirrors a class's or function's name for messages
        name = object.__getattribute__(self, "_meta").get("name")
        return name if isinstance(name, str) else "object"

    @property
    def __class__(self):
        """The most specific torch class the kernel says it derives from, so isinstance(x, nn.Linear) reads naturally."""
        meta = object.__getattribute__(self, "_meta")
        if meta.get("kind") == "object":
            for path in meta.get("mro") or []:
                module, _, qual = str(path).rpartition(".")
                if module.split(".")[0] == "torch" and "." not in qual:
                    cls = getattr(trusted_module(module), qual, None)
                    if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
                        return cls
        return RemoteObject

    def __call__(self, *args, **kwargs):
        return _op(self, "call", args=args, kwargs=kwargs)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _op(self, "getattr", name=name)

    def __setattr__(self, name, value):
        _op(self, "setattr", name=name, value=value)

    def __getitem__(self, key):
        return _op(self, "getitem", key=key)

    def __setitem__(self, key, value):
        _op(self, "setitem", key=key, value=value)

    def __len__(self):
        n = _op(self, "len")
        if type(n) is not int or n < 0:
            raise StudentCodeError("len() of the object did not give a non-negative int")
        return n

    def __bool__(self):
        value = _op(self, "bool")
        if type(value) is not bool:
            raise StudentCodeError("bool() of the object did not give True or False")
        return value

    def __contains__(self, item):
        return _op(self, "contains", item=item) is True

    def __iter__(self):
        iterator = _op(self, "iter")
        while True:
            batch = object.__getattribute__(iterator, "_session").request("next_batch", h=iterator, count=64)
            if not isinstance(batch, dict) or not isinstance(batch.get("items"), list):
                raise StudentCodeError("iteration gave malformed data")
            yield from batch["items"]
            if batch.get("done") is not False:
                return

    def __repr__(self):
        try:
            text = _op(self, "repr")
        except GradingError:
            text = None
        return text if isinstance(text, str) else f"<{self.kind} in the student's kernel>"

    def __instancecheck__(self, instance):
        """isinstance(x, StudentClass): asked of the kernel, about the kernel's own objects only."""
        if not isinstance(instance, RemoteObject):
            return False
        return _op(self, "isinstance", obj=instance, cls=self) is True

    def __subclasscheck__(self, sub):
        return isinstance(sub, RemoteObject) and _op(self, "issubclass", sub=sub, cls=self) is True

    @property
    def __signature__(self):
        """inspect.signature() of a kernel function or class, rebuilt here from data."""
        import inspect

        params = []
        for entry in _op(self, "signature"):
            name, kind, has_default, default = entry
            if isinstance(default, dict) and set(default) == {"repr"}:
                default = _Repr(default["repr"])
            params.append(inspect.Parameter(str(name), inspect._ParameterKind(int(kind)),
                                            default=default if has_default else inspect.Parameter.empty))
        return inspect.Signature(params)

    def call_with_grad(self, *args, wrt: tuple = (0,), grad_output=None, **kwargs):
        """Call in the kernel, backpropagate there; return (output, [gradient of each argument in wrt])."""
        return _op(self, "call_grad", args=args, kwargs=kwargs, wrt=list(wrt), grad_output=grad_output)

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return hash((id(object.__getattribute__(self, "_session")), object.__getattribute__(self, "_handle")))

    # the usual nn.Module calls a check makes, kept explicit so they read naturally
    def eval(self):
        return self._method("eval")

    def train(self, mode: bool = True):
        return self._method("train", mode)

    def _method(self, name, *args, **kwargs):
        method = _op(self, "getattr", name=name)
        return method(*args, **kwargs) if isinstance(method, RemoteObject) else method


class _Repr:
    """A default value that is not data, shown by its repr (signature checks compare names and kinds)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return self.text


def getitems(obj, keys) -> list:
    """``[obj[k] for k in keys]``; for a kernel object in one request (a dataset's items without a round trip each)."""
    keys = list(keys)
    if type(obj) is RemoteObject:
        values = _op(obj, "getitems", keys=keys)
        if type(values) is not list or len(values) != len(keys):
            raise StudentCodeError("indexing gave malformed data")
        return values
    return [obj[key] for key in keys]


def is_remote(obj) -> bool:
    return type(obj) is RemoteObject


def file_for(obj, name: str, text: str) -> str:
    """A path where ``obj``'s code can read ``text``: written inside the student's kernel when ``obj`` lives
    there (the grader's own files are out of the sandbox's view), else in a fresh local folder."""
    if type(obj) is RemoteObject:
        path = _op(obj, "write_file", name=name, text=text)
        if type(path) is not str:
            raise StudentCodeError("the kernel gave no path for a data file")
        return path
    path = Path(tempfile.mkdtemp(prefix="llmkit-check-")) / Path(name).name
    path.write_text(text, encoding="utf-8")
    return str(path)
