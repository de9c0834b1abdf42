"""The small probe that runs inside a student's sandboxed kernel during grading.

It knows no check, input, tolerance or answer. The trusted grader sends it one request per
execution (``handle(request_json)``); it performs one operation on the objects the notebook defined
(look a name up, read an attribute, call, index, iterate, build an object from a kit module) and
publishes the result as data (``llmkit.wire``: JSON + safetensors, never pickle). Objects that are
not data stay here and travel as numbered handles. Objects the grader lends (a toy tokenizer, a stub
model) arrive as callbacks: using one asks the grader over the kernel's stdin channel.

Whatever the student's code does to this module can only change the data sent back, and the grader
compares that data with what it computed itself.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import tempfile
import traceback
from pathlib import Path

import torch

from llmkit import wire

MIME = "application/vnd.llmkit.probe+json"
CALLBACK_PROMPT = "\x00llmkit-callback:"
MAX_REPR = 2000

_objects: dict[int, object] = {}
_ids: dict[int, int] = {}


def _handle_of(obj) -> dict:
    if isinstance(obj, TrustedCallback):
        return {"$cb": obj._llmkit_cb}
    key = id(obj)
    if key not in _ids or _objects.get(_ids[key]) is not obj:
        _ids[key] = len(_objects) + 1
        _objects[_ids[key]] = obj
    kind = ("module" if type(obj).__name__ == "module" else "class" if isinstance(obj, type)
            else "function" if callable(obj) and hasattr(obj, "__code__") else "object")
    cls = obj if isinstance(obj, type) else type(obj)
    try:
        mro = [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__][:12]
    except Exception:  # a class can lie about anything; metadata is only informative
        mro = []
    name = getattr(obj, "__name__", None) if kind in ("module", "class", "function") else None
    return {"$h": _ids[key], "kind": kind, "mro": mro, "name": name if isinstance(name, str) else None}


def _from_handle(tag: dict):
    if "$cb" in tag:
        return TrustedCallback(int(tag["$cb"]))
    obj_id = tag.get("$h")
    if obj_id not in _objects:
        raise wire.WireError(f"unknown handle {obj_id!r}")
    return _objects[obj_id]


def _namespace() -> dict:
    main = sys.modules.get("__main__")
    return vars(main) if main is not None else {}


def _get(obj, name):
    return getattr(obj, name)


def _next_batch(iterator, count):
    items = []
    for _ in range(count):
        try:
            items.append(next(iterator))
        except StopIteration:
            return {"items": items, "done": True}
    return {"items": items, "done": False}


def _ship(module, qualname, args, kwargs, state):
    """Build an object of a kit or torch class here, e.g. a stub model the student's code must train."""
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    made = obj(*args, **kwargs)
    if state is not None:
        made.load_state_dict(state)
    return made


def _signature(fn):
    """Parameters as data: (name, kind, has_default, default); defaults that are not data become their repr."""
    import inspect

    params = []
    for p in inspect.signature(fn).parameters.values():
        default = p.default
        if default is not inspect.Parameter.empty and not isinstance(default, (type(None), bool, int, float, str)):
            default = {"repr": repr(default)[:200]}
        params.append([p.name, int(p.kind), p.default is not inspect.Parameter.empty,
                       None if p.default is inspect.Parameter.empty else default])
    return params


def _call_grad(fn, args, kwargs, wrt, grad_output):
    """Call ``fn``, backpropagate from its output, and return (output, gradients of the chosen arguments)."""
    args = list(args)
    for i in wrt:
        args[i] = args[i].detach().clone().requires_grad_(True)
    out = fn(*args, **kwargs)
    torch.autograd.backward(out, grad_output if grad_output is not None else torch.ones_like(out))
    return out, [args[i].grad for i in wrt]


_MISSING = {"$missing": True}


def _assign(names: dict) -> dict:
    """Bind notebook names to values from the grader (data, handles, lent callbacks); return the old values.

    A value equal to ``{"$missing": True}`` unbinds the name, so the grader can restore a namespace exactly.
    """
    ns = _namespace()
    previous = {}
    for name, value in names.items():
        if not isinstance(name, str):
            raise TypeError("names must be strings")
        previous[name] = ns.get(name, _MISSING)
        if type(value) is dict and value == _MISSING:
            ns.pop(name, None)
        else:
            ns[name] = value
    return previous


class _ForwardLog:
    """(training?, gradients on?) at every forward call of a module, noted by a hook until ``remove()``."""

    def __init__(self, module):
        self.calls = []
        self._hook = module.register_forward_pre_hook(self._note)

    def _note(self, module, args):
        self.calls.append((bool(module.training), torch.is_grad_enabled()))

    def remove(self):
        self._hook.remove()


def _run(op: str, a: dict):
    if op == "resolve":
        ns = _namespace()
        return {name: ns[name] if name in ns else _MISSING for name in a["names"]}
    target = a.get("h")
    if op == "getattr":
        return _get(target, a["name"])
    if op == "setattr":
        setattr(target, a["name"], a["value"])
        return None
    if op == "call":
        return target(*a.get("args", ()), **a.get("kwargs", {}))
    if op == "getitem":
        return target[a["key"]]
    if op == "setitem":
        target[a["key"]] = a["value"]
        return None
    if op == "getitems":  # several indexings in one request, e.g. every item of a dataset
        return [target[key] for key in a["keys"]]
    if op == "len":
        return len(target)
    if op == "bool":
        return bool(target)
    if op == "contains":
        return a["item"] in target
    if op == "repr":
        text = repr(target)
        return text[:MAX_REPR]
    if op == "iter":
        return _Iterator(iter(target))
    if op == "next_batch":
        return _next_batch(target.iterator, int(a["count"]))
    if op == "isinstance":
        return isinstance(a["obj"], a["cls"]) if isinstance(a["cls"], (type, tuple)) else False
    if op == "issubclass":
        return isinstance(a["sub"], type) and isinstance(a["cls"], type) and issubclass(a["sub"], a["cls"])
    if op == "signature":
        return _signature(target)
    if op == "call_grad":
        return _call_grad(target, a.get("args", ()), a.get("kwargs", {}), a["wrt"], a.get("grad_output"))
    if op == "assign":
        return _assign(a["names"])
    if op == "record_forward":  # how the student's code runs a module: train/eval mode, gradients on/off
        return _ForwardLog(target)
    if op == "ship":
        return _ship(a["module"], a["qualname"], a.get("args", ()), a.get("kwargs", {}), a.get("state"))
    if op == "write_file":  # a data file a check hands the student's code by path (a CSV split, a JSON file)
        return _write_file(a["name"], a["text"])
    raise ValueError(f"unknown probe operation {op!r}")


def _write_file(name: str, text: str) -> str:
    """Write ``text`` to a fresh folder of this kernel's scratch space; the path the student's code will read."""
    path = Path(tempfile.mkdtemp(prefix="llmkit-check-")) / Path(str(name)).name
    path.write_text(str(text), encoding="utf-8")
    return str(path)


class _Iterator:
    def __init__(self, iterator):
        self.iterator = iterator


def handle(request_text: str) -> None:
    """Serve one request from the grader and publish the reply as display data."""
    from IPython.display import publish_display_data

    request = json.loads(request_text)
    reply = {"id": request.get("id"), "ok": True}
    try:
        if request.get("rng"):
            wire.set_rng_state(request["rng"])
        args = wire.decode(request["payload"], _from_handle)
        device = request.get("device")
        with torch.device(device[:40]) if isinstance(device, str) else contextlib.nullcontext():
            value = _run(request["op"], args)
        reply["value"] = wire.encode(value, _handle_of)
    except BaseException as exc:  # noqa: BLE001 - the student's code may raise anything, even SystemExit
        reply["ok"] = False
        frames = traceback.extract_tb(exc.__traceback__)
        where = next((f"line {f.lineno} of {f.name}" for f in reversed(frames) if f.filename.startswith("<")), "")
        reply["error"] = {"type": type(exc).__name__, "message": str(exc)[:MAX_REPR], "where": where}
    reply["rng"] = wire.rng_state()
    publish_display_data({MIME: reply})


class TrustedCallback:
    """An object the grader lent: every use is one question to the grader, answered with data."""

    def __init__(self, cb_id: int, path: tuple = ()):
        object.__setattr__(self, "_llmkit_cb", cb_id)
        object.__setattr__(self, "_llmkit_path", path)

    def _ask(self, op, **kw):
        request = {"cb": self._llmkit_cb, "op": op, "path": list(self._llmkit_path), "rng": wire.rng_state(),
                   "grad": torch.is_grad_enabled(), "payload": wire.encode(kw, _handle_of)}
        answer = json.loads(input(CALLBACK_PROMPT + json.dumps(request)))
        if answer.get("rng"):
            wire.set_rng_state(answer["rng"])
        if not answer.get("ok"):
            raise RuntimeError(answer.get("error", "the grader's object refused this use"))
        return wire.decode(answer["value"], _from_handle)

    def __call__(self, *args, **kwargs):
        return self._ask("call", args=args, kwargs=kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __iter__(self):
        return iter(self._ask("list"))

    def __len__(self):
        return self._ask("len")

    def __getitem__(self, key):
        return self._ask("getitem", key=key)

    def __repr__(self):
        return "<object lent by the grader>"

    @property
    def __signature__(self):
        """inspect.signature() of a lent callable (e.g. "kv_cache" in a lent model's forward), from the grader."""
        import inspect

        try:
            entries = self._ask("signature")
        except RuntimeError:
            return None  # not callable there: inspect falls back to (*args, **kwargs)
        params = []
        for name, kind, has_default, default in entries:
            if isinstance(default, dict) and set(default) == {"repr"}:
                default = _Shown(str(default["repr"]))
            params.append(inspect.Parameter(str(name), inspect._ParameterKind(int(kind)),
                                            default=default if has_default else inspect.Parameter.empty))
        return inspect.Signature(params)


class _Shown:
    """A default value that is not data, shown by its repr."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return self.text


def ready() -> str:
    """Called once after the kernel starts: proves the probe imported and torch works."""
    return json.dumps({"torch": torch.__version__})
