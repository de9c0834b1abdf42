"""Hidden-test checks for stage 6: the loss, evaluation, the training loop, sampling and loading GPT-2.

Each ``check_*`` runs the student's function and the reference on the same seeded tiny model and
data and compares the results; on a mismatch it names the known mistake whose result the student's
matches (targets not shifted, loss over the wrong dimensions, dropout on during evaluation, missing
``zero_grad`` ...).

A function that calls the student's own helpers from earlier exercises (``train_model_simple`` calls
``evaluate_model``, which calls ``calc_loss_loader`` ...) is first graded as written; if it fails, it
is graded again with the reference helpers in their place, so a mistake costs the points of the
exercise where it is, not of every later one.

Under trusted grading the student's functions run in their kernel and the grader's objects (the
tiny model, the loaders, a tokenizer) are lent to them: each use asks the grader, under the
kernel's grad mode. The training loop needs its model in the kernel (gradients do not cross), so it
gets a copy built there; graded again with the reference helpers, everything stays in the grader
and the student's loop only drives it (the loss it gets back is lent too, so its ``backward()``
trains the grader's model). The reference helpers are lent, never sent as code.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import io
import math
import re
import types

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from llmkit.i18n.runtime import N_, _

from . import (GradingError, _salted, assert_defined_in_notebook, call_checked, close, first_difference,
               max_diff, with_hint)
from .remote import is_remote

TINY = {"vocab_size": 50, "context_length": 16, "emb_dim": 16, "n_heads": 2, "n_layers": 1, "drop_rate": 0.0,
        "qkv_bias": False}

HINTS = {
    "no_flatten": N_("cross_entropy wants logits of shape (N, vocab) and targets of shape (N,): flatten both over "
                     "(batch, tokens) with logits.flatten(0, 1) and target_batch.flatten()."),
    "inputs_as_targets": N_("the loss compares the logits with input_batch; compare them with target_batch "
                            "(the inputs shifted by one), so each position predicts the next token."),
    "double_shift": N_("the targets are shifted twice: target_batch is already the inputs shifted by one, so compare "
                       "the logits at every position with target_batch as it is."),
    "sum": N_("the loss is summed; cross_entropy's default reduction='mean' gives the average over all positions."),
    "last_only": N_("only the last position is scored; the loss covers every position of every sequence."),
    "softmax_first": N_("softmax is applied before cross_entropy, which applies log-softmax itself: pass the raw logits."),
    "flatten_order": N_("logits and targets are flattened in different orders; flatten both the same way: "
                        "logits.flatten(0, 1) and target_batch.flatten()."),
    "item": N_("return the loss tensor, not loss.item(): train_model_simple calls loss.backward() on it."),
    "not_scalar": N_("return one number, the mean over all positions (cross_entropy's default reduction)."),
    "no_graph": N_("the loss has no gradient graph: calc_loss_batch must not run under torch.no_grad() "
                   "(evaluate_model does that) nor detach the loss."),
    "mode_changed": N_("calc_loss_batch changes the model's mode; leave model.train()/model.eval() to the callers."),
    # calc_loss_loader
    "ignores_num_batches": N_("all batches are averaged although num_batches was given: stop after num_batches batches."),
    "no_break": N_("every batch is summed although num_batches was given: leave the loop after num_batches batches "
                   "(if i >= num_batches: break), then divide by num_batches."),
    "divides_by_len": N_("the sum of num_batches losses is divided by len(data_loader); divide by num_batches, "
                         "the number of batches actually summed."),
    "loader_sum": N_("the batch losses are summed; return their mean (divide by the number of batches)."),
    "one_extra": N_("one batch too many is summed (off by one): stop when i reaches num_batches "
                    "(if i < num_batches: ... else: break)."),
    "not_clamped": N_("num_batches larger than the loader is not reduced to len(data_loader): use "
                      "min(num_batches, len(data_loader))."),
    "empty": N_("an empty loader has no batches: return float('nan') instead of dividing by zero."),
    # evaluate_model
    "eval_train_mode": N_("the model is in training mode during evaluation, so dropout is on: call model.eval() "
                          "before computing the losses (and model.train() afterwards)."),
    "eval_grad": N_("evaluation records gradient graphs it never uses: compute the losses under torch.no_grad() "
                    "(faster, and far less memory)."),
    "not_restored": N_("the model is left in eval mode: call model.train() before returning, training continues "
                       "after each evaluation."),
    "swapped": N_("the two losses are returned in the wrong order: return (train_loss, val_loss)."),
    "ignores_eval_iter": N_("eval_iter is ignored: pass num_batches=eval_iter to calc_loss_loader for both loaders."),
    # train_model_simple
    "no_zero_grad": N_("the gradients accumulate across steps: call optimizer.zero_grad() before loss.backward() "
                       "in every step."),
    "no_update": N_("the weights did not change: each step needs loss.backward() then optimizer.step() "
                    "(and optimizer.zero_grad() before backward, not between backward and step)."),
    "late_first_eval": N_("the first evaluation comes eval_freq steps late: start global_step at -1 and add 1 "
                          "after each step, so the losses are recorded after steps 0, eval_freq, 2*eval_freq, ..."),
    "tokens_rows": N_("tokens_seen counts sequences (input_batch.shape[0]); count tokens: input_batch.numel()."),
    "tokens_cols": N_("tokens_seen counts one sequence's tokens per step; count the whole batch: input_batch.numel()."),
    "tokens_late": N_("tokens_seen is updated after the evaluation; add the batch's tokens right after the "
                      "optimizer step, before evaluating."),
    "train_in_eval_mode": N_("training steps run with the model in eval mode (dropout off): call model.train() "
                             "at the start of each epoch; evaluation switches to eval mode and must switch back."),
    # sampling
    "times_t": N_("the logits are multiplied by the temperature; divide them: softmax(logits / temperature)."),
    "ignores_t": N_("the temperature has no effect: divide the logits by it before the softmax."),
    "probs_over_t": N_("the probabilities are divided by the temperature after the softmax; scale the logits "
                       "before it: softmax(logits / temperature)."),
    "fill_zero": N_("the removed logits are set to 0, which is an ordinary logit that still gets probability; "
                    "set them to -inf so softmax gives them exactly 0."),
    "keeps_k_minus_1": N_("only k-1 logits survive: the k-th largest must stay; mask logits strictly smaller "
                          "than it (logits < cutoff), not <=."),
    "smallest": N_("the k smallest logits are kept; keep the k largest (torch.topk returns the largest by default)."),
    # load_weights_into_gpt
    "not_transposed": N_("Conv1D weights are stored (in, out); nn.Linear's weight is (out, in): transpose them "
                         "(w.T) before copying."),
    "block_index": N_("checkpoint block i goes into trf_blocks[i]."),
    "qkv_split": N_("c_attn holds query, key and value side by side on its last axis, in that order: split it in three."),
    "gamma_beta": N_("in a LayerNorm, 'g' (gamma) is the scale and 'b' (beta) the shift."),
    "ln_swapped": N_("ln_1 is the norm before attention (norm1), ln_2 the one before the feed-forward (norm2)."),
    "head_not_loaded": N_("GPT-2 ties its output head to the token embedding: copy params['wte'] into out_head.weight "
                          "too."),
    "row_threshold": N_("compare each row with its own k-th largest logit, for (vocab,) and (batch, vocab) "
                        "logits alike: cutoff = top_logits[..., -1:] keeps the last dimension (shape (..., 1))."),
}


# Hints the course's mistake table does not simulate end to end (each notebook there takes long to grade):
# tests/test_grading_pretraining.py names every one of them with a mutated solution.
UNIT_TESTED = "named by a mutated solution in tests/test_grading_pretraining.py"
NOT_SIMULATED = {
    "double_shift": UNIT_TESTED,
    "sum": UNIT_TESTED,
    "last_only": UNIT_TESTED,
    "softmax_first": UNIT_TESTED,
    "flatten_order": UNIT_TESTED,
    "not_scalar": UNIT_TESTED,
    "no_graph": UNIT_TESTED,
    "mode_changed": UNIT_TESTED,
    "ignores_num_batches": UNIT_TESTED,
    "no_break": UNIT_TESTED,
    "loader_sum": UNIT_TESTED,
    "one_extra": UNIT_TESTED,
    "empty": UNIT_TESTED,
    "eval_grad": UNIT_TESTED,
    "not_restored": UNIT_TESTED,
    "ignores_eval_iter": UNIT_TESTED,
    "no_update": UNIT_TESTED,
    "late_first_eval": UNIT_TESTED,
    "tokens_cols": UNIT_TESTED,
    "tokens_late": UNIT_TESTED,
    "train_in_eval_mode": UNIT_TESTED,
    "ignores_t": UNIT_TESTED,
    "probs_over_t": UNIT_TESTED,
    "smallest": UNIT_TESTED,
    "block_index": UNIT_TESTED,
    "qkv_split": UNIT_TESTED,
    "ln_swapped": UNIT_TESTED,
    "row_threshold": UNIT_TESTED,
}

# --------------------------------------------------------------------------- helpers


def _tiny_model(seed: int, **overrides):
    from llmkit_solutions.gpt import GPTModel

    torch.manual_seed(seed)
    return GPTModel({**TINY, **overrides})


def _ids(seed: int, *shape: int) -> torch.Tensor:
    return torch.randint(0, TINY["vocab_size"], shape, generator=torch.Generator().manual_seed(seed))


def _loader(seed: int, n_batches: int, batch_size: int = 2, tokens: int = 8) -> DataLoader:
    """Deterministic (input, target) batches; targets are the inputs shifted by one, as in the book."""
    ids = _ids(seed, n_batches * batch_size, tokens + 1)
    return DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=batch_size, shuffle=False)


def _swap_globals(obj, names: dict):
    """A copy of a student's function (or class) whose global ``names`` point to other objects."""
    if inspect.isfunction(obj):
        used = {k: v for k, v in names.items() if k in obj.__globals__}
        if not used:
            return obj
        globs = {**obj.__globals__, **used}
        func = types.FunctionType(obj.__code__, globs, obj.__name__, obj.__defaults__, obj.__closure__)
        func.__kwdefaults__ = obj.__kwdefaults__
        func.__qualname__ = obj.__qualname__
        if globs.get(obj.__name__) is obj:  # a recursive function calls the copy, not the original
            globs[obj.__name__] = func
        return func
    if inspect.isclass(obj):
        swapped = {k: _swap_globals(v, names) for k, v in vars(obj).items() if inspect.isfunction(v)}
        body = {k: v for k, v in swapped.items() if v is not vars(obj)[k]}
        # A subclass keeps zero-argument super() working in the copied methods.
        return type(obj.__name__, (obj,), {**body, "__module__": obj.__module__}) if body else obj
    return obj


def _session():
    """The connection to the student's kernel, for checks that build objects there."""
    from .trusted import current_session

    session = current_session.get()
    if session is None:
        raise GradingError(_("this check needs the grader's connection to the student's kernel"))
    return session


@contextlib.contextmanager
def _with_references(student, references: dict):
    """``student`` calling ``references`` instead of the notebook's own helpers, or None if it uses none of them.

    In this process: a copy of the function whose globals point to the references. In the student's
    kernel: the same function, with the notebook's names bound to the references (lent, never sent as
    code) until the block ends.
    """
    if not is_remote(student):
        swapped = _swap_globals(student, references)
        yield None if swapped is student else swapped
        return
    session = _session()
    present = session.resolve(sorted(references))
    names = {name: value for name, value in references.items() if name in present}
    if not names:
        yield None
        return
    with session.bound(**names):
        yield student


def graded_with_fallback(check, student, references: dict):
    """Run ``check(student, isolated=False)``; if it fails, rerun with earlier exercises' names bound to the references.

    Passing the second time means the mistake lies in a helper graded elsewhere: no points lost here.
    When both fail, the second message names this exercise's own mistake, unless the second run only
    failed because the student's code expects their own helper's interface (then the first message).
    """
    try:
        return check(student, isolated=False)
    except GradingError as own:
        with _with_references(student, references) as swapped:
            if swapped is None:
                raise
            try:
                return check(swapped, isolated=True)
            except GradingError as isolated:
                if _interface_error(isolated.__cause__):
                    raise own from None
                raise isolated from None


def _interface_error(exc) -> bool:
    """The student's code used its own helper's interface (an attribute, an argument) that the reference lacks."""
    kinds = (AttributeError, TypeError, NameError)
    if isinstance(exc, kinds):
        return True
    # A lent reference that refuses a use answers the kernel with RuntimeError("AttributeError: ...").
    return isinstance(exc, RuntimeError) and str(exc).partition(":")[0] in {kind.__name__ for kind in kinds}


def single_threaded(check):
    """Run a check on one CPU thread: tiny models run fastest so, and a busy grader does not thrash."""

    @functools.wraps(check)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


def _as_float(value, what):
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    if isinstance(value, (int, float, np.floating)):
        return float(value)
    # TRANSLATORS: {what} names the value checked; {type_name} is a Python type name.
    raise GradingError(_("{what} should be a number, got {type_name}.").format(
        what=what, type_name=type(value).__name__))


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)


def _name_number(what: str, got: float, expected: float, variants: dict[str, float]) -> None:
    if _same(got, expected):
        return
    # TRANSLATORS: {what} names the number checked (a loss); {got} and {expected} are numbers.
    message = _("{what} is {got:.6g}, expected {expected:.6g}.").format(what=what, got=got, expected=expected)
    for key, value in variants.items():
        if _same(got, value):
            raise _with_hint(message, HINTS[key])
    raise GradingError(message)


def _with_hint(message: str, hint: str | None) -> GradingError:
    """A translated message followed by the hint (an English HINTS text, translated by ``with_hint``), if any."""
    return GradingError(with_hint(message, hint))


class _Recorder:
    """Forward pre-hook noting (training mode, gradients enabled) at every call of the model.

    A model in the student's kernel is watched there (the probe's ``record_forward``); a model of this
    process lent to the kernel runs here, under the kernel's grad mode, so a hook here sees it all.
    """

    def __init__(self, model):
        self._calls = []
        if is_remote(model):
            self._log = _session().request("record_forward", h=model)
        else:
            self._log = model.register_forward_pre_hook(lambda m, args: self._calls.append(
                (m.training, torch.is_grad_enabled())))

    @property
    def calls(self) -> list[tuple[bool, bool]]:
        return [tuple(call) for call in self._log.calls] if is_remote(self._log) else self._calls

    def remove(self):
        self._log.remove()


class _CharCodes:
    """A tokenizer for the checks: characters to ids modulo the tiny vocabulary."""

    def encode(self, text):
        return [ord(c) % TINY["vocab_size"] for c in text]

    def decode(self, ids):
        return "".join(chr(97 + i % 26) for i in ids)


# --------------------------------------------------------------------------- calc_loss_batch


def _shape_error_hint(exc: Exception) -> str | None:
    msg = str(exc)
    if "Expected target size" in msg or "Expected input batch_size" in msg or "only batches of spatial" in msg:
        return HINTS["no_flatten"]
    return None


def _loss_variants(model, x, y):
    with torch.no_grad():
        logits = model(x)
        ce = torch.nn.functional.cross_entropy
        return {
            "inputs_as_targets": ce(logits.flatten(0, 1), x.flatten()).item(),
            "double_shift": ce(logits[:, :-1].flatten(0, 1), y[:, 1:].flatten()).item(),
            "sum": ce(logits.flatten(0, 1), y.flatten(), reduction="sum").item(),
            "last_only": ce(logits[:, -1], y[:, -1]).item(),
            "softmax_first": ce(torch.softmax(logits, dim=-1).flatten(0, 1), y.flatten()).item(),
            "flatten_order": ce(logits.transpose(0, 1).flatten(0, 1), y.flatten()).item(),
        }


def _check_calc_loss_batch(fn):
    from llmkit_solutions.pretraining import calc_loss_batch

    model = _tiny_model(21).train()  # drop_rate 0: train mode is deterministic
    x, y = _ids(22, 3, 9)[:, :-1], _ids(22, 3, 9)[:, 1:]
    # Expectations first: the model is lent to the student's code, which could change it.
    expected, variants = calc_loss_batch(x, y, model, "cpu").item(), _loss_variants(model, x, y)
    try:
        out = fn(x, y, model, "cpu")
    except Exception as exc:
        # TRANSLATORS: {error_type} is a Python exception name, {error} its message.
        detail = _("calc_loss_batch raised {error_type}: {error}").format(error_type=type(exc).__name__, error=exc)
        raise _with_hint(detail, _shape_error_hint(exc)) from exc
    if not model.training:
        raise _with_hint(_("calc_loss_batch left the model in eval mode."), HINTS["mode_changed"])
    if isinstance(out, (float, int)):
        # TRANSLATORS: {type_name} is a Python type name (float, int).
        raise _with_hint(_("calc_loss_batch returned a Python {type_name}.").format(type_name=type(out).__name__),
                         HINTS["item"])
    if not isinstance(out, torch.Tensor):
        raise GradingError(_("calc_loss_batch should return a tensor, got {type_name}.").format(
            type_name=type(out).__name__))
    if out.dim() != 0:
        raise _with_hint(_("calc_loss_batch returned shape {shape}.").format(shape=tuple(out.shape)),
                         HINTS["not_scalar"])
    _name_number("calc_loss_batch", _as_float(out, _("calc_loss_batch's loss")), expected, variants)
    if not out.requires_grad:
        raise _with_hint(_("calc_loss_batch's loss cannot be backpropagated."), HINTS["no_graph"])


@single_threaded
def check_calc_loss_batch(fn):
    """The mean next-token cross-entropy of a batch, as a tensor that can be backpropagated."""
    assert_defined_in_notebook(fn)
    _check_calc_loss_batch(fn)


# --------------------------------------------------------------------------- calc_loss_loader


def _loader_cases(model):
    from llmkit_solutions.pretraining import calc_loss_batch

    loader = _loader(31, 5)
    with torch.no_grad():
        losses = [calc_loss_batch(x, y, model, "cpu").item() for x, y in loader]
    return loader, losses


def _check_calc_loss_loader(fn, isolated=False):
    model = _tiny_model(30).eval()
    loader, losses = _loader_cases(model)
    n = len(losses)
    for num_batches in (None, 2, 9):
        used = n if num_batches is None else min(num_batches, n)
        expected = sum(losses[:used]) / used
        variants = {"ignores_num_batches": sum(losses) / n, "divides_by_len": sum(losses[:used]) / n,
                    "loader_sum": sum(losses[:used]), "one_extra": sum(losses[:used + 1]) / used}
        if num_batches is not None and num_batches > n:  # clamping matters only for more batches than there are
            variants["not_clamped"] = sum(losses) / num_batches
        elif num_batches is not None:  # the loop never stops early, but the sum is divided by num_batches
            variants["no_break"] = sum(losses) / num_batches
        variants = {k: v for k, v in variants.items() if not _same(v, expected)}
        # TRANSLATORS: a call of the student's calc_loss_loader; {count} is how many batches the loader holds.
        what = _("calc_loss_loader(loader of {count} batches, num_batches={num_batches})").format(
            count=n, num_batches=num_batches)
        with torch.no_grad():
            got = call_checked(what, fn, loader, model, "cpu", num_batches=num_batches)
        _name_number(what, _as_float(got, what), expected, variants)
    empty = DataLoader(TensorDataset(torch.zeros(0, 8, dtype=torch.long), torch.zeros(0, 8, dtype=torch.long)),
                       batch_size=2)
    try:
        with torch.no_grad():
            got = fn(empty, model, "cpu")
    except ZeroDivisionError:
        raise _with_hint(_("calc_loss_loader raised ZeroDivisionError on an empty loader."), HINTS["empty"]) from None
    except Exception as exc:
        # TRANSLATORS: {error_type} is a Python exception name, {error} its message.
        raise GradingError(_("calc_loss_loader on an empty loader raised {error_type}: {error}").format(
            error_type=type(exc).__name__, error=exc)) from exc
    got = _as_float(got, _("calc_loss_loader on an empty loader"))
    if not math.isnan(got):
        raise _with_hint(_("calc_loss_loader on an empty loader returned {got}.").format(got=got), HINTS["empty"])


@single_threaded
def check_calc_loss_loader(fn):
    """The mean of the first ``num_batches`` batch losses (all when None, clamped to the loader, nan if empty)."""
    from llmkit_solutions.pretraining import calc_loss_batch

    assert_defined_in_notebook(fn)
    graded_with_fallback(_check_calc_loss_loader, fn, {"calc_loss_batch": calc_loss_batch})


# --------------------------------------------------------------------------- evaluate_model


def _check_evaluate_model(fn, isolated=False):
    from llmkit_solutions.pretraining import calc_loss_loader

    model = _tiny_model(40, drop_rate=0.5).train()  # dropout on: evaluation in train mode would show
    train_loader, val_loader = _loader(41, 4), _loader(42, 3)
    frozen = copy.deepcopy(model).eval()  # for the expected losses: the student's code could change the lent model
    with torch.no_grad():
        expected = [calc_loss_loader(loader, frozen, "cpu", num_batches=2) for loader in (train_loader, val_loader)]
        everything = [calc_loss_loader(loader, frozen, "cpu") for loader in (train_loader, val_loader)]
    recorder = _Recorder(model)
    try:
        result = call_checked("evaluate_model", fn, model, train_loader, val_loader, "cpu", 2)
    finally:
        recorder.remove()
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        # TRANSLATORS: {type_name} is a Python type name.
        raise GradingError(_("evaluate_model should return (train_loss, val_loss), got {type_name}.").format(
            type_name=type(result).__name__))
    got = [_as_float(v, _("evaluate_model's loss")) for v in result]
    if not recorder.calls:
        raise GradingError(_("evaluate_model never ran the model; compute both losses with calc_loss_loader."))
    if any(training for training, _grad in recorder.calls):
        raise _with_hint(_("evaluate_model ran the model in training mode."), HINTS["eval_train_mode"])
    if any(grad for _training, grad in recorder.calls):
        raise _with_hint(_("evaluate_model ran the model with gradients on."), HINTS["eval_grad"])
    if not model.training:
        raise _with_hint(_("after evaluate_model the model is in eval mode."), HINTS["not_restored"])
    # Each loss is named whole ("evaluate_model's train loss"), so a translation can order the words freely.
    names = (N_("evaluate_model's train loss"), N_("evaluate_model's validation loss"))
    others = (N_("evaluate_model's train loss is the other split's."),
              N_("evaluate_model's validation loss is the other split's."))
    for i in range(2):
        if _same(got[i], expected[i]):
            continue
        if _same(got[i], expected[1 - i]):
            raise _with_hint(_(others[i]), HINTS["swapped"])
        _name_number(_(names[i]), got[i], expected[i], {"ignores_eval_iter": everything[i]})


@single_threaded
def check_evaluate_model(fn):
    """Both losses over ``eval_iter`` batches, in eval mode, without gradients; train mode restored."""
    from llmkit_solutions.pretraining import calc_loss_batch, calc_loss_loader

    assert_defined_in_notebook(fn)
    graded_with_fallback(_check_evaluate_model, fn,
                         {"calc_loss_loader": calc_loss_loader, "calc_loss_batch": calc_loss_batch})


# --------------------------------------------------------------------------- train_model_simple

TRAIN_ARGS = {"num_epochs": 2, "eval_freq": 3, "eval_iter": 2, "start_context": "ab"}
OPTIMIZER = {"lr": 5e-3, "weight_decay": 0.1}


def _train_setup():
    model = _tiny_model(50)
    optimizer = torch.optim.AdamW(model.parameters(), **OPTIMIZER)
    return model, _loader(51, 5), _loader(52, 2), optimizer


def _in_kernel(model, optimizer):
    """The model built in the student's kernel with the same weights, and the same optimizer over it there."""
    session = _session()
    remote = session.ship(model, dict(TINY))
    kind = type(optimizer)
    return remote, session.build(kind.__module__, kind.__qualname__, remote.parameters(), **OPTIMIZER)


def _weights(model) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


class _LossKeptHere:
    """The reference loss lent to the student's loop: ``backward()`` runs here, on the grader's model."""

    def __init__(self, loss):
        self._loss = loss

    def backward(self, *args, **kwargs):
        self._loss.backward(*args, **kwargs)

    def item(self):
        return self._loss.item()

    def detach(self):
        return self._loss.detach()


def _loss_kept_here(calc_loss_batch):
    """``calc_loss_batch`` whose loss stays in the grader (a tensor sent to the kernel arrives without its graph)."""

    def calc(*args, **kwargs):
        return _LossKeptHere(calc_loss_batch(*args, **kwargs))

    return calc


def _book_loop(zero_grad=True, first_step=-1, tokens="numel", tokens_late=False):
    """The reference loop with switchable mistakes -> (train_losses, val_losses, tokens_seen)."""
    from llmkit_solutions.pretraining import evaluate_model

    model, train_loader, val_loader, optimizer = _train_setup()
    train_losses, val_losses, seen = [], [], []
    tokens_seen, step = 0, first_step
    for _epoch in range(TRAIN_ARGS["num_epochs"]):
        model.train()
        for x, y in train_loader:
            if zero_grad:
                optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            optimizer.step()
            count = {"numel": x.numel(), "rows": x.shape[0], "cols": x.shape[1]}[tokens]
            if not tokens_late:
                tokens_seen += count
            step += 1
            if step % TRAIN_ARGS["eval_freq"] == 0:
                t, v = evaluate_model(model, train_loader, val_loader, "cpu", TRAIN_ARGS["eval_iter"])
                train_losses.append(t)
                val_losses.append(v)
                seen.append(tokens_seen)
            if tokens_late:
                tokens_seen += count
    return train_losses, val_losses, seen


def _lists_match(got, expected) -> bool:
    return len(got) == len(expected) and all(_same(a, b) for a, b in zip(got, expected))


def _check_train_model_simple(fn, isolated=False):
    model, train_loader, val_loader, optimizer = _train_setup()
    if is_remote(fn) and not isolated:  # the student's own helpers backpropagate there: the model goes there too
        model, optimizer = _in_kernel(model, optimizer)
    before = _weights(model)
    recorder = _Recorder(model)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            result = call_checked("train_model_simple", fn, model, train_loader, val_loader, optimizer, "cpu",
                                  tokenizer=_CharCodes(), **TRAIN_ARGS)
    finally:
        recorder.remove()
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        # TRANSLATORS: {type_name} is a Python type name.
        raise GradingError(_("train_model_simple should return (train_losses, val_losses, track_tokens_seen), "
                             "got {type_name}.").format(type_name=type(result).__name__))
    try:
        train_losses, val_losses, seen = ([float(v) for v in part] for part in result)
    except (TypeError, ValueError):
        raise GradingError(_("train_model_simple should return three lists of numbers.")) from None
    if any(not training for training, grad in recorder.calls if grad):
        raise _with_hint(_("train_model_simple trained with the model in eval mode."), HINTS["train_in_eval_mode"])
    after = _weights(model)
    if all(torch.equal(before[k], after[k]) for k in before):
        raise _with_hint(_("train_model_simple did not change the model."), HINTS["no_update"])
    expected = _book_loop()
    # TRANSLATORS: {count} is the number of batches in each epoch.
    what = _("train_model_simple with {count} batches per epoch, num_epochs=2, eval_freq=3, eval_iter=2").format(
        count=len(train_loader))
    if not _lists_match(seen, expected[2]):
        # TRANSLATORS: {what} describes the call; {got} and {expected} are lists of token counts.
        differs = _("{what}: track_tokens_seen is {got}, expected {expected}.").format(
            what=what, got=seen, expected=expected[2])
        for key, kw in (("tokens_rows", {"tokens": "rows"}), ("tokens_cols", {"tokens": "cols"}),
                        ("tokens_late", {"tokens_late": True}), ("late_first_eval", {"first_step": 0})):
            if _lists_match(seen, _book_loop(**kw)[2]):
                raise _with_hint(differs, HINTS[key])
        raise GradingError(_("{what}: track_tokens_seen is {got}, expected {expected} (the tokens trained on so far, "
                             "recorded at each evaluation after steps 0, eval_freq, 2*eval_freq, ...).").format(
                                 what=what, got=seen, expected=expected[2]))
    for got, exp, name in ((train_losses, expected[0], "train_losses"), (val_losses, expected[1], "val_losses")):
        if _lists_match(got, exp):
            continue
        for key, kw in (("no_zero_grad", {"zero_grad": False}), ("late_first_eval", {"first_step": 0})):
            if _lists_match(got, _book_loop(**kw)[0 if name == "train_losses" else 1]):
                # TRANSLATORS: {name} is a variable name (train_losses or val_losses).
                raise _with_hint(_("{what}: {name} differ from the book's loop.").format(what=what, name=name),
                                 HINTS[key])
        shown = ", ".join(f"{v:.4f}" for v in got)
        wanted = ", ".join(f"{v:.4f}" for v in exp)
        # TRANSLATORS: {name} is a variable name; {shown} and {wanted} are comma-separated losses.
        raise GradingError(_("{what}: {name} are [{shown}], expected [{wanted}].").format(
            what=what, name=name, shown=shown, wanted=wanted))


@single_threaded
def check_train_model_simple(fn):
    """The book's loop: same losses and tokens as the reference from the same seed, data and optimizer."""
    from llmkit_solutions import pretraining as ref

    assert_defined_in_notebook(fn)
    references = {"calc_loss_batch": ref.calc_loss_batch, "calc_loss_loader": ref.calc_loss_loader,
                  "evaluate_model": ref.evaluate_model, "generate_and_print_sample": ref.generate_and_print_sample}
    if is_remote(fn):  # graded again with these, the loop in the kernel trains the grader's model
        references["calc_loss_batch"] = _loss_kept_here(ref.calc_loss_batch)
    graded_with_fallback(_check_train_model_simple, fn, references)


# --------------------------------------------------------------------------- temperature and top-k

BOOK_LOGITS = torch.tensor([4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79])  # the book's 9-word example


def _compare_tensor(what, got, expected, variants: dict[str, torch.Tensor]):
    if not isinstance(got, torch.Tensor):
        # TRANSLATORS: {what} describes the call; {type_name} is a Python type name.
        raise GradingError(_("{what} should return a tensor, got {type_name}.").format(
            what=what, type_name=type(got).__name__))
    if close(got, expected):
        return
    for key, value in variants.items():
        if close(got, value):
            raise _with_hint(_("{what} differs from the reference.").format(what=what), HINTS[key])
    if got.shape != expected.shape:
        raise GradingError(_("{what} has shape {shape}, expected {expected_shape}.").format(
            what=what, shape=tuple(got.shape), expected_shape=tuple(expected.shape)))
    # TRANSLATORS: {where} says where the tensors first differ ("at index (0, 3): got 0.1, expected 0.2");
    # {largest} is a number.
    raise GradingError(_("{what} differs from the reference {where} (largest difference {largest:.3g}).").format(
        what=what, where=first_difference(got, expected), largest=max_diff(got, expected)))


@single_threaded
def check_softmax_with_temperature(fn):
    """softmax(logits / temperature) on 1-D logits (the book's interface), several temperatures."""
    from llmkit_solutions.pretraining import softmax_with_temperature

    assert_defined_in_notebook(fn)
    cases = [BOOK_LOGITS, torch.randn(50, generator=torch.Generator().manual_seed(60)) * 3]
    for logits in cases:
        for temperature in (1.0, 0.1, 5.0, 2.5):
            # TRANSLATORS: a call of the student's function; {count} is how many logits it is given.
            what = _("softmax_with_temperature(logits of {count}, temperature={temperature})").format(
                count=logits.numel(), temperature=temperature)
            got = call_checked(what, fn, logits.clone(), temperature)
            expected = softmax_with_temperature(logits, temperature)
            plain = torch.softmax(logits, dim=-1)
            _compare_tensor(what, got, expected, {
                "times_t": torch.softmax(logits * temperature, dim=-1), "ignores_t": plain,
                "probs_over_t": plain / temperature})


@single_threaded
def check_top_k_filter(fn):
    """The k largest logits of each row kept, the rest -inf; on 1-D and (batch, vocab) logits."""
    from llmkit_solutions.pretraining import top_k_filter

    assert_defined_in_notebook(fn)
    g = torch.Generator().manual_seed(61)
    cases = [(BOOK_LOGITS, 3), (torch.randn(4, 50, generator=g), 5), (torch.randn(3, 50, generator=g), 1),
             (torch.randn(2, 50, generator=g), 50)]
    for logits, k in cases:
        what = _("top_k_filter(logits of shape {shape}, top_k={top_k})").format(shape=tuple(logits.shape), top_k=k)
        try:
            got = fn(logits.clone(), k)
        except Exception as exc:
            shape_error = "must match the size" in str(exc) or "too many indices" in str(exc)
            hint = HINTS["row_threshold"] if shape_error else None
            # TRANSLATORS: {what} describes the call; {error_type} is a Python exception name, {error} its message.
            detail = _("{what} raised {error_type}: {error}").format(what=what, error_type=type(exc).__name__,
                                                                      error=exc)
            raise _with_hint(detail, hint) from exc
        expected = top_k_filter(logits, k)
        cutoff = torch.topk(logits, k, dim=-1).values[..., -1:]
        smallest = torch.topk(logits, k, dim=-1, largest=False).values[..., -1:]
        variants = {"fill_zero": torch.where(logits < cutoff, torch.zeros_like(logits), logits),
                    "keeps_k_minus_1": torch.where(logits <= cutoff, torch.full_like(logits, -torch.inf), logits),
                    "smallest": torch.where(logits > smallest, torch.full_like(logits, -torch.inf), logits)}
        if logits.dim() == 2:
            last_row = torch.topk(logits, k, dim=-1).values[-1, -1]
            variants["row_threshold"] = torch.where(logits < last_row, torch.full_like(logits, -torch.inf), logits)
        _compare_tensor(what, got, expected, variants)


# --------------------------------------------------------------------------- load_weights_into_gpt

LOAD_CFG = {"vocab_size": 30, "context_length": 12, "emb_dim": 8, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0,
            "qkv_bias": True}


def fake_openai_params(cfg: dict, seed: int = 0) -> dict:
    """Random weights in the layout of OpenAI's GPT-2 checkpoint (numpy arrays, Conv1D weights (in, out))."""
    rng = np.random.default_rng(_salted(seed))
    E, V, C = cfg["emb_dim"], cfg["vocab_size"], cfg["context_length"]

    def a(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def block():
        return {"attn": {"c_attn": {"w": a(E, 3 * E), "b": a(3 * E)}, "c_proj": {"w": a(E, E), "b": a(E)}},
                "mlp": {"c_fc": {"w": a(E, 4 * E), "b": a(4 * E)}, "c_proj": {"w": a(4 * E, E), "b": a(E)}},
                "ln_1": {"g": a(E), "b": a(E)}, "ln_2": {"g": a(E), "b": a(E)}}

    # The blocks are drawn last, after wte, wpe, g and b: the order of draws fixes the arrays.
    return {"wte": a(V, E), "wpe": a(C, E), "g": a(E), "b": a(E),
            "blocks": [block() for _layer in range(cfg["n_layers"])]}


def _sources(params: dict, E: int) -> dict[str, torch.Tensor]:
    """Every array of ``params`` by a readable label, as nn.Linear would hold it and as stored.

    Conv1D weights ``['w']`` are (in, out): their label names the transposed array, the one an
    ``nn.Linear`` holds; "(not transposed)" names the array as stored. c_attn is also cut in thirds.
    """
    found = {}

    def add(label, t):
        if t.ndim == 2 and label.endswith("['w']"):
            found[label] = t.T
            found[label + " (not transposed)"] = t
        else:
            found[label] = t

    def walk(node, label):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{label}['{key}']")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{label}[{i}]")
        else:
            t = torch.as_tensor(np.asarray(node))
            add(label, t)
            if label.endswith("['c_attn']['w']") or label.endswith("['c_attn']['b']"):
                for i, part in enumerate(("query", "key", "value")):
                    piece = t[..., i * E:(i + 1) * E]
                    third = f"{label}[..., {i * E}:{(i + 1) * E}] ({part} part)"
                    if t.ndim == 2:
                        found[third] = piece.T
                        found[third.replace(" part)", " part, not transposed)")] = piece
                    else:
                        found[third] = piece

    walk(params, "params")
    return found


def _load_hint(holds: str, expected: str) -> str:
    """One sentence naming the likely mistake, from what a parameter holds and what it should hold."""
    if "not transposed" in holds:
        return HINTS["not_transposed"]
    block_of = [re.search(r"\['blocks'\]\[(\d+)\]", label) for label in (holds, expected)]
    if all(block_of) and block_of[0].group(1) != block_of[1].group(1):
        return HINTS["block_index"]
    if "part" in holds and "part" in expected:
        return HINTS["qkv_split"]
    if {holds[-5:], expected[-5:]} == {"['g']", "['b']"}:
        return HINTS["gamma_beta"]
    if ("ln_1" in holds and "ln_2" in expected) or ("ln_2" in holds and "ln_1" in expected):
        return HINTS["ln_swapped"]
    return ""


def _expected_labels(cfg: dict, E: int) -> dict[str, str]:
    """Which params label each model parameter must hold."""
    labels = {"tok_emb.weight": "params['wte']", "pos_emb.weight": "params['wpe']",
              "final_norm.scale": "params['g']", "final_norm.shift": "params['b']", "out_head.weight": "params['wte']"}
    for i in range(cfg["n_layers"]):
        blk = f"params['blocks'][{i}]"
        for j, part in enumerate(("query", "key", "value")):
            for kind in ("w", "b"):
                labels[f"trf_blocks.{i}.att.W_{part}.{'weight' if kind == 'w' else 'bias'}"] = (
                    f"{blk}['attn']['c_attn']['{kind}'][..., {j * E}:{(j + 1) * E}] ({part} part)")
        for mod, src in (("att.out_proj", "['attn']['c_proj']"), ("ff.layers.0", "['mlp']['c_fc']"),
                         ("ff.layers.2", "['mlp']['c_proj']")):
            labels[f"trf_blocks.{i}.{mod}.weight"] = f"{blk}{src}['w']"
            labels[f"trf_blocks.{i}.{mod}.bias"] = f"{blk}{src}['b']"
        for norm, ln in (("norm1", "ln_1"), ("norm2", "ln_2")):
            labels[f"trf_blocks.{i}.{norm}.scale"] = f"{blk}['{ln}']['g']"
            labels[f"trf_blocks.{i}.{norm}.shift"] = f"{blk}['{ln}']['b']"
    return labels


def _check_loaded(student, reference, initial, params, cfg):
    E = cfg["emb_dim"]
    got_sd, exp_sd = dict(student.named_parameters()), dict(reference.named_parameters())
    if set(got_sd) != set(exp_sd):
        raise GradingError(_("load_weights_into_gpt changed the model's parameters; copy values into the existing "
                             "ones."))
    sources, labels = _sources(params, E), _expected_labels(cfg, E)
    for name, expected in exp_sd.items():
        got = got_sd[name].detach()
        if close(got, expected.detach()):
            continue
        if close(got, initial[name]):
            if name == "out_head.weight":
                raise _with_hint(_("out_head.weight was not loaded."), HINTS["head_not_loaded"])
            # TRANSLATORS: {name} is a model parameter's name; {source} names a checkpoint array
            # (params['blocks'][0]['ln_1']['g']) or says "a checkpoint array".
            raise GradingError(_("{name} was not loaded: it still holds its random initial values "
                                 "(it should hold {source}).").format(
                                     name=name, source=labels.get(name) or _("a checkpoint array")))
        holds = next((label for label, t in sources.items() if close(got, t.to(got.dtype))), None)
        if holds is None:
            # TRANSLATORS: {where} says where the tensors first differ ("first at index (0, 3): got ...");
            # {largest} is a number; {source} names a checkpoint array.
            raise GradingError(_("{name} differs after loading, {where} (largest difference {largest:.3g}); "
                                 "it should hold {source}.").format(
                                     name=name, where=first_difference(got, expected.detach()),
                                     largest=max_diff(got, expected),
                                     source=labels.get(name) or _("a checkpoint array")))
        hint = _load_hint(holds, labels.get(name, ""))
        # TRANSLATORS: {name} is a model parameter's name; {holds} and {source} name checkpoint arrays.
        message = _("{name} holds {holds}; it should hold {source}.").format(
            name=name, holds=holds, source=labels.get(name) or _("another array"))
        raise _with_hint(message, hint)


@single_threaded
def check_load_weights_into_gpt(fn):
    """OpenAI-layout params (numpy, Conv1D (in, out), fused c_attn) land in the right GPTModel parameters."""
    from llmkit_solutions.gpt import GPTModel
    from llmkit_solutions.loading import load_weights_into_gpt

    assert_defined_in_notebook(fn)
    cfg = LOAD_CFG
    params = fake_openai_params(cfg, seed=70)
    torch.manual_seed(71)
    student = GPTModel(cfg).eval()
    initial = {k: v.detach().clone() for k, v in student.named_parameters()}
    reference = copy.deepcopy(student)
    if is_remote(fn):  # it copies values into the model's parameters in place: the model must be in the kernel
        student = _session().ship(student, dict(cfg))
    try:
        fn(student, copy.deepcopy(params))
    except Exception as exc:
        # TRANSLATORS: {error_type} is a Python exception name, {error} its message.
        detail = _("load_weights_into_gpt raised {error_type}: {error}").format(error_type=type(exc).__name__,
                                                                               error=exc)
        shape_hint = N_("Conv1D weights are stored (in, out) and nn.Linear's are (out, in): transpose them; c_attn "
                        "splits in three along its last axis.")
        raise _with_hint(detail, shape_hint if "shape" in str(exc) or "size" in str(exc) else None) from exc
    load_weights_into_gpt(reference, params)
    _check_loaded(student, reference, initial, params, cfg)
    ids = _ids(72, 2, 10) % cfg["vocab_size"]
    with torch.no_grad():
        if not close(student(ids), reference(ids)):
            raise GradingError(_("every parameter holds the right array, yet the loaded model's logits differ from "
                                 "the reference's: load_weights_into_gpt changed something else of the model (a "
                                 "buffer or a module)."))
