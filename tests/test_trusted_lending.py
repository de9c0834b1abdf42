"""The trusted channel's conveniences for checks that lend objects or build them in the kernel.

A lent object runs under the kernel's grad mode and shows its signature there; a remote call made
under ``with torch.device("meta")`` builds on meta in the kernel too, and meta tensors cross as
shapes; ``record_forward`` notes how student code runs a kernel module.
"""

import inspect

import torch

from llmkit import wire
from tests.test_trusted_channel import _run, kernel  # noqa: F401 - the sandboxed kernel fixture

KERNEL_CODE = """
import inspect
import torch

def call_without_grad(f, x):
    with torch.no_grad():
        return f(x)

def parameter_names(f):
    return list(inspect.signature(f).parameters)

def evaluate_then_train(model, x):
    model.eval()
    with torch.no_grad():
        model(x)
    model.train()
    return model(x)
"""


def test_meta_tensors_cross_as_shapes_only():
    value = torch.empty(3, 4, device="meta", requires_grad=True)
    message = wire.encode({"w": value, "ids": torch.empty(5, dtype=torch.long, device="meta")}, lambda obj: 1 / 0)
    assert message["tensors"] == ""  # no data at all
    back = wire.decode(message, lambda tag: 1 / 0)
    assert back["w"].device.type == "meta" and back["w"].shape == (3, 4) and back["w"].requires_grad
    assert back["ids"].dtype == torch.long and back["ids"].shape == (5,)


def test_a_remote_call_under_a_meta_device_builds_on_meta_in_the_kernel(kernel):  # noqa: F811
    session, _ = kernel
    Doubler = session.resolve(["Doubler"])["Doubler"]
    with torch.device("meta"):
        model = Doubler(1000)
    params = list(model.parameters())
    assert [p.device.type for p in params] == ["meta", "meta"]
    assert sum(p.numel() for p in params) == 1000 * 1000 + 1000


def test_a_lent_object_runs_under_the_kernels_grad_mode_and_shows_its_signature(kernel):  # noqa: F811
    session, client = kernel
    _run(client, KERNEL_CODE)
    found = session.resolve(["call_without_grad", "parameter_names"])
    modes = []

    def lent(x, kv_cache=None):
        modes.append(torch.is_grad_enabled())
        return x

    found["call_without_grad"](lent, torch.ones(2))
    assert modes == [False]
    assert found["parameter_names"](lent) == ["x", "kv_cache"]
    assert torch.is_grad_enabled()  # the grader's own mode is back


def test_record_forward_notes_mode_and_gradients_of_each_call(kernel):  # noqa: F811
    session, client = kernel
    _run(client, KERNEL_CODE)
    found = session.resolve(["Doubler", "evaluate_then_train"])
    model = found["Doubler"](3)
    log = session.request("record_forward", h=model)
    found["evaluate_then_train"](model, torch.randn(2, 3))
    assert [tuple(call) for call in log.calls] == [(False, False), (True, True)]
    log.remove()
    found["evaluate_then_train"](model, torch.randn(2, 3))
    assert len(log.calls) == 2
    assert inspect.signature(found["evaluate_then_train"]).parameters.keys() == {"model", "x"}


KEEPER_CODE = """
kept = []

def keep(f):
    kept.append(f)
    return f(2)

def call_kept(x):
    return kept[-1](x)
"""


def test_a_loan_ends_with_its_check_and_its_id_is_never_reused(kernel):  # noqa: F811
    session, client = kernel
    _run(client, KEEPER_CODE)
    found = session.resolve(["keep", "call_kept"])
    assert found["keep"](lambda x: x * 10) == 20  # during the check the student's code may use the loan
    session.revoke_loans()  # what the trusted executor does when a test cell ends
    session._lend(lambda x: -1)  # a later check lends something else: the old id must not reach it
    try:
        found["call_kept"](3)
    except Exception as exc:  # noqa: BLE001 - the kernel's refusal arrives as the student's exception
        assert "lent this object for one check only" in str(exc)
    else:
        raise AssertionError("a revoked loan still answered")
