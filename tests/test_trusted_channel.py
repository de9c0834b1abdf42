"""The grader's data-only channel and the sandbox, tested directly (no nbgrader).

``wire`` must rebuild only data and refuse anything else; a real sandboxed kernel must see no
network, no answers and no writable system, and the grader's ``RemoteObject`` must behave like the
kernel's object for calls, attributes, iteration, signatures, isinstance and gradients, while
comparisons never ask the kernel.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from llmkit import wire

# --------------------------------------------------------------------------- the codec


def _roundtrip(value):
    handles = []
    message = wire.encode(value, lambda obj: handles.append(obj) or {"$h": len(handles)})
    return wire.decode(message, lambda tag: ("handle", tag["$h"])), handles


def test_data_crosses_by_value():
    value = {"t": torch.arange(6.0).reshape(2, 3), "xs": [1, 2.5, None, True, "s"], "tup": (1, (2,)),
             "set": {3, 4}, "slice": slice(1, None, 2), "dtype": torch.bfloat16, "big": 2**70, "nan": float("nan")}
    back, handles = _roundtrip(value)
    assert torch.equal(back["t"], value["t"]) and back["t"] is not value["t"]
    assert back["xs"] == value["xs"] and back["tup"] == (1, (2,)) and back["set"] == {3, 4}
    assert back["slice"] == slice(1, None, 2) and back["dtype"] is torch.bfloat16 and back["big"] == 2**70
    assert back["nan"] != back["nan"] and handles == []


def test_objects_that_are_not_data_travel_as_handles():
    class Anything:
        def __eq__(self, other):
            return True

    back, handles = _roundtrip([Anything(), torch.nn.Linear(2, 2)])
    assert back == [("handle", 1), ("handle", 2)] and len(handles) == 2


def test_a_tensor_subclass_is_never_trusted_as_data():
    class Sneaky(torch.Tensor):
        pass

    value = torch.ones(2).as_subclass(Sneaky)
    back, handles = _roundtrip(value)
    assert back == ("handle", 1) and handles[0] is value


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("message", [
    {"json": {"$pickle": "gASV"}, "tensors": ""},
    {"json": {"$T": "0"}, "tensors": ""},
    {"json": {"$slice": ["a", 1, 2]}, "tensors": ""},
    {"json": {"$dtype": "__class__"}, "tensors": ""},
    {"json": _nested(60), "tensors": ""},
    {"json": {"$d": [[[1, 2], 3]]}, "tensors": ""},
    "not a message",
])
def test_malformed_messages_are_refused(message):
    with pytest.raises((wire.WireError, ValueError)):
        wire.decode(message, lambda tag: tag)


# --------------------------------------------------------------------------- a real sandboxed kernel


def _need_bwrap():
    if shutil.which("bwrap") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("bubblewrap is not installed (apt-get install -y bubblewrap)")
        pytest.skip("bubblewrap is not installed")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    _need_bwrap()
    import zmq
    from jupyter_client import BlockingKernelClient
    from jupyter_core.utils import run_sync

    from llmkit_instructor.grading import remote, sandbox

    submission = tmp_path_factory.mktemp("submission")
    (submission / "notes.txt").write_text("the student's own file")

    scratch = sandbox.new_scratch()
    uid = sandbox.fresh_uid()
    work = sandbox.prepare_workdir(submission, scratch, uid)
    spec = sandbox.SandboxSpec(workdir=work, hidden_modules={"llmkit_solutions.attention"}, uid=uid)
    km = sandbox.SandboxedKernelManager(spec, scratch)
    run_sync(km.start_kernel)()
    context = zmq.Context()  # a context of its own: nothing shared with earlier tests in this process
    client = BlockingKernelClient(context=context)
    client.load_connection_info(km.get_connection_info())
    client.start_channels()
    # Shell answers and IOPub is subscribed: an execution's idle status published before the
    # subscription is live would be lost, and waiting for it would hang (it did, now and then).
    remote.wait_until_connected(client, timeout=180)
    setup = """
import llmkit.probe as __llmkit_probe__
import torch
from torch import nn

class Doubler(nn.Module):
    def __init__(self, width, bias=True):
        super().__init__()
        self.lin = nn.Linear(width, width, bias=bias)
    def forward(self, x, scale=2.0):
        return scale * self.lin(x)

def squares(n):
    for i in range(n):
        yield i * i

def use_lent(tok, text):
    return tok.encode(text) + [len(tok.vocab)]

def peek(lent, path):
    obj = lent
    for name in path:
        obj = obj._ask("getattr", name=name)
    return obj

def boom():
    raise KeyError("no such key")

class Liar:
    def __eq__(self, other): return True
    def __bool__(self): return True

liar = Liar()
"""
    reply = client.execute_interactive(setup, timeout=120)
    assert reply["content"]["status"] == "ok"
    session = remote.KernelSession(client, deadline=time.monotonic() + 600)
    yield session, client
    client.stop_channels()
    context.destroy(linger=0)
    run_sync(km.shutdown_kernel)(now=True)
    shutil.rmtree(scratch, ignore_errors=True)


def _run(client, code):
    outputs = []
    client.execute_interactive(code, timeout=60, output_hook=lambda m: outputs.append(m))
    return "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")


def test_the_sandbox_sees_no_network_no_answers_and_no_writable_system(kernel):
    _, client = kernel
    text = _run(client, """
import os, socket, importlib
print("uid", os.getuid())
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1); print("NETWORK")
except OSError as exc: print("no network")
for name in ("llmkit_solutions.attention", "llmkit_instructor", "llmkit_instructor.grading",
             "llmkit_instructor.grading.attention", "llmkit.grading"):
    try: importlib.import_module(name); print("IMPORTED", name)
    except ImportError: print("hidden", name)
for path in ("/usr/evil", "/work/evil", os.path.expanduser("~/evil")):
    try: open(path, "w"); print("WROTE", path)
    except OSError: print("read-only", path)
open("mine.txt", "w").write("ok"); print("own folder writable", open("notes.txt").read())
print("processes", len([p for p in os.listdir("/proc") if p.isdigit()]))
""")
    assert "no network" in text and "NETWORK" not in text and "IMPORTED" not in text and "WROTE" not in text
    assert "uid 0" not in text and "own folder writable the student's own file" in text
    assert int(text.split("processes")[-1].split()[0]) <= 4  # the sandbox's own pid namespace


def test_remote_objects_behave_like_the_kernels(kernel):
    session, _ = kernel
    from llmkit_instructor.grading.remote import RemoteObject

    found = session.resolve(["Doubler", "squares", "torch", "missing_name"])
    assert "missing_name" not in found and found["torch"] is torch  # modules: the grader's own copy
    Doubler = found["Doubler"]
    assert isinstance(Doubler, RemoteObject)
    torch.manual_seed(7)
    model = Doubler(3)
    torch.manual_seed(7)
    local = torch.nn.Linear(3, 3)  # same seed, same draws: the RNG state follows each request
    assert torch.equal(model.lin.weight, local.weight)
    x = torch.randn(2, 3)
    assert torch.allclose(model(x, scale=3.0), 3.0 * local(x), atol=1e-6)
    assert isinstance(model.lin, torch.nn.Linear) and isinstance(model, Doubler)
    assert [name for name, _ in model.named_parameters()] == ["lin.weight", "lin.bias"]
    assert list(found["squares"](5)) == [0, 1, 4, 9, 16]
    import inspect

    assert list(inspect.signature(Doubler).parameters) == ["width", "bias"]
    out, (grad,) = model.call_with_grad(x, wrt=(0,))
    assert torch.allclose(grad, (2.0 * local.weight.sum(0)).expand(2, 3), atol=1e-5)


def test_kernel_exceptions_arrive_as_plain_python_exceptions(kernel):
    session, _ = kernel
    boom = session.resolve(["boom"])["boom"]
    with pytest.raises(KeyError, match="no such key"):
        boom()
    assert not hasattr(session.resolve(["Doubler"])["Doubler"], "no_such_attribute")


def test_a_kernel_object_never_equals_anything(kernel):
    session, _ = kernel
    liar = session.resolve(["liar"])["liar"]
    assert liar != 1 and liar != liar.__class__ and not (liar == "anything")


def test_lent_objects_answer_only_with_data(kernel):
    session, _ = kernel

    class Tokenizer:
        vocab = {"a": 0, "b": 1}
        _secret = "never lent"

        def encode(self, text):
            return [self.vocab[c] for c in text]

    use_lent = session.resolve(["use_lent"])["use_lent"]
    assert use_lent(Tokenizer(), "abba") == [0, 1, 1, 0, 2]
    # The kernel asking the grader for anything beyond public data and methods is refused.
    peek = session.resolve(["peek"])["peek"]
    tok = Tokenizer()
    tok.helper_module = os  # a public attribute pointing at a module: still not lent
    for path in (["_secret"], ["__class__"], ["__dict__"], ["encode", "__globals__"], ["helper_module"]):
        with pytest.raises(RuntimeError, match="not lent|refused|private"):
            peek(tok, path)
