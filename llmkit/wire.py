"""The data-only codec between the trusted grader and a student's kernel.

Values cross as JSON; tensors cross as one safetensors blob (base64) that the JSON points into.
Nothing is ever pickled and no code is ever sent from the kernel: decoding builds only plain Python
values (None, bool, int, float, str, bytes, list, tuple, dict, set, slice), dtypes, devices and
plain CPU tensors. Objects that are not data travel as numbered handles, which the receiving side
turns into proxies of its own choosing (``llmkit_instructor.grading.remote`` on the trusted side,
``llmkit.probe`` in the kernel).

Both sides import this module; neither trusts what the other sends beyond these shapes.
"""

from __future__ import annotations

import base64
import collections
import math
from typing import Any, Callable

import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

MAX_DEPTH = 40  # deeper nesting than any honest value; stops recursion bombs
MAX_ITEMS = 200_000  # values per message, containers included
MAX_STR = 4_000_000  # characters in one string


class WireError(ValueError):
    """A message that is not well-formed data (too deep, too big, an unknown tag)."""


class _Budget:
    def __init__(self):
        self.items = 0

    def spend(self):
        self.items += 1
        if self.items > MAX_ITEMS:
            raise WireError(f"message holds more than {MAX_ITEMS} values")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dtype(name: str) -> torch.dtype:
    value = getattr(torch, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(value, torch.dtype):
        raise WireError(f"unknown dtype {name!r}")
    return value


def encode(value: Any, handle_of: Callable[[Any], dict]) -> dict:
    """``value`` as ``{"json": ..., "tensors": base64 or ""}``; ``handle_of(obj)`` encodes non-data objects."""
    tensors: dict[str, torch.Tensor] = {}
    budget = _Budget()

    def enc(v, depth):
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        budget.spend()
        if v is None or isinstance(v, (bool, str)) and type(v) in (bool, str):
            return v
        if type(v) is int:
            return v if abs(v) < 2**53 else {"$int": str(v)}
        if type(v) is float:
            return v if math.isfinite(v) else {"$float": repr(v)}
        if isinstance(v, torch.Tensor) and type(v) in (torch.Tensor, torch.nn.Parameter):
            if v.device.type == "meta" and not v.is_sparse:  # shapes only (a model built on "meta"): no data
                return {"$meta": [enc(n, depth + 1) for n in v.shape], "dtype": _dtype_name(v.dtype),
                        "rg": bool(v.requires_grad)}
            if v.is_sparse or v.is_complex():
                return handle_of(v)
            key = str(len(tensors))
            tensors[key] = v.detach().to("cpu").contiguous().clone()
            return {"$T": key, "rg": bool(v.requires_grad), "p": type(v) is torch.nn.Parameter}
        if type(v) is torch.Size or type(v) is tuple:
            return {"$t": [enc(x, depth + 1) for x in v]}
        if type(v) is list:
            return [enc(x, depth + 1) for x in v]
        if type(v) is dict or type(v) is collections.OrderedDict:  # a state_dict() is data too
            return {"$d": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]}
        if type(v) in (set, frozenset):
            return {"$s": [enc(x, depth + 1) for x in v]}
        if type(v) is bytes:
            return {"$b": base64.b64encode(v).decode()}
        if type(v) is slice:
            return {"$slice": [enc(v.start, depth + 1), enc(v.stop, depth + 1), enc(v.step, depth + 1)]}
        if v is Ellipsis:
            return {"$ellipsis": True}
        if isinstance(v, torch.dtype):
            return {"$dtype": _dtype_name(v)}
        if isinstance(v, torch.device):
            return {"$device": str(v)}
        if type(v).__module__ == "numpy" and type(v).__name__ == "ndarray" and v.dtype.kind in "biuf":
            key = str(len(tensors))
            tensors[key] = torch.from_numpy(v.copy())
            return {"$T": key, "np": True}
        if type(v).__module__ == "numpy" and hasattr(v, "item") and getattr(v, "shape", None) == ():
            return enc(v.item(), depth)  # numpy scalars become Python numbers
        return handle_of(v)

    body = enc(value, 0)
    blob = base64.b64encode(_st_save(tensors)).decode() if tensors else ""
    return {"json": body, "tensors": blob}


def decode(message: dict, from_handle: Callable[[dict], Any], max_bytes: int = 512 * 2**20) -> Any:
    """Rebuild a value from ``encode``'s output; ``from_handle(tag)`` turns a handle tag into an object."""
    if not isinstance(message, dict):
        raise WireError("a message must be an object")
    blob = message.get("tensors") or ""
    if not isinstance(blob, str) or len(blob) > max_bytes * 4 // 3 + 4:
        raise WireError("tensor blob too large or malformed")
    tensors = _st_load(base64.b64decode(blob, validate=True)) if blob else {}
    budget = _Budget()

    def dec(v, depth):
        if depth > MAX_DEPTH:
            raise WireError("value nested too deeply")
        budget.spend()
        if v is None or type(v) in (bool, int):
            return v
        if type(v) is float:
            return v
        if type(v) is str:
            if len(v) > MAX_STR:
                raise WireError("string too long")
            return v
        if type(v) is list:
            return [dec(x, depth + 1) for x in v]
        if type(v) is not dict or len(v) == 0:
            raise WireError("malformed value")
        if "$T" in v:
            t = tensors.get(v["$T"]) if isinstance(v["$T"], str) else None
            if t is None:
                raise WireError("a tensor reference points nowhere")
            t = t.clone()
            if v.get("np"):
                return t.numpy()
            if v.get("rg") is True and (t.is_floating_point() or t.is_complex()):
                t.requires_grad_(True)
            return t
        if "$meta" in v:
            shape = [dec(x, depth + 1) for x in _list(v["$meta"])]
            if len(shape) > 16 or not all(type(n) is int and 0 <= n < 2**40 for n in shape):
                raise WireError("malformed meta tensor")
            t = torch.empty(shape, dtype=_dtype(v.get("dtype")), device="meta")
            return t.requires_grad_(True) if v.get("rg") is True and t.is_floating_point() else t
        if "$t" in v:
            return tuple(dec(x, depth + 1) for x in _list(v["$t"]))
        if "$d" in v:
            out = {}
            for pair in _list(v["$d"]):
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("malformed dict entry")
                key = dec(pair[0], depth + 1)
                try:
                    hash(key)
                except TypeError as exc:
                    raise WireError("unhashable dict key") from exc
                out[key] = dec(pair[1], depth + 1)
            return out
        if "$s" in v:
            try:
                return set(dec(x, depth + 1) for x in _list(v["$s"]))
            except TypeError as exc:
                raise WireError("unhashable set item") from exc
        if "$int" in v:
            return int(_str(v["$int"])[:400])
        if "$float" in v:
            return float(_str(v["$float"])[:10])
        if "$b" in v:
            return base64.b64decode(_str(v["$b"]), validate=True)
        if "$slice" in v:
            parts = [dec(x, depth + 1) for x in _list(v["$slice"])]
            if len(parts) != 3 or not all(p is None or type(p) is int for p in parts):
                raise WireError("malformed slice")
            return slice(*parts)
        if "$ellipsis" in v:
            return Ellipsis
        if "$dtype" in v:
            return _dtype(v["$dtype"])
        if "$device" in v:
            try:
                return torch.device(_str(v["$device"])[:40])
            except RuntimeError as exc:
                raise WireError("malformed device") from exc
        if "$h" in v or "$cb" in v:
            return from_handle(v)
        raise WireError(f"unknown tag {sorted(v)[:3]}")

    return dec(message.get("json"), 0)


def _list(v) -> list:
    if type(v) is not list:
        raise WireError("expected a list")
    return v


def _str(v) -> str:
    if type(v) is not str:
        raise WireError("expected a string")
    return v


def rng_state() -> str:
    return base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()


def set_rng_state(state: str) -> None:
    raw = base64.b64decode(state, validate=True)
    torch.set_rng_state(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
