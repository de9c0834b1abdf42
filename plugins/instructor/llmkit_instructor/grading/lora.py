"""Hidden-test checks for stage 7: LoRA layers, wrapping a model, counting, freezing and merging.

Each ``check_*`` builds the student's class or runs the student's function on a seeded tiny GPT
and compares with the reference, computed here; on a mismatch it names the mistake (B not zero at
init, alpha/rank scaling missing, the wrapper added instead of replacing the layer, nested layers
not reached, base weights not frozen, ...).

Under trusted grading the student's code runs in their kernel: the test model is built here, a copy
of it is built there (``beside``: from the earlier stage's ``GPTModel`` or torch's ``nn.Linear``,
never this stage's answers), the student's function changes that copy, and the verdict is read from
data that comes back: parameter names, values and ``requires_grad``. Where LoRA went is decided from
those alone (``_lora_report``): a linear layer is wrapped when new parameters sit under its name
beside its own, unchanged weights.

A mistake in an earlier exercise costs only that exercise: where the reference result differs, a
function is also accepted when it does exactly what the student's own helper does (their
``LoRALayer`` inside ``LinearWithLoRA``, their ``replace_linear_with_lora`` inside
``freeze_and_add_lora``, their ``merged_linear`` inside ``merge_lora``).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from llmkit.i18n.runtime import N_, _

from . import (GradingError, assert_defined_in_notebook, call_checked, close, fail_with_diagnosis, max_diff, seeded,
               with_hint)
from .pretraining import single_threaded
from .remote import is_remote

TINY = {"vocab_size": 40, "context_length": 8, "emb_dim": 8, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0,
        "qkv_bias": True}
IN_DIM, OUT_DIM, RANK, ALPHA = 6, 5, 2, 6  # alpha/rank = 3, alpha = 6, 1 and rank/alpha differ: mistakes show

HINTS = {
    "b_not_zero": N_("B must start at zero (torch.zeros(rank, out_dim)), so a freshly wrapped layer computes exactly "
                     "what the base layer computed; only training moves it away from zero."),
    "a_zero": N_("A must start random (nn.init.kaiming_uniform_(A, a=math.sqrt(5))): with A and B both zero, both "
                 "gradients are zero and nothing ever trains."),
    "transposed": N_("A is (in_dim, rank) and B is (rank, out_dim), used as x @ A @ B."),
    "no_scale": N_("the update is not scaled: multiply x @ A @ B by alpha / rank."),
    "alpha_only": N_("the update is scaled by alpha; scale it by alpha / rank, so changing the rank does not change "
                     "the update's size."),
    "rank_over_alpha": N_("the scaling is upside down: use alpha / rank."),
    "dw_transposed": N_("delta_weight must have nn.Linear's weight layout (out_dim, in_dim): transpose A @ B."),
    "dw_no_scale": N_("delta_weight is not scaled: multiply A @ B by alpha / rank, as forward does."),
    "lora_only": N_("the output is only the LoRA update: add it to the base layer's output, linear(x) + lora(x)."),
    "linear_only": N_("the LoRA update is not added: return linear(x) + lora(x)."),
    "merged_in_place": N_("merged_linear changed the wrapped layer itself: merge into a copy "
                          "(copy.deepcopy(self.linear)), otherwise the wrapper adds the update twice."),
    "merge_transpose": N_("the update A @ B is (in_dim, out_dim); transpose it to nn.Linear's (out_dim, in_dim) "
                          "before adding it to the weight."),
    "no_setattr": N_("no layer was replaced: put the wrapper back into the parent module under the same name, "
                     "setattr(model, name, LinearWithLoRA(module, rank, alpha)); rebinding the loop variable "
                     "changes nothing."),
    "added": N_("the wrapper was added beside the layer instead of replacing it, so the model still calls the plain "
                "nn.Linear: setattr(model, name, LinearWithLoRA(module, rank, alpha)) under the layer's own name."),
    "not_recursing": N_("nested layers were not reached: call replace_linear_with_lora(module, rank, alpha) on every "
                        "child that is not an nn.Linear (blocks, attention, feed-forward ...)."),
    "double_wrap": N_("some layers were wrapped twice: do not recurse into the LinearWithLoRA you just created."),
    "rank_alpha": N_("pass rank and alpha through to LinearWithLoRA(module, rank, alpha)."),
    "not_frozen": N_("the base weights still train: set requires_grad = False on every parameter of the model "
                     "before adding LoRA."),
    "frozen_after": N_("nothing is trainable, the LoRA matrices neither: freeze the model first, then add LoRA, "
                       "so only the new A and B train."),
    "counts_all": N_("frozen parameters are counted as trainable: count only parameters with p.requires_grad."),
    "swapped_counts": N_("the numbers are in the wrong order: return (trainable, total)."),
    "state_dict": N_("state_dict() also holds buffers (the causal mask) and repeats tied weights: count "
                     "model.parameters(), which lists each parameter once."),
    "per_module": N_("parameters are counted once per enclosing module: sum over model.parameters() (each parameter "
                     "once), not over every module's parameters()."),
    "merge_not_recursing": N_("LoRA layers inside the blocks were not merged: walk the whole model (recursively) and "
                              "replace every LinearWithLoRA by its merged nn.Linear."),
    "merge_dropped": N_("the merged layers lost the LoRA update: add the scaled A @ B (transposed) to the weight."),
    "not_inplace_copy": N_("merge_lora(model, inplace=False) changed the model it was given: merge a deep copy "
                           "(copy.deepcopy(model)) and leave the original ready to keep training."),
    "merge_none": N_("merge_lora should return the merged model."),
    "inplace_ignored": N_("merge_lora(model, inplace=True) left the model it was given unmerged: with inplace=True "
                          "merge into model itself (target = model), with inplace=False into a deep copy."),
}

# Hints the course's mistake table does not simulate end to end (each notebook there takes long to grade):
# tests/test_grading_lora.py names every one of them with a mutated solution.
UNIT_TESTED = "named by a mutated solution in tests/test_grading_lora.py"
NOT_SIMULATED = {
    "transposed": UNIT_TESTED,
    "rank_over_alpha": UNIT_TESTED,
    "dw_no_scale": UNIT_TESTED,
    "linear_only": UNIT_TESTED,
    "merged_in_place": UNIT_TESTED,
    "merge_transpose": UNIT_TESTED,
    "no_setattr": UNIT_TESTED,
    "added": UNIT_TESTED,
    "double_wrap": "no edit of the solution reaches it (named_children() yields each child once); it names "
                   "hand-written walks over named_modules() that also visit a new wrapper's inner layer",
    "rank_alpha": UNIT_TESTED,
    "swapped_counts": UNIT_TESTED,
    "state_dict": UNIT_TESTED,
    "per_module": UNIT_TESTED,
    "merge_dropped": UNIT_TESTED,
    "merge_none": UNIT_TESTED,
}


# --------------------------------------------------------------------------- where the student's code runs


def kernel_session():
    try:
        from .trusted import current_session
    except ImportError:  # a grader without nbgrader: only in-process objects
        return None
    return current_session.get()


def beside(student, module: nn.Module, *args, **kwargs):
    """``module`` where ``student``'s code runs: ``module`` itself in this process, a copy in their kernel.

    The copy is built there as ``type(module)(*args, **kwargs)`` with ``module``'s weights; its
    train/eval mode and ``requires_grad`` flags are the class's defaults.
    """
    if not is_remote(student):
        return module
    session = kernel_session()
    if session is None:
        raise GradingError(_("the grader has no kernel to build the test model in."))
    return session.ship(module, *args, **kwargs)


def notebook_name(student, name: str):
    """What the student's notebook binds to ``name`` (their own helper), or None."""
    if is_remote(student):
        session = kernel_session()
        found = session.resolve([name]).get(name) if session is not None else None
        return found if is_remote(found) else None
    functions = [student] if inspect.isfunction(student) else \
        [f for f in vars(student).values() if inspect.isfunction(f)] if inspect.isclass(student) else []
    for function in functions:
        if name in function.__globals__:
            return function.__globals__[name]
    return None


def type_name(obj) -> str:
    """The name of ``obj``'s class, also for an object in the kernel (as it reports it: for messages only)."""
    if is_remote(obj):
        mro = object.__getattribute__(obj, "_meta").get("mro") or []
        return str(mro[0]).rpartition(".")[2] if mro else "object"
    return type(obj).__name__


def _raised(call: str, exc: Exception) -> str:
    """The message for an exception ``call`` raised: the same words (and catalog entry) as ``call_checked``'s."""
    # TRANSLATORS: {what} names the call, e.g. "MultiHeadAttention.forward"; {error} is Python's own message.
    return _("{what} raised {error_type}: {error}").format(what=call, error_type=type(exc).__name__, error=exc)


def _parameters(module) -> dict:
    """name -> parameter (values and requires_grad) of a module here or in the kernel, each parameter once."""
    return dict(module.named_parameters())


def _snapshot(params: dict) -> dict:
    return {name: p.detach().clone() for name, p in params.items()}


def _load(module, values: dict, what: str):
    """Set some parameters of a module, here or in the kernel (a copy of a tensor never writes back).

    ``what`` is a class name or a text marked with ``N_`` ("the LoRA model"), translated here.
    """
    call_checked(f"{_(what)}.load_state_dict(...)", module.load_state_dict, values, strict=False)


def _tiny_gpt(seed=90):
    from llmkit_solutions.gpt import GPTModel

    torch.manual_seed(seed)
    return GPTModel(TINY).eval()


def _ids(seed, b=2, t=6):
    return torch.randint(0, TINY["vocab_size"], (b, t), generator=seeded(seed))


def _linear_paths(model):
    return [n for n, m in model.named_modules() if type(m) is nn.Linear]


def _same(a, b) -> bool:
    return a.shape == b.shape and torch.equal(a.detach(), b.detach())


def _lora_report(before: dict, after: dict, paths: list[str]) -> dict:
    """Where LoRA went, from parameter names and values alone.

    ``before``: the plain model's parameters; ``after``: the model's parameters now. For each linear
    layer ``path``: ``kept`` (its weight and bias still sit under its name, unchanged) and ``extra``
    (the other parameters under its name: the LoRA matrices). ``orphans`` are new parameters outside
    every linear layer's name (a wrapper put beside a layer).
    """
    layers, claimed = {}, set()
    for path in paths:
        own = [k for k in (f"{path}.weight", f"{path}.bias") if k in before]
        under = {k: v for k, v in after.items() if k.startswith(path + ".")}
        base = {k for k, v in under.items() if any(_same(v, before[o]) for o in own)}
        extra = sorted(set(under) - base)
        kept = sum(any(_same(under[k], before[o]) for k in base) for o in own) == len(own)
        out_features, in_features = before[f"{path}.weight"].shape
        layers[path] = {"kept": kept, "extra": extra, "numel": sum(under[k].numel() for k in extra),
                        "in": in_features, "out": out_features}
        claimed |= set(under)
    orphans = sorted(k for k in after if k not in before and k not in claimed)
    wrapped = [p for p, info in layers.items() if info["extra"]]
    extra = [k for info in layers.values() for k in info["extra"]] + orphans
    return {"layers": layers, "wrapped": wrapped, "bare": [p for p in paths if p not in wrapped],
            "orphans": orphans, "extra": extra}


def _randomize(module, names, shapes: dict, seed: int, scale: float = 1.0, what: str = N_("the layer")) -> dict:
    g = seeded(seed)
    values = {name: scale * torch.randn(shapes[name], generator=g) for name in sorted(names)}
    _load(module, values, what)
    return values


# --------------------------------------------------------------------------- LoRALayer


def _lora_params(params: dict, what: str):
    """The names of A (in_dim, rank) and B (rank, out_dim): by name, else by shape."""
    a = "A" if "A" in params else None
    b = "B" if "B" in params else None
    if a is None or b is None:
        by_shape = {tuple(p.shape): n for n, p in params.items()}
        a, b = by_shape.get((IN_DIM, RANK)), by_shape.get((RANK, OUT_DIM))
    if a is None or b is None or params[a].shape != (IN_DIM, RANK) or params[b].shape != (RANK, OUT_DIM):
        transposed = bool({(RANK, IN_DIM), (OUT_DIM, RANK)} & {tuple(p.shape) for p in params.values()})
        shapes = ", ".join(f"{n}{tuple(p.shape)}" for n, p in params.items()) or _("none")
        # TRANSLATORS: {what} is the call that built the layer; {shapes} lists its parameters as name(shape).
        detail = _("{what} has parameters [{shapes}]; expected A ({in_dim}, {rank}) and B ({rank}, {out_dim}).").format(
            what=what, shapes=shapes, in_dim=IN_DIM, rank=RANK, out_dim=OUT_DIM)
        raise GradingError(with_hint(detail, HINTS["transposed"] if transposed else None))
    return a, b


def _check_lora_layer(cls):
    from llmkit_solutions.lora import LoRALayer

    what = f"LoRALayer({IN_DIM}, {OUT_DIM}, rank={RANK}, alpha={ALPHA})"
    torch.manual_seed(80)
    layer = call_checked(what, cls, IN_DIM, OUT_DIM, RANK, ALPHA)
    params = _parameters(layer)
    a_name, b_name = _lora_params(params, what)
    a, b = params[a_name], params[b_name]
    if b.detach().abs().sum() != 0:
        raise GradingError(with_hint(_("{what}: B is not zero at initialisation.").format(what=what),
                                     HINTS["b_not_zero"]))
    if a.detach().abs().sum() == 0:
        raise GradingError(with_hint(_("{what}: A is all zeros.").format(what=what), HINTS["a_zero"]))
    if not (a.requires_grad and b.requires_grad):
        raise GradingError(_("{what}: A and B must be trainable nn.Parameter objects.").format(what=what))
    values = _randomize(layer, (a_name, b_name), {a_name: a.shape, b_name: b.shape}, 81, what="LoRALayer")
    reference = LoRALayer(IN_DIM, OUT_DIM, RANK, ALPHA)
    with torch.no_grad():
        reference.A.copy_(values[a_name])
        reference.B.copy_(values[b_name])
    x = torch.randn(3, 4, IN_DIM, generator=seeded(82))
    out = call_checked(f"{what}.forward", layer, x)
    with torch.no_grad():
        expected = reference(x)
    if not close(out, expected):
        with torch.no_grad():
            raw = x @ reference.A @ reference.B
        variants = {"no_scale": (raw, HINTS["no_scale"]), "alpha_only": (ALPHA * raw, HINTS["alpha_only"]),
                    "rank_over_alpha": (RANK / ALPHA * raw, HINTS["rank_over_alpha"])}
        fail_with_diagnosis(_("LoRALayer's output"), out, expected, variants)
    if not callable(getattr(layer, "delta_weight", None)):
        raise GradingError(_("LoRALayer has no delta_weight(); it returns the update as an nn.Linear weight "
                             "({out_dim}, {in_dim}), used for merging.").format(out_dim=OUT_DIM, in_dim=IN_DIM))
    got = call_checked("LoRALayer.delta_weight()", layer.delta_weight)
    with torch.no_grad():
        expected = reference.delta_weight()
    if not close(got, expected):
        if close(got, expected.T):
            raise GradingError(with_hint(_("delta_weight() has shape {shape}.").format(shape=tuple(got.shape)),
                                         HINTS["dw_transposed"]))
        variants = {"dw_no_scale": ((reference.A @ reference.B).T.detach(), HINTS["dw_no_scale"]),
                    "dw_transposed": (expected.T, HINTS["dw_transposed"])}
        fail_with_diagnosis("delta_weight()", got, expected, variants)


@single_threaded
def check_lora_layer(cls):
    """B zero and A random at init; output alpha/rank * x @ A @ B; delta_weight in nn.Linear's layout."""
    assert_defined_in_notebook(cls)
    _check_lora_layer(cls)


# --------------------------------------------------------------------------- LinearWithLoRA


def _own_lora_layer(cls, a, b):
    """The student's own LoRALayer(in, out, rank, alpha) holding A = ``a`` and B = ``b``, or None."""
    own_cls = notebook_name(cls, "LoRALayer")
    if own_cls is None:
        return None
    try:
        own = own_cls(IN_DIM, OUT_DIM, RANK, ALPHA)
        params = _parameters(own)
        a_name, b_name = _lora_params(params, "LoRALayer")
        own.load_state_dict({a_name: a, b_name: b}, strict=False)
    except Exception:  # noqa: BLE001 - a broken LoRALayer is graded in its own exercise
        return None
    return own


def _own_output(own, x):
    if own is None:
        return None
    try:
        out = own(x)
    except Exception:  # noqa: BLE001
        return None
    return out.detach() if isinstance(out, torch.Tensor) else None


def _own_delta(own):
    if own is None:
        return None
    try:
        delta = own.delta_weight()
    except Exception:  # noqa: BLE001
        return None
    return delta.detach() if isinstance(delta, torch.Tensor) else None


def _check_linear_with_lora(cls):
    from llmkit_solutions.lora import LinearWithLoRA

    torch.manual_seed(83)
    linear = nn.Linear(IN_DIM, OUT_DIM)
    what = f"LinearWithLoRA(nn.Linear({IN_DIM}, {OUT_DIM}), rank={RANK}, alpha={ALPHA})"
    wrapped = call_checked(what, cls, beside(cls, linear, IN_DIM, OUT_DIM), RANK, ALPHA)
    x = torch.randn(3, 4, IN_DIM, generator=seeded(84))
    with torch.no_grad():
        base = linear(x)
    out = call_checked(f"{what}.forward", wrapped, x)
    params = _parameters(wrapped)
    originals = [p for p in (linear.weight, linear.bias)]
    extra = {n: p for n, p in params.items() if not any(_same(p, o) for o in originals)}
    by_shape = {tuple(p.shape): n for n, p in extra.items()}
    a_name, b_name = by_shape.get((IN_DIM, RANK)), by_shape.get((RANK, OUT_DIM))
    own = _own_lora_layer(cls, extra[a_name], extra[b_name]) if a_name and b_name else None
    if not all(any(_same(p, o) for p in params.values()) for o in originals):
        raise GradingError(_("{what} does not hold the given layer's weights: keep the layer it is given "
                             "(self.linear = linear) and add LoRA beside it.").format(what=what))
    if not close(out, base):
        own_out = _own_output(own, x)
        if own_out is None or not close(out, base + own_out):  # else: the student's LoRALayer does not start at 0
            hint = HINTS["lora_only"] if close(out, torch.zeros_like(base)) else None
            message = _("{what} at initialisation (B = 0) should compute exactly what the wrapped layer computes "
                        "(largest difference {diff:.3g}).").format(what=what, diff=max_diff(out, base))
            raise GradingError(with_hint(message, hint))
    if sum(p.numel() for p in extra.values()) != RANK * (IN_DIM + OUT_DIM):
        # TRANSLATORS: {count} is how many parameters the student's wrapper adds; {expected} how many it should.
        detail = _("{what} adds {count} parameters; a rank-{rank} update of a {in_dim}->{out_dim} layer has "
                   "rank * (in + out) = {expected}.").format(
            what=what, count=sum(p.numel() for p in extra.values()), rank=RANK, in_dim=IN_DIM, out_dim=OUT_DIM,
            expected=RANK * (IN_DIM + OUT_DIM))
        raise GradingError(with_hint(detail, HINTS["rank_alpha"]))
    if a_name is None or b_name is None:
        shapes = ", ".join(str(tuple(p.shape)) for p in extra.values())
        detail = _("{what}'s LoRA parameters have shapes [{shapes}]; expected A ({in_dim}, {rank}) and "
                   "B ({rank}, {out_dim}).").format(what=what, shapes=shapes, in_dim=IN_DIM, rank=RANK, out_dim=OUT_DIM)
        raise GradingError(with_hint(detail, HINTS["transposed"]))
    values = _randomize(wrapped, (a_name, b_name), {a_name: extra[a_name].shape, b_name: extra[b_name].shape}, 85,
                        what="LinearWithLoRA")
    if own is not None:
        own.load_state_dict({n: values[m] for n, m in zip(_lora_params(_parameters(own), "LoRALayer"),
                                                          (a_name, b_name))}, strict=False)
    reference = LinearWithLoRA(nn.Linear(IN_DIM, OUT_DIM), RANK, ALPHA)
    reference.load_state_dict({"linear.weight": linear.weight, "linear.bias": linear.bias,
                               "lora.A": values[a_name], "lora.B": values[b_name]})
    with torch.no_grad():
        expected = reference(x)
    own_out = _own_output(own, x)
    own_expected = base + own_out if own_out is not None and own_out.shape == base.shape else None
    out = call_checked(f"{what}.forward", wrapped, x)
    if not close(out, expected) and not (own_expected is not None and close(out, own_expected)):
        with torch.no_grad():
            raw = x @ reference.lora.A @ reference.lora.B
            variants = {"lora_only": (reference.lora(x), HINTS["lora_only"]),
                        "linear_only": (base, HINTS["linear_only"]),
                        "no_scale": (base + raw, HINTS["no_scale"])}
            if own_out is not None:
                variants["own_lora_only"] = (own_out, HINTS["lora_only"])
        fail_with_diagnosis(_("LinearWithLoRA's output"), out, expected, variants)
    if not callable(getattr(wrapped, "merged_linear", None)):
        raise GradingError(_("LinearWithLoRA has no merged_linear(); it returns a plain nn.Linear with the update "
                             "folded into the weight."))
    weights_before = _snapshot(_parameters(wrapped))
    own_delta = _own_delta(own)
    try:
        merged = wrapped.merged_linear()
    except RuntimeError as exc:
        if own_delta is not None and own_delta.shape != (OUT_DIM, IN_DIM):
            return  # the student's delta_weight has the wrong layout: graded with LoRALayer
        if "size" in str(exc) or "shape" in str(exc):
            raise GradingError(with_hint(_raised("merged_linear()", exc), HINTS["merge_transpose"])) from exc
        raise GradingError(_raised("merged_linear()", exc)) from exc
    except Exception as exc:
        raise GradingError(_raised("merged_linear()", exc)) from exc
    if not isinstance(merged, nn.Linear):
        raise GradingError(_("merged_linear() should return an nn.Linear, got {type_name}.").format(
            type_name=type_name(merged)))
    weights_after = _parameters(wrapped)
    if set(weights_after) != set(weights_before) or \
            any(not _same(weights_before[k], weights_after[k]) for k in weights_before):
        raise GradingError(with_hint(_("merged_linear() changed the wrapper."), HINTS["merged_in_place"]))
    got = call_checked("merged_linear()(x)", merged, x)
    if close(got, expected):
        return
    if own_delta is not None and own_delta.shape == (OUT_DIM, IN_DIM):
        with torch.no_grad():
            if close(got, base + x @ own_delta.T):
                return  # merged with the student's own delta_weight: right here, graded with LoRALayer
    with torch.no_grad():
        unscaled = base + x @ reference.lora.A @ reference.lora.B
    fail_with_diagnosis(_("merged_linear()'s output"), got, expected,
                        {"no_scale": (unscaled, HINTS["no_scale"]), "merge_dropped": (base, HINTS["merge_dropped"])})


@single_threaded
def check_linear_with_lora(cls):
    """Equal to the base layer at init; linear(x) + lora(x) after training; merged_linear equivalent and new."""
    assert_defined_in_notebook(cls)
    _check_linear_with_lora(cls)


# --------------------------------------------------------------------------- replace_linear_with_lora


def _wrapping_problem(report: dict, what: str, wrapper_name: str = "LinearWithLoRA") -> str | None:
    """The first thing wrong with where LoRA went (a message naming the mistake), or None."""
    layers, wrapped, bare = report["layers"], report["wrapped"], report["bare"]
    if not wrapped:
        if report["orphans"]:
            # TRANSLATORS: here and below {what} is the situation, e.g. "after replace_linear_with_lora on a
            # GPTModel with 14 nn.Linear layers"; {name} and {layers} are layer paths (trf_blocks.0.att.W_query).
            return with_hint(_("{what}, the model still calls plain nn.Linear layers.").format(what=what),
                             HINTS["added"])
        return with_hint(_("{what}, no layer is a {wrapper_name}.").format(what=what, wrapper_name=wrapper_name),
                         HINTS["no_setattr"])
    if bare:
        if report["orphans"]:
            return with_hint(_("{what}, the model still calls plain nn.Linear layers ({layers}).").format(
                what=what, layers=", ".join(bare[:3])), HINTS["added"])
        nested = all("." in name for name in bare)
        shown = ", ".join(bare[:3]) + (" ..." if len(bare) > 3 else "")
        message = _("{what}, {count} are still plain nn.Linear ({layers}).").format(
            what=what, count=len(bare), layers=shown)
        return with_hint(message, HINTS["not_recursing"] if nested else None)
    for name in wrapped:
        info = layers[name]
        expected = RANK * (info["in"] + info["out"])
        if info["numel"] != expected:
            if info["numel"] > expected and info["numel"] % expected == 0:
                return with_hint(_("{what}, {name} holds {sets} sets of LoRA matrices.").format(
                    what=what, name=name, sets=info["numel"] // expected), HINTS["double_wrap"])
            return with_hint(_("{name} has {count} LoRA parameters, expected rank * (in + out) = {expected} for "
                               "rank={rank}.").format(name=name, count=info["numel"], expected=expected, rank=RANK),
                             HINTS["rank_alpha"])
        if not info["kept"]:
            return _("{what}, {name} no longer holds its own weights: wrap each layer as it is, "
                     "LinearWithLoRA(module, rank, alpha), keeping its weights.").format(what=what, name=name)
    return None


def _check_replace(fn):
    reference = _tiny_gpt()
    paths = _linear_paths(reference)
    before = _snapshot(_parameters(reference))
    model = beside(fn, reference, TINY)
    try:
        result = fn(model, RANK, ALPHA)
    except RuntimeError as exc:
        hint = HINTS["added"] if "changed size during iteration" in str(exc) else None
        raise GradingError(with_hint(_raised("replace_linear_with_lora", exc), hint)) from exc
    except Exception as exc:
        raise GradingError(_raised("replace_linear_with_lora", exc)) from exc
    report = _lora_report(before, _parameters(model), paths)
    if not report["wrapped"] and isinstance(result, nn.Module) and result is not model:
        raise GradingError(_("replace_linear_with_lora left the model it was given unchanged; change it in place "
                             "(setattr on the parent modules), as the book does."))
    problem = _wrapping_problem(report, _("after replace_linear_with_lora on a GPTModel with {count} nn.Linear "
                                          "layers").format(count=len(paths)))
    if problem:
        raise GradingError(problem)
    wrapper_cls = notebook_name(fn, "LinearWithLoRA")
    if wrapper_cls is not None:
        for path in (report["wrapped"][0], report["wrapped"][-1]):
            layer = model.get_submodule(path)
            if not isinstance(layer, wrapper_cls):
                # TRANSLATORS: {path} is a layer's path in the model; {type_name} the class found there.
                raise GradingError(_("after replace_linear_with_lora, {path} is a {type_name}, not your "
                                     "LinearWithLoRA: wrap each layer with the class from the exercise above.").format(
                    path=path, type_name=type_name(layer)))


@single_threaded
def check_replace_linear_with_lora(fn):
    """Every nn.Linear, nested or not, replaced in place by a wrapper that keeps its weights and adds rank-r LoRA."""
    assert_defined_in_notebook(fn)
    _check_replace(fn)


# --------------------------------------------------------------------------- count_trainable, freezing


def _tie_and_freeze(model):
    """The head shares the token embedding's weight (one parameter, two names); two parts are frozen."""
    model.out_head = model.tok_emb
    model.tok_emb.requires_grad_(False)
    model.trf_blocks[0].requires_grad_(False)


def _check_count(fn):
    from llmkit_solutions.lora import count_trainable

    model = _tiny_gpt()
    there = beside(fn, model, TINY)
    _tie_and_freeze(model)
    if there is not model:
        _tie_and_freeze(there)
    result = call_checked("count_trainable", fn, there)
    expected = count_trainable(model)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise GradingError(_("count_trainable should return (trainable, total), got {result!r}.").format(
            result=result))
    try:
        got = tuple(int(v) for v in result)
    except (TypeError, ValueError):
        raise GradingError(_("count_trainable should return two whole numbers, got {result!r}.").format(
            result=result)) from None
    if got == expected:
        return
    per_module = sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False))
    every_module = sum(p.numel() for m in model.modules() for p in m.parameters())
    state = sum(t.numel() for t in model.state_dict().values())
    # TRANSLATORS: {got} is the student's (trainable, total) pair; {trainable} and {total} the right counts.
    message = _("count_trainable gives {got} for a model with {trainable:,} trainable of {total:,}.").format(
        got=got, trainable=expected[0], total=expected[1])
    if got == expected[::-1]:
        hint = HINTS["swapped_counts"]
    elif got[0] == expected[1]:
        hint = HINTS["counts_all"]
    elif state in got:
        hint = HINTS["state_dict"]
    elif every_module in got and every_module != per_module:
        hint = HINTS["per_module"]
    else:
        hint = None
    raise GradingError(with_hint(message, hint))


@single_threaded
def check_count_trainable(fn):
    """(trainable, total) parameter counts, each parameter once, trainable meaning requires_grad."""
    assert_defined_in_notebook(fn)
    _check_count(fn)


def _wrapped_by(fn, name: str, call):
    """The report of a fresh tiny GPT after ``call(function, model)`` of the notebook's ``name``, or None."""
    own = notebook_name(fn, name)
    if own is None:
        return None
    reference = _tiny_gpt()
    before = _snapshot(_parameters(reference))
    model = beside(fn, reference, TINY)
    try:
        call(own, model)
        return _lora_report(before, _parameters(model), _linear_paths(reference))
    except Exception:  # noqa: BLE001 - a broken helper is graded in its own exercise
        return None


def _check_freeze(fn):
    reference = _tiny_gpt()
    paths = _linear_paths(reference)
    before = _snapshot(_parameters(reference))
    model = beside(fn, reference, TINY)
    result = call_checked("freeze_and_add_lora", fn, model, RANK, ALPHA)
    if result is not None and result is not model:
        model = result
    params = _parameters(model)
    report = _lora_report(before, params, paths)
    if len(report["wrapped"]) != len(paths):
        own = _wrapped_by(fn, "replace_linear_with_lora", lambda f, m: f(m, RANK, ALPHA))
        if own is None or own["wrapped"] != report["wrapped"]:  # else: wrapped as the student's own replace does
            raise GradingError(_("freeze_and_add_lora wrapped {wrapped} of {total} nn.Linear layers; call "
                                 "replace_linear_with_lora(model, rank, alpha) after freezing.").format(
                wrapped=len(report["wrapped"]), total=len(paths)))
    extra = set(report["extra"])
    trainable = {n for n, p in params.items() if p.requires_grad}
    if trainable - extra:
        raise GradingError(with_hint(_("freeze_and_add_lora left base weights trainable."), HINTS["not_frozen"]))
    if not trainable:
        raise GradingError(with_hint(_("freeze_and_add_lora left nothing trainable."), HINTS["frozen_after"]))
    if trainable != extra:
        raise GradingError(_("after freeze_and_add_lora exactly the LoRA matrices (A and B of every wrapper) "
                             "should be trainable."))


@single_threaded
def check_freeze_and_add_lora(fn):
    """Base weights frozen first, then every nn.Linear wrapped: only the LoRA matrices train."""
    assert_defined_in_notebook(fn)
    _check_freeze(fn)


# --------------------------------------------------------------------------- merge_lora


def _lora_gpt(fn, wrapper_cls, seed):
    """A tiny GPT (where ``fn`` runs) whose every nn.Linear is wrapped by the student's ``wrapper_cls``, with
    random (non-zero) LoRA weights; returns (model, the plain model's state dict, the LoRA weights, report)."""
    reference = _tiny_gpt()
    paths = _linear_paths(reference)
    plain = {k: v.detach().clone() for k, v in reference.state_dict().items()}
    before = _snapshot(_parameters(reference))
    model = beside(fn, reference, TINY)
    for path in paths:
        parent_path, _dot, name = path.rpartition(".")
        parent = model.get_submodule(parent_path) if parent_path else model
        wrapper = call_checked(f"LinearWithLoRA(model.{path}, {RANK}, {ALPHA})", wrapper_cls, getattr(parent, name),
                               RANK, ALPHA)
        setattr(parent, name, wrapper)
    params = _parameters(model)
    report = _lora_report(before, params, paths)
    shapes = {name: params[name].shape for name in report["extra"]}
    values = _randomize(model, report["extra"], shapes, seed, scale=0.3, what=N_("the LoRA model"))
    return model, plain, values, report


def _merged_state(plain: dict, report: dict, lora: dict) -> dict:
    """The plain state dict with each layer's W + alpha/rank * (A @ B).T (A, B: the LoRA matrices under its name)."""
    merged = dict(plain)
    for path, info in report["layers"].items():
        by_shape = {tuple(lora[k].shape): lora[k] for k in info["extra"] if k in lora}
        a, b = by_shape.get((info["in"], RANK)), by_shape.get((RANK, info["out"]))
        if a is not None and b is not None:
            merged[f"{path}.weight"] = plain[f"{path}.weight"] + ALPHA / RANK * (a @ b).T
    return merged


def _own_merged(fn, wrapper_cls, seed, paths):
    """What the student's own merged_linear() gives for each layer of the LoRA model: {path: state dict}."""
    try:
        model = _lora_gpt(fn, wrapper_cls, seed)[0]
        return {path: dict(model.get_submodule(path).merged_linear().state_dict()) for path in paths}
    except Exception:  # noqa: BLE001 - a broken merged_linear is graded with LinearWithLoRA
        return None


def _gpt_output(state: dict, x):
    from llmkit_solutions.gpt import GPTModel

    model = GPTModel(TINY).eval()
    model.load_state_dict(state)
    with torch.no_grad():
        return model(x)


def _check_merge(fn):
    wrapper_cls = notebook_name(fn, "LinearWithLoRA")
    if wrapper_cls is None:
        raise GradingError(_("merge_lora is graded on a model wrapped with your LinearWithLoRA, which this "
                             "notebook does not define."))
    x = _ids(92)
    for inplace in (True, False):
        model, plain, lora, report = _lora_gpt(fn, wrapper_cls, 93)
        paths = list(report["layers"])
        snapshot = dict(model.state_dict())
        what = f"merge_lora(model, inplace={inplace})"
        merged = call_checked(what, fn, model, inplace=inplace)
        if merged is None:
            raise GradingError(with_hint(_("{what} returned None.").format(what=what), HINTS["merge_none"]))
        state = dict(call_checked(f"{what}.state_dict()", merged.state_dict))
        left = [p for p in paths if any(k.startswith(p + ".") and k not in plain for k in state)]
        if left:
            hint = HINTS["merge_not_recursing"] if all("." in n for n in left) else None
            # TRANSLATORS: {what} is the call, e.g. merge_lora(model, inplace=True); {layers} are layer paths.
            message = _("after {what} {count} layers are still LinearWithLoRA ({layers}).").format(
                what=what, count=len(left), layers=", ".join(left[:3]))
            raise GradingError(with_hint(message, hint))
        if set(state) != set(plain):
            extra = sorted(set(state) ^ set(plain))[:3]
            # TRANSLATORS: {names} are state-dict keys that one model has and the other lacks.
            raise GradingError(_("the merged model's state dict differs from a plain GPTModel's ({names}): "
                                 "each LinearWithLoRA must become a plain nn.Linear under the same name.").format(
                names=", ".join(extra)))
        got = _gpt_output(state, x)
        expected = _gpt_output(_merged_state(plain, report, lora), x)
        if not close(got, expected) and not _as_own_merged_linear(fn, wrapper_cls, paths, plain, got, x):
            fail_with_diagnosis(_("the output of the model from {what}").format(what=what), got, expected,
                                {"merge_dropped": (_gpt_output(plain, x), HINTS["merge_dropped"])})
        after = dict(model.state_dict())
        if not inplace:
            unchanged = set(after) == set(snapshot) and all(_same(after[k], snapshot[k]) for k in snapshot)
            if merged is model or not unchanged:
                raise GradingError(with_hint(_("{what} changed its input.").format(what=what),
                                             HINTS["not_inplace_copy"]))
        elif set(after) != set(plain):  # inplace=True: the model given is the one merged
            still = sorted(k for k in after if k not in plain)[:2]
            # TRANSLATORS: {names} are state-dict keys of LoRA matrices left in the model.
            raise GradingError(with_hint(_("after {what} the model given still holds {names}.").format(
                what=what, names=", ".join(still)), HINTS["inplace_ignored"]))


def _as_own_merged_linear(fn, wrapper_cls, paths, plain, got, x) -> bool:
    """Whether ``got`` is the output of the model merged with the student's own merged_linear()."""
    own = _own_merged(fn, wrapper_cls, 93, paths)
    if own is None:
        return False
    state = dict(plain)
    for path, layer in own.items():
        state.update({f"{path}.{k}": v for k, v in layer.items()})
    try:
        return close(got, _gpt_output(state, x))
    except Exception:  # noqa: BLE001 - e.g. a merged_linear with other shapes
        return False


@single_threaded
def check_merge_lora(fn):
    """Every LinearWithLoRA folded into a plain nn.Linear, same outputs; inplace=False leaves the input alone."""
    assert_defined_in_notebook(fn)
    _check_merge(fn)
