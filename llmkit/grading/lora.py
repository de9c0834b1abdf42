"""Hidden-test checks for stage 7: LoRA layers, wrapping a model, counting, freezing and merging.

Each ``check_*`` builds the student's class or runs the student's function beside the reference on a
seeded tiny GPT, and on a mismatch names the mistake (B not zero at init, alpha/rank scaling missing,
the wrapper added instead of replacing the layer, nested layers not reached, base weights not frozen,
...). Functions and classes that use earlier exercises' answers are graded as written and, when that
fails, again with the reference answers in their place (see ``graded_with_fallback``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import GradingError, assert_defined_in_notebook, call_checked, close, fail_with_diagnosis, max_diff, seeded
from .pretraining import graded_with_fallback, single_threaded

TINY = {"vocab_size": 40, "context_length": 8, "emb_dim": 8, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0,
        "qkv_bias": True}
IN_DIM, OUT_DIM, RANK, ALPHA = 6, 5, 2, 6  # alpha/rank = 3, alpha = 6, 1 and rank/alpha differ: mistakes show

HINTS = {
    "b_not_zero": "B must start at zero (torch.zeros(rank, out_dim)), so a freshly wrapped layer computes exactly "
                  "what the base layer computed; only training moves it away from zero.",
    "a_zero": "A must start random (nn.init.kaiming_uniform_(A, a=math.sqrt(5))): with A and B both zero, both "
              "gradients are zero and nothing ever trains.",
    "transposed": "A is (in_dim, rank) and B is (rank, out_dim), used as x @ A @ B.",
    "no_scale": "the update is not scaled: multiply x @ A @ B by alpha / rank.",
    "alpha_only": "the update is scaled by alpha; scale it by alpha / rank, so changing the rank does not change "
                  "the update's size.",
    "rank_over_alpha": "the scaling is upside down: use alpha / rank.",
    "dw_transposed": "delta_weight must have nn.Linear's weight layout (out_dim, in_dim): transpose A @ B.",
    "dw_no_scale": "delta_weight is not scaled: multiply A @ B by alpha / rank, as forward does.",
    "lora_only": "the output is only the LoRA update: add it to the base layer's output, linear(x) + lora(x).",
    "linear_only": "the LoRA update is not added: return linear(x) + lora(x).",
    "merged_in_place": "merged_linear changed the wrapped layer itself: merge into a copy "
                       "(copy.deepcopy(self.linear)), otherwise the wrapper adds the update twice.",
    "merge_transpose": "the update A @ B is (in_dim, out_dim); transpose it to nn.Linear's (out_dim, in_dim) "
                       "before adding it to the weight.",
    "no_setattr": "no layer was replaced: put the wrapper back into the parent module under the same name, "
                  "setattr(model, name, LinearWithLoRA(module, rank, alpha)); rebinding the loop variable "
                  "changes nothing.",
    "added": "the wrapper was added beside the layer instead of replacing it, so the model still calls the plain "
             "nn.Linear: setattr(model, name, LinearWithLoRA(module, rank, alpha)) under the layer's own name.",
    "not_recursing": "nested layers were not reached: call replace_linear_with_lora(module, rank, alpha) on every "
                     "child that is not an nn.Linear (blocks, attention, feed-forward ...).",
    "double_wrap": "some layers were wrapped twice: do not recurse into the LinearWithLoRA you just created.",
    "rank_alpha": "pass rank and alpha through to LinearWithLoRA(module, rank, alpha).",
    "not_frozen": "the base weights still train: set requires_grad = False on every parameter of the model "
                  "before adding LoRA.",
    "frozen_after": "nothing is trainable, the LoRA matrices neither: freeze the model first, then add LoRA, "
                    "so only the new A and B train.",
    "counts_all": "frozen parameters are counted as trainable: count only parameters with p.requires_grad.",
    "swapped_counts": "the numbers are in the wrong order: return (trainable, total).",
    "state_dict": "state_dict() also holds buffers (the causal mask) and repeats tied weights: count "
                  "model.parameters(), which lists each parameter once.",
    "per_module": "parameters are counted once per enclosing module: sum over model.parameters() (each parameter "
                  "once), not over every module's parameters().",
    "merge_not_recursing": "LoRA layers inside the blocks were not merged: walk the whole model (recursively) and "
                           "replace every LinearWithLoRA by its merged nn.Linear.",
    "merge_dropped": "the merged layers lost the LoRA update: add the scaled A @ B (transposed) to the weight.",
    "not_inplace_copy": "merge_lora(model, inplace=False) changed the model it was given: merge a deep copy "
                        "(copy.deepcopy(model)) and leave the original ready to keep training.",
    "merge_none": "merge_lora should return the merged model.",
}


def _tiny_gpt(seed=90):
    from llmkit_solutions.gpt import GPTModel

    torch.manual_seed(seed)
    return GPTModel(TINY).eval()


def _ids(seed, b=2, t=6):
    return torch.randint(0, TINY["vocab_size"], (b, t), generator=seeded(seed))


def _linear_paths(model):
    return [n for n, m in model.named_modules() if type(m) is nn.Linear]


def _wrapper_class(obj):
    from llmkit_solutions.lora import LinearWithLoRA

    globs = getattr(obj, "__globals__", {})
    found = globs.get("LinearWithLoRA")
    return found if isinstance(found, type) else LinearWithLoRA


def _extra_params(wrapper):
    """The wrapper's own (LoRA) parameters: everything but those of its wrapped nn.Linear children."""
    inner = {id(p) for m in wrapper.modules() if type(m) is nn.Linear for p in m.parameters()}
    return [p for p in wrapper.parameters() if id(p) not in inner]


def _randomize(params, seed):
    g = seeded(seed)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=g))


# --------------------------------------------------------------------------- LoRALayer


def _lora_params(layer, what):
    params = dict(layer.named_parameters())
    a, b = params.get("A"), params.get("B")
    if a is None or b is None:
        by_shape = {tuple(p.shape): p for p in params.values()}
        a, b = by_shape.get((IN_DIM, RANK)), by_shape.get((RANK, OUT_DIM))
    if a is None or b is None or a.shape != (IN_DIM, RANK) or b.shape != (RANK, OUT_DIM):
        shapes = ", ".join(f"{n}{tuple(p.shape)}" for n, p in params.items()) or "none"
        transposed = bool({(RANK, IN_DIM), (OUT_DIM, RANK)} & {tuple(p.shape) for p in params.values()})
        raise GradingError(f"{what} has parameters [{shapes}]; expected A ({IN_DIM}, {RANK}) and B ({RANK}, {OUT_DIM})."
                           + (f" Likely mistake: {HINTS['transposed']}" if transposed else ""))
    return a, b


def _check_lora_layer(cls):
    from llmkit_solutions.lora import LoRALayer

    what = f"LoRALayer({IN_DIM}, {OUT_DIM}, rank={RANK}, alpha={ALPHA})"
    torch.manual_seed(80)
    layer = call_checked(what, cls, IN_DIM, OUT_DIM, RANK, ALPHA)
    a, b = _lora_params(layer, what)
    if b.detach().abs().sum() != 0:
        raise GradingError(f"{what}: B is not zero at initialisation. Likely mistake: {HINTS['b_not_zero']}")
    if a.detach().abs().sum() == 0:
        raise GradingError(f"{what}: A is all zeros. Likely mistake: {HINTS['a_zero']}")
    if not (a.requires_grad and b.requires_grad):
        raise GradingError(f"{what}: A and B must be trainable nn.Parameter objects.")
    _randomize([a, b], 81)
    reference = LoRALayer(IN_DIM, OUT_DIM, RANK, ALPHA)
    with torch.no_grad():
        reference.A.copy_(a)
        reference.B.copy_(b)
    x = torch.randn(3, 4, IN_DIM, generator=seeded(82))
    out = call_checked(f"{what}.forward", layer, x)
    expected = reference(x)
    if not close(out, expected):
        with torch.no_grad():
            raw = x @ reference.A @ reference.B
        variants = {"no_scale": (raw, HINTS["no_scale"]), "alpha_only": (ALPHA * raw, HINTS["alpha_only"]),
                    "rank_over_alpha": (RANK / ALPHA * raw, HINTS["rank_over_alpha"])}
        fail_with_diagnosis("LoRALayer's output", out, expected, variants)
    if not callable(getattr(layer, "delta_weight", None)):
        raise GradingError("LoRALayer has no delta_weight(); it returns the update as an nn.Linear weight "
                           f"({OUT_DIM}, {IN_DIM}), used for merging.")
    got = call_checked("LoRALayer.delta_weight()", layer.delta_weight)
    with torch.no_grad():
        expected = reference.delta_weight()
    if not close(got, expected):
        if close(got, expected.T):
            raise GradingError(f"delta_weight() has shape {tuple(got.shape)}. Likely mistake: {HINTS['dw_transposed']}")
        variants = {"dw_no_scale": ((reference.A @ reference.B).T.detach(), HINTS["dw_no_scale"]),
                    "dw_transposed": (expected.T, HINTS["dw_transposed"])}
        fail_with_diagnosis("delta_weight()", got, expected, variants)


@single_threaded
def check_lora_layer(cls):
    """B zero and A random at init; output alpha/rank * x @ A @ B; delta_weight in nn.Linear's layout."""
    assert_defined_in_notebook(cls)
    _check_lora_layer(cls)


# --------------------------------------------------------------------------- LinearWithLoRA


def _check_linear_with_lora(cls):
    from llmkit_solutions.lora import LinearWithLoRA

    torch.manual_seed(83)
    linear = nn.Linear(IN_DIM, OUT_DIM)
    what = f"LinearWithLoRA(nn.Linear({IN_DIM}, {OUT_DIM}), rank={RANK}, alpha={ALPHA})"
    wrapped = call_checked(what, cls, linear, RANK, ALPHA)
    x = torch.randn(3, 4, IN_DIM, generator=seeded(84))
    with torch.no_grad():
        base = linear(x)
        out = call_checked(f"{what}.forward", wrapped, x)
    if not close(out, base):
        hint = HINTS["lora_only"] if close(out, torch.zeros_like(base)) else None
        message = (f"{what} at initialisation (B = 0) should compute exactly what the wrapped layer computes "
                   f"(largest difference {max_diff(out, base):.3g}).")
        raise GradingError(f"{message} Likely mistake: {hint}" if hint else message)
    extra = _extra_params(wrapped)
    if sum(p.numel() for p in extra) != RANK * (IN_DIM + OUT_DIM):
        raise GradingError(f"{what} adds {sum(p.numel() for p in extra)} parameters; a rank-{RANK} update of a "
                           f"{IN_DIM}->{OUT_DIM} layer has rank * (in + out) = {RANK * (IN_DIM + OUT_DIM)}. "
                           f"Likely mistake: {HINTS['rank_alpha']}")
    reference = LinearWithLoRA(copy.deepcopy(linear), RANK, ALPHA)
    by_shape = {tuple(p.shape): p for p in extra}
    a, b = by_shape.get((IN_DIM, RANK)), by_shape.get((RANK, OUT_DIM))
    if a is None or b is None:
        shapes = ", ".join(str(tuple(p.shape)) for p in extra)
        raise GradingError(f"{what}'s LoRA parameters have shapes [{shapes}]; expected A ({IN_DIM}, {RANK}) and "
                           f"B ({RANK}, {OUT_DIM}). Likely mistake: {HINTS['transposed']}")
    _randomize([a, b], 85)
    with torch.no_grad():
        reference.lora.A.copy_(a)
        reference.lora.B.copy_(b)
    with torch.no_grad():
        out = wrapped(x)
        expected = reference(x)
        if not close(out, expected):
            raw = x @ reference.lora.A @ reference.lora.B
            variants = {"lora_only": (reference.lora(x), HINTS["lora_only"]),
                        "linear_only": (reference.linear(x), HINTS["linear_only"]),
                        "no_scale": (reference.linear(x) + raw, HINTS["no_scale"])}
            fail_with_diagnosis("LinearWithLoRA's output", out, expected, variants)
    if not callable(getattr(wrapped, "merged_linear", None)):
        raise GradingError("LinearWithLoRA has no merged_linear(); it returns a plain nn.Linear with the update "
                           "folded into the weight.")
    weights_before = [p.detach().clone() for p in wrapped.parameters()]
    try:
        merged = wrapped.merged_linear()
    except RuntimeError as exc:
        if "size" in str(exc) or "shape" in str(exc):
            raise GradingError(f"merged_linear() raised RuntimeError: {exc} Likely mistake: "
                               f"{HINTS['merge_transpose']}") from exc
        raise GradingError(f"merged_linear() raised RuntimeError: {exc}") from exc
    except Exception as exc:
        raise GradingError(f"merged_linear() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(merged, nn.Linear):
        raise GradingError(f"merged_linear() should return an nn.Linear, got {type(merged).__name__}.")
    if any(not torch.equal(a, b.detach()) for a, b in zip(weights_before, wrapped.parameters())):
        raise GradingError(f"merged_linear() changed the wrapper. Likely mistake: {HINTS['merged_in_place']}")
    with torch.no_grad():
        got = merged(x)
        if not close(got, expected):
            unscaled = reference.linear(x) + x @ reference.lora.A @ reference.lora.B
            fail_with_diagnosis("merged_linear()'s output", got, expected,
                                {"no_scale": (unscaled, HINTS["no_scale"]),
                                 "merge_dropped": (reference.linear(x), HINTS["merge_dropped"])})


@single_threaded
def check_linear_with_lora(cls):
    """Equal to the base layer at init; linear(x) + lora(x) after training; merged_linear equivalent and new."""
    from llmkit_solutions.lora import LoRALayer

    assert_defined_in_notebook(cls)
    graded_with_fallback(_check_linear_with_lora, cls, {"LoRALayer": LoRALayer})


# --------------------------------------------------------------------------- replace_linear_with_lora


def _wrapping_report(model, wrapper_cls):
    """(wrappers, plain nn.Linear layers outside any wrapper), by dotted name."""
    modules = dict(model.named_modules())
    wrappers = [n for n, m in modules.items() if isinstance(m, wrapper_cls)]
    bare = [n for n, m in modules.items()
            if type(m) is nn.Linear and not isinstance(modules[n.rpartition(".")[0]], wrapper_cls)]
    return wrappers, bare


def _check_replace(fn):
    wrapper_cls = _wrapper_class(fn)
    model = _tiny_gpt()
    paths = _linear_paths(model)
    x = _ids(91)
    with torch.no_grad():
        before = model(x)
    try:
        result = fn(model, RANK, ALPHA)
    except RuntimeError as exc:
        hint = HINTS["added"] if "changed size during iteration" in str(exc) else None
        detail = f"replace_linear_with_lora raised RuntimeError: {exc}"
        raise GradingError(f"{detail} Likely mistake: {hint}" if hint else detail) from exc
    except Exception as exc:
        raise GradingError(f"replace_linear_with_lora raised {type(exc).__name__}: {exc}") from exc
    wrappers, bare = _wrapping_report(model, wrapper_cls)
    if not wrappers and isinstance(result, nn.Module) and result is not model:
        raise GradingError("replace_linear_with_lora left the model it was given unchanged; change it in place "
                           "(setattr on the parent modules), as the book does.")
    what = f"after replace_linear_with_lora on a GPTModel with {len(paths)} nn.Linear layers"
    if not wrappers:
        raise GradingError(f"{what}, no layer is a {wrapper_cls.__name__}. Likely mistake: {HINTS['no_setattr']}")
    if len(wrappers) > len(paths):
        raise GradingError(f"{what}, there are {len(wrappers)} wrappers. Likely mistake: {HINTS['double_wrap']}")
    if bare:
        if len(wrappers) >= len(paths):
            raise GradingError(f"{what}, the model still calls plain nn.Linear layers ({', '.join(bare[:3])}). "
                               f"Likely mistake: {HINTS['added']}")
        nested = all("." in name for name in bare)
        shown = ", ".join(bare[:3]) + (" ..." if len(bare) > 3 else "")
        message = f"{what}, {len(bare)} are still plain nn.Linear ({shown})."
        raise GradingError(f"{message} Likely mistake: {HINTS['not_recursing']}" if nested else message)
    modules = dict(model.named_modules())
    for name in wrappers:
        extra = sum(p.numel() for p in _extra_params(modules[name]))
        inner = next(m for m in modules[name].modules() if type(m) is nn.Linear)
        if extra != RANK * (inner.in_features + inner.out_features):
            raise GradingError(f"{name} has {extra} LoRA parameters, expected rank * (in + out) = "
                               f"{RANK * (inner.in_features + inner.out_features)} for rank={RANK}. "
                               f"Likely mistake: {HINTS['rank_alpha']}")
    with torch.no_grad():
        after = model(x)
    if not close(after, before):
        raise GradingError("the model's output changed when LoRA was added (B is zero at init, so it must not): "
                           "wrap each layer as it is, keeping its weights.")


@single_threaded
def check_replace_linear_with_lora(fn):
    """Every nn.Linear, nested or not, replaced in place by a LinearWithLoRA; the output unchanged at init."""
    from llmkit_solutions.lora import LinearWithLoRA, LoRALayer

    assert_defined_in_notebook(fn)
    graded_with_fallback(_check_replace, fn, {"LinearWithLoRA": LinearWithLoRA, "LoRALayer": LoRALayer})


# --------------------------------------------------------------------------- count_trainable, freezing


def _check_count(fn):
    from llmkit_solutions.lora import count_trainable

    model = _tiny_gpt()
    model.out_head.weight = model.tok_emb.weight  # a tied weight: one parameter, listed once
    for p in list(model.tok_emb.parameters()) + list(model.trf_blocks[0].parameters()):
        p.requires_grad = False
    result = call_checked("count_trainable", fn, model)
    expected = count_trainable(model)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise GradingError(f"count_trainable should return (trainable, total), got {result!r}.")
    got = tuple(int(v) for v in result)
    if got == expected:
        return
    per_module = sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False))
    every_module = sum(p.numel() for m in model.modules() for p in m.parameters())
    state = sum(t.numel() for t in model.state_dict().values())
    message = f"count_trainable gives {got} for a model with {expected[0]:,} trainable of {expected[1]:,}"
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
    raise GradingError(f"{message}. Likely mistake: {hint}" if hint else f"{message}.")


@single_threaded
def check_count_trainable(fn):
    """(trainable, total) parameter counts, each parameter once, trainable meaning requires_grad."""
    assert_defined_in_notebook(fn)
    _check_count(fn)


def _check_freeze(fn):
    wrapper_cls = _wrapper_class(fn)
    model = _tiny_gpt()
    paths = _linear_paths(model)
    base = {id(p) for p in model.parameters()}
    result = call_checked("freeze_and_add_lora", fn, model, RANK, ALPHA)
    if result is not None and result is not model:
        model = result
    wrappers, _ = _wrapping_report(model, wrapper_cls)
    if len(wrappers) != len(paths):
        raise GradingError(f"freeze_and_add_lora wrapped {len(wrappers)} of {len(paths)} nn.Linear layers; "
                           "call replace_linear_with_lora(model, rank, alpha) after freezing.")
    trainable = [p for p in model.parameters() if p.requires_grad]
    if any(id(p) in base for p in trainable):
        raise GradingError(f"freeze_and_add_lora left base weights trainable. Likely mistake: {HINTS['not_frozen']}")
    if not trainable:
        raise GradingError(f"freeze_and_add_lora left nothing trainable. Likely mistake: {HINTS['frozen_after']}")
    modules = dict(model.named_modules())
    lora = {id(p) for name in wrappers for p in _extra_params(modules[name])}
    if {id(p) for p in trainable} != lora:
        raise GradingError("after freeze_and_add_lora exactly the LoRA matrices (A and B of every wrapper) "
                           "should be trainable.")


@single_threaded
def check_freeze_and_add_lora(fn):
    """Base weights frozen first, then every nn.Linear wrapped: only the LoRA matrices train."""
    from llmkit_solutions.lora import LinearWithLoRA, LoRALayer, replace_linear_with_lora

    assert_defined_in_notebook(fn)
    graded_with_fallback(_check_freeze, fn, {"replace_linear_with_lora": replace_linear_with_lora,
                                             "LinearWithLoRA": LinearWithLoRA, "LoRALayer": LoRALayer})


# --------------------------------------------------------------------------- merge_lora


def _lora_gpt(wrapper_cls, seed):
    """A tiny GPT whose every nn.Linear is wrapped by ``wrapper_cls``, with random (non-zero) LoRA weights."""
    model = _tiny_gpt()

    def wrap(module):
        for name, child in module.named_children():
            if type(child) is nn.Linear:
                setattr(module, name, wrapper_cls(child, RANK, ALPHA))
            else:
                wrap(child)

    wrap(model)
    extra = [p for m in model.modules() if isinstance(m, wrapper_cls) for p in _extra_params(m)]
    _randomize(extra, seed)
    for p in extra:
        p.data.mul_(0.3)
    return model.eval()


def _check_merge(fn):
    from llmkit_solutions.gpt import GPTModel

    wrapper_cls = _wrapper_class(fn)
    x = _ids(92)
    plain_keys = set(GPTModel(TINY).state_dict())
    for inplace in (True, False):
        model = _lora_gpt(wrapper_cls, 93)
        with torch.no_grad():
            expected = model(x)
        base = copy.deepcopy(model)
        for name, module in list(base.named_modules()):
            if isinstance(module, wrapper_cls):
                parent, _, child = name.rpartition(".")
                setattr(base.get_submodule(parent) if parent else base, child,
                        next(m for m in module.modules() if type(m) is nn.Linear))
        what = f"merge_lora(model, inplace={inplace})"
        merged = call_checked(what, fn, model, inplace=inplace)
        if merged is None:
            raise GradingError(f"{what} returned None. Likely mistake: {HINTS['merge_none']}")
        left = [n for n, m in merged.named_modules() if isinstance(m, wrapper_cls)]
        if left:
            hint = HINTS["merge_not_recursing"] if all("." in n for n in left) else None
            message = f"after {what} {len(left)} layers are still {wrapper_cls.__name__} ({', '.join(left[:3])})."
            raise GradingError(f"{message} Likely mistake: {hint}" if hint else message)
        with torch.no_grad():
            got = merged(x)
            if not close(got, expected):
                dropped = base(x)
                fail_with_diagnosis(f"the output of the model from {what}", got, expected,
                                    {"merge_dropped": (dropped, HINTS["merge_dropped"])})
        if set(merged.state_dict()) != plain_keys:
            extra = sorted(set(merged.state_dict()) ^ plain_keys)[:3]
            raise GradingError(f"the merged model's state dict differs from a plain GPTModel's ({', '.join(extra)}): "
                               "each LinearWithLoRA must become a plain nn.Linear under the same name.")
        if not inplace:
            still = [n for n, m in model.named_modules() if isinstance(m, wrapper_cls)]
            with torch.no_grad():
                unchanged = close(model(x), expected)
            if merged is model or not still or not unchanged:
                raise GradingError(f"{what} changed its input. Likely mistake: {HINTS['not_inplace_copy']}")


@single_threaded
def check_merge_lora(fn):
    """Every LinearWithLoRA folded into a plain nn.Linear, same outputs; inplace=False leaves the input alone."""
    from llmkit_solutions.lora import LinearWithLoRA, LoRALayer

    assert_defined_in_notebook(fn)
    graded_with_fallback(_check_merge, fn, {"LinearWithLoRA": LinearWithLoRA, "LoRALayer": LoRALayer})
