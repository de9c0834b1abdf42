"""Hidden-test checks for stage 4: the attention classes.

Each ``check_*`` takes the student's class, builds it with seeded arguments, copies its weights into
the reference, compares outputs on seeded random inputs, and on a mismatch names the known mistake
whose output the student's matches.
"""

from __future__ import annotations

import torch

from llmkit.i18n.runtime import N_, _

from . import (GradingError, assert_defined_in_notebook, call_checked, close, diagnose, fail_with_diagnosis, seeded,
               transplant, with_hint)

HINTS = {
    "no_scale": N_("the scores are not divided by sqrt(d_k) = keys.shape[-1] ** 0.5 before the softmax."),
    "scale_d_out": N_("the scores are scaled by sqrt(d_out); in multi-head attention scale by sqrt(head_dim)."),
    "no_mask": N_("there is no causal mask: fill the scores above the diagonal with -inf before the softmax."),
    "mask_diag0": N_("the mask is shifted: it hides the token itself; use torch.triu(ones, diagonal=1)."),
    "mask_diag2": N_("the mask is shifted: each token sees one future token; use torch.triu(ones, diagonal=1)."),
    "softmax_dim": N_("the softmax normalises the wrong dimension: use dim=-1, so each query's weights sum to 1."),
    "mask_after": N_("the mask is applied after the softmax, so rows no longer sum to 1; mask the scores with -inf "
                     "first."),
    "no_out_proj": N_("out_proj is not applied to the concatenated heads."),
    "mask_not_sliced": N_("the mask is used whole, so inputs shorter than context_length fail; slice it to the tokens "
                          "there are: self.mask.bool()[:num_tokens, :num_tokens]."),
    "qkv_bias_ignored": N_("with qkv_bias=True the query, key and value projections still have no bias; pass the "
                           "argument on: nn.Linear(d_in, d_out, bias=qkv_bias) (and to every head you build)."),
    "qkv_bias_always": N_("with qkv_bias=False the query, key and value projections have a bias anyway; pass the "
                          "argument on: nn.Linear(d_in, d_out, bias=qkv_bias)."),
    "out_proj_bias": N_("out_proj has no bias; in the book it always has one, whatever qkv_bias says: "
                        "nn.Linear(d_out, d_out)."),
    "dropout_in_eval": N_("dropout is active in eval mode; use the module's nn.Dropout (model.eval() switches it off), "
                          "not F.dropout(..., training=True)."),
    "dropout_missing": N_("dropout is never applied in train mode; apply self.dropout to the attention weights right "
                          "after the softmax."),
    "dropout_on_output": N_("dropout is applied to the output (weights @ values) instead of the attention weights; "
                            "apply self.dropout to the weights right after the softmax."),
    "dropout_on_scores": N_("dropout is applied to the scores before the softmax instead of the attention weights; "
                            "apply self.dropout to the weights right after the softmax."),
}


def attend(q, k, v, causal=True, scale=True, diagonal=1, softmax_dim=-1, mask_after=False, scale_dim=None):
    """Reference attention with switchable mistakes; q, k, v are (..., T, head_dim)."""
    scores = q @ k.transpose(-2, -1)  # (..., T, T)
    T = scores.shape[-1]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=diagonal)
    if causal and not mask_after:
        scores = scores.masked_fill(future, -torch.inf)
    if scale:
        scores = scores / (scale_dim or k.shape[-1]) ** 0.5
    weights = torch.softmax(scores, dim=softmax_dim)
    if causal and mask_after:
        weights = weights.masked_fill(future, 0.0)
    return weights @ v


def _variants(q, k, v, causal, finish, d_out=None):
    """Outputs of the known-wrong variants, each passed through ``finish`` (head merge, out_proj)."""
    cases = {"no_scale": dict(scale=False), "softmax_dim": dict(softmax_dim=-2)}
    if causal:
        cases.update(no_mask=dict(causal=False), mask_diag0=dict(diagonal=0), mask_diag2=dict(diagonal=2),
                     mask_after=dict(mask_after=True))
    if d_out is not None and d_out != q.shape[-1]:
        cases["scale_d_out"] = dict(scale_dim=d_out)
    base = dict(causal=causal)
    return {name: (finish(attend(q, k, v, **{**base, **kw})), HINTS[name]) for name, kw in cases.items()}


def _check_dropout_off_in_eval(module, x, name):
    module.eval()
    first, second = call_checked(f"{name}.forward", module, x), module(x)
    if not torch.allclose(first, second, equal_nan=True):
        raise GradingError(with_hint(_("{name} gives different outputs for the same input in eval mode.")
                                     .format(name=name), HINTS["dropout_in_eval"]))


def _check_parameters(student, reference, name: str, qkv_bias: bool) -> None:
    """Every parameter the book's layer has, and no other: a bias that is missing or extra is named as such.

    Counted in numbers, not tensors, so a fused QKV projection (one bias of 3 * d_out) counts like three.
    """
    def bias_size(module, part=""):
        return sum(p.numel() for n, p in module.named_parameters() if p.dim() == 1 and part in n)

    have, want = bias_size(student), bias_size(reference)
    if have == want:
        return
    qkv_size = sum(p.shape[0] for n, p in reference.named_parameters()
                   if n.endswith(("W_query.weight", "W_key.weight", "W_value.weight")))
    out_size = bias_size(reference, "out_proj")
    # TRANSLATORS: {have} and {want} count bias numbers (entries of the bias vectors), yours and the book's.
    found = _("{name}(..., qkv_bias={qkv_bias}) has {have} bias numbers, the book's layer {want}").format(
        name=name, qkv_bias=qkv_bias, have=have, want=want)
    for mistake, applies in (("qkv_bias_ignored", qkv_bias and have == want - qkv_size),
                             ("qkv_bias_always", not qkv_bias and have == want + qkv_size),
                             ("out_proj_bias", out_size and have == want - out_size)):
        if applies:
            raise GradingError(with_hint(found + ".", HINTS[mistake]))
    layers = ", ".join(n for n, p in reference.named_parameters() if p.dim() == 1) or _("none")
    # TRANSLATORS: {found} is the sentence above ("... has 4 bias numbers, the book's layer 12"); {layers} names
    # the book's bias parameters.
    raise GradingError(_("{found} (biases: {layers}); check which of your nn.Linear layers have bias=True.").format(
        found=found, layers=layers))


DROPOUT_SEED = 2024


def _train_mode_variants(q, k, v, p: float, finish) -> dict:
    """Outputs, in train mode, of dropout placed on the wrong tensor (or nowhere), drawing the random numbers the
    student's module drew: the same seed and the same tensor shapes."""
    def run(where):
        torch.manual_seed(DROPOUT_SEED)
        drop = lambda t: torch.nn.functional.dropout(t, p, training=True)  # noqa: E731
        scores = q @ k.transpose(-2, -1)
        T = scores.shape[-1]
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), -torch.inf)
        if where == "scores":
            scores = drop(scores)
        context = torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1) @ v
        out = finish(drop(context) if where == "context" else context)
        return drop(out) if where == "output" else out

    return {"dropout_missing": (run(None), HINTS["dropout_missing"]),
            "dropout_on_scores": (run("scores"), HINTS["dropout_on_scores"]),
            "dropout_on_context": (run("context"), HINTS["dropout_on_output"]),
            "dropout_on_output": (run("output"), HINTS["dropout_on_output"])}


def _check_dropout_placement(student, reference, x, name: str, qkv_of, finish, p: float) -> None:
    """Dropout in train mode, under the same random numbers as the reference: it must hit the attention weights.

    Both modules hold the same weights; the seed is set before each forward, so a student's dropout on the
    weights draws exactly the reference's mask, and dropout anywhere else gives another output.
    """
    student.train()
    reference.train()
    torch.manual_seed(DROPOUT_SEED)
    out = call_checked(_("{name}.forward in train mode").format(name=name), student, x)
    torch.manual_seed(DROPOUT_SEED)
    expected = reference(x)
    if close(out, expected):
        return
    with torch.no_grad():
        q, k, v = qkv_of(x)
        hint = diagnose(out, _train_mode_variants(q, k, v, p, finish))
    detail = _("{name} in train mode (dropout={rate}, the same random numbers as the reference) differs from the "
               "reference, though it matches with dropout off").format(name=name, rate=p)
    raise GradingError(with_hint(detail + ".", hint) if hint else
                       _("{detail}; apply self.dropout once, to the attention weights right after the softmax.")
                       .format(detail=detail))


def _check_causal(module, x, name):
    module.eval()
    changed = x.clone()
    changed[:, -2:] += 1.0
    if not torch.allclose(module(x)[:, :-2], module(changed)[:, :-2], atol=1e-5):
        raise GradingError(_("{name}: changing the last tokens changed earlier outputs; the mask must hide the "
                             "future (fill scores above the diagonal with -inf).").format(name=name))


def check_self_attention_v1(cls):
    from llmkit_solutions.attention import SelfAttention_v1

    assert_defined_in_notebook(cls)
    torch.manual_seed(11)
    student = call_checked("SelfAttention_v1(5, 4)", cls, 5, 4)
    reference = SelfAttention_v1(5, 4)
    transplant(student, reference)
    x = torch.rand(7, 5, generator=seeded(1))
    out = call_checked("SelfAttention_v1.forward", student, x)
    expected = reference(x)
    if not close(out, expected):
        q, k, v = x @ reference.W_query, x @ reference.W_key, x @ reference.W_value
        fail_with_diagnosis(_("SelfAttention_v1's output"), out, expected, _variants(q, k, v, False, lambda t: t))


def check_self_attention_v2(cls):
    from llmkit_solutions.attention import SelfAttention_v2

    assert_defined_in_notebook(cls)
    for qkv_bias in (False, True):
        torch.manual_seed(12)
        student = call_checked(f"SelfAttention_v2(5, 4, qkv_bias={qkv_bias})", cls, 5, 4, qkv_bias=qkv_bias)
        reference = SelfAttention_v2(5, 4, qkv_bias=qkv_bias)
        _check_parameters(student, reference, "SelfAttention_v2", qkv_bias)
        transplant(student, reference)
        x = torch.rand(7, 5, generator=seeded(2))
        out = call_checked("SelfAttention_v2.forward", student, x)
        expected = reference(x)
        if not close(out, expected):
            q, k, v = reference.W_query(x), reference.W_key(x), reference.W_value(x)
            fail_with_diagnosis(_("SelfAttention_v2's output"), out, expected, _variants(q, k, v, False, lambda t: t))


def _short_inputs(student, reference, x, name: str) -> None:
    """Fewer tokens than context_length: the mask must be cut to the tokens there are."""
    count = x.shape[1]
    try:
        out = call_checked(_("{name} on {count} tokens (context_length is larger)").format(name=name, count=count),
                           student, x)
    except GradingError as err:
        raise GradingError(with_hint(str(err), HINTS["mask_not_sliced"])) from None
    if tuple(out.shape) != tuple(reference(x).shape) or not close(out, reference(x)):
        raise GradingError(with_hint(_("{name} on {count} tokens differs from the reference.").format(
            name=name, count=count), HINTS["mask_not_sliced"]))


def check_causal_attention(cls):
    from llmkit_solutions.attention import CausalAttention

    assert_defined_in_notebook(cls)
    x = torch.rand(3, 8, 5, generator=seeded(3))
    _check_dropout_off_in_eval(call_checked("CausalAttention(5, 4, 8, 0.5)", cls, 5, 4, 8, 0.5), x, "CausalAttention")
    for qkv_bias in (False, True):
        torch.manual_seed(13)
        student = call_checked(f"CausalAttention(5, 4, 8, 0.0, qkv_bias={qkv_bias})", cls, 5, 4, 8, 0.0,
                               qkv_bias=qkv_bias).eval()
        reference = CausalAttention(5, 4, 8, 0.0, qkv_bias=qkv_bias).eval()
        _check_parameters(student, reference, "CausalAttention", qkv_bias)
        transplant(student, reference)
        out = call_checked("CausalAttention.forward", student, x)
        expected = reference(x)
        if not close(out, expected):
            q, k, v = reference.W_query(x), reference.W_key(x), reference.W_value(x)
            fail_with_diagnosis(_("CausalAttention's output"), out, expected, _variants(q, k, v, True, lambda t: t))
        _short_inputs(student, reference, x[:, :5], "CausalAttention")
    torch.manual_seed(16)
    student = call_checked("CausalAttention(5, 4, 8, 0.5)", cls, 5, 4, 8, 0.5)
    reference = CausalAttention(5, 4, 8, 0.5)
    transplant(student, reference)
    qkv = lambda t: (reference.W_query(t), reference.W_key(t), reference.W_value(t))  # noqa: E731
    _check_dropout_placement(student, reference, x, "CausalAttention", qkv, lambda t: t, 0.5)


def check_multi_head_attention_wrapper(cls):
    from llmkit_solutions.attention import MultiHeadAttentionWrapper

    assert_defined_in_notebook(cls)
    x = torch.rand(2, 8, 5, generator=seeded(4))
    for qkv_bias in (False, True):
        torch.manual_seed(14)
        student = call_checked(f"MultiHeadAttentionWrapper(5, 3, 8, 0.0, num_heads=2, qkv_bias={qkv_bias})", cls,
                               5, 3, 8, 0.0, num_heads=2, qkv_bias=qkv_bias).eval()
        reference = MultiHeadAttentionWrapper(5, 3, 8, 0.0, num_heads=2, qkv_bias=qkv_bias).eval()
        _check_parameters(student, reference, "MultiHeadAttentionWrapper", qkv_bias)
        transplant(student, reference)
        out = call_checked("MultiHeadAttentionWrapper.forward", student, x)
        expected = reference(x)
        if out.shape != expected.shape:
            raise GradingError(_("MultiHeadAttentionWrapper output has shape {got}, expected {want}: concatenate "
                                 "the heads along the last dimension (num_heads * d_out).").format(
                got=tuple(out.shape), want=tuple(expected.shape)))
        if not close(out, expected):
            fail_with_diagnosis(_("MultiHeadAttentionWrapper's output"), out, expected)


def check_multi_head_attention(cls):
    from llmkit_solutions.attention import MultiHeadAttention

    assert_defined_in_notebook(cls)
    d_in, d_out, context, heads = 6, 8, 10, 2
    b, T, hd = 2, context, d_out // heads
    x = torch.rand(2, context, d_in, generator=seeded(6))
    _check_dropout_off_in_eval(call_checked("MultiHeadAttention(6, 8, 10, 0.5, num_heads=2)", cls, d_in, d_out,
                                            context, 0.5, num_heads=heads), x, "MultiHeadAttention")
    split = lambda t: t.view(b, T, heads, hd).transpose(1, 2)  # noqa: E731
    for qkv_bias in (False, True):
        torch.manual_seed(15)
        student = call_checked(f"MultiHeadAttention(6, 8, 10, 0.0, num_heads=2, qkv_bias={qkv_bias})", cls, d_in,
                               d_out, context, 0.0, num_heads=heads, qkv_bias=qkv_bias).eval()
        reference = MultiHeadAttention(d_in, d_out, context, 0.0, num_heads=heads, qkv_bias=qkv_bias).eval()
        _check_parameters(student, reference, "MultiHeadAttention", qkv_bias)
        transplant(student, reference)
        x = torch.rand(2, context, d_in, generator=seeded(5))
        out = call_checked("MultiHeadAttention.forward", student, x)
        expected = reference(x)
        if not close(out, expected):
            q, k, v = split(reference.W_query(x)), split(reference.W_key(x)), split(reference.W_value(x))
            merge = lambda t: reference.out_proj(t.transpose(1, 2).reshape(b, T, d_out))  # noqa: E731
            variants = _variants(q, k, v, True, merge, d_out=d_out)
            variants["no_out_proj"] = (attend(q, k, v).transpose(1, 2).reshape(b, T, d_out), HINTS["no_out_proj"])
            fail_with_diagnosis(_("MultiHeadAttention's output"), out, expected, variants)
    _check_causal(student, x, "MultiHeadAttention")
    short = x[:, :4]
    try:
        shape = call_checked(_("MultiHeadAttention on 4 of 10 tokens"), student, short).shape
    except GradingError as err:
        raise GradingError(with_hint(str(err), HINTS["mask_not_sliced"])) from None
    if shape != (2, 4, d_out):
        raise GradingError(_("MultiHeadAttention must accept fewer tokens than context_length."))
    torch.manual_seed(17)
    student = call_checked("MultiHeadAttention(6, 8, 10, 0.5, num_heads=2)", cls, d_in, d_out, context, 0.5,
                           num_heads=heads)
    reference = MultiHeadAttention(d_in, d_out, context, 0.5, num_heads=heads)
    transplant(student, reference)
    qkv = lambda t: (split(reference.W_query(t)), split(reference.W_key(t)), split(reference.W_value(t)))  # noqa: E731
    merge = lambda t: reference.out_proj(t.transpose(1, 2).reshape(b, T, d_out))  # noqa: E731
    _check_dropout_placement(student, reference, x, "MultiHeadAttention", qkv, merge, 0.5)
