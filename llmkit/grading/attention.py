"""Hidden-test checks for stage 4: the attention classes.

Each ``check_*`` takes the student's class, builds it with seeded arguments, copies its weights into
the reference, compares outputs on seeded random inputs, and on a mismatch names the known mistake
whose output the student's matches.
"""

from __future__ import annotations

import torch

from . import GradingError, assert_defined_in_notebook, call_checked, close, fail_with_diagnosis, seeded, transplant

HINTS = {
    "no_scale": "the scores are not divided by sqrt(d_k) = keys.shape[-1] ** 0.5 before the softmax.",
    "scale_d_out": "the scores are scaled by sqrt(d_out); in multi-head attention scale by sqrt(head_dim).",
    "no_mask": "there is no causal mask: fill the scores above the diagonal with -inf before the softmax.",
    "mask_diag0": "the mask is shifted: it hides the token itself; use torch.triu(ones, diagonal=1).",
    "mask_diag2": "the mask is shifted: each token sees one future token; use torch.triu(ones, diagonal=1).",
    "softmax_dim": "the softmax normalises the wrong dimension: use dim=-1, so each query's weights sum to 1.",
    "mask_after": "the mask is applied after the softmax, so rows no longer sum to 1; mask the scores with -inf first.",
    "no_out_proj": "out_proj is not applied to the concatenated heads.",
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
        raise GradingError(f"{name} gives different outputs for the same input in eval mode: dropout is active "
                           "in eval; use nn.Dropout (model.eval() switches it off) instead of F.dropout(training=True).")


def _check_causal(module, x, name):
    module.eval()
    changed = x.clone()
    changed[:, -2:] += 1.0
    if not torch.allclose(module(x)[:, :-2], module(changed)[:, :-2], atol=1e-5):
        raise GradingError(f"{name}: changing the last tokens changed earlier outputs; the mask must hide the "
                           "future (fill scores above the diagonal with -inf).")


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
        fail_with_diagnosis("SelfAttention_v1's output", out, expected, _variants(q, k, v, False, lambda t: t))


def check_self_attention_v2(cls):
    from llmkit_solutions.attention import SelfAttention_v2

    assert_defined_in_notebook(cls)
    for qkv_bias in (False, True):
        torch.manual_seed(12)
        student = call_checked("SelfAttention_v2(5, 4)", cls, 5, 4, qkv_bias=qkv_bias)
        reference = SelfAttention_v2(5, 4, qkv_bias=qkv_bias)
        transplant(student, reference)
        x = torch.rand(7, 5, generator=seeded(2))
        out = call_checked("SelfAttention_v2.forward", student, x)
        expected = reference(x)
        if not close(out, expected):
            q, k, v = reference.W_query(x), reference.W_key(x), reference.W_value(x)
            fail_with_diagnosis("SelfAttention_v2's output", out, expected, _variants(q, k, v, False, lambda t: t))


def check_causal_attention(cls):
    from llmkit_solutions.attention import CausalAttention

    assert_defined_in_notebook(cls)
    torch.manual_seed(13)
    student = call_checked("CausalAttention(5, 4, 8, 0.0)", cls, 5, 4, 8, 0.0).eval()
    reference = CausalAttention(5, 4, 8, 0.0).eval()
    transplant(student, reference)
    x = torch.rand(3, 8, 5, generator=seeded(3))
    _check_dropout_off_in_eval(call_checked("CausalAttention(5, 4, 8, 0.5)", cls, 5, 4, 8, 0.5), x, "CausalAttention")
    out = call_checked("CausalAttention.forward", student, x)
    expected = reference(x)
    if not close(out, expected):
        q, k, v = reference.W_query(x), reference.W_key(x), reference.W_value(x)
        fail_with_diagnosis("CausalAttention's output", out, expected, _variants(q, k, v, True, lambda t: t))
    short = x[:, :5]
    if not close(call_checked("CausalAttention on 5 of 8 tokens", student, short), reference(short)):
        raise GradingError("CausalAttention fails on inputs shorter than context_length: slice the mask with "
                           "[:num_tokens, :num_tokens].")


def check_multi_head_attention_wrapper(cls):
    from llmkit_solutions.attention import MultiHeadAttentionWrapper

    assert_defined_in_notebook(cls)
    torch.manual_seed(14)
    student = call_checked("MultiHeadAttentionWrapper(5, 3, 8, 0.0, num_heads=2)", cls, 5, 3, 8, 0.0,
                           num_heads=2).eval()
    reference = MultiHeadAttentionWrapper(5, 3, 8, 0.0, num_heads=2).eval()
    transplant(student, reference)
    x = torch.rand(2, 8, 5, generator=seeded(4))
    out = call_checked("MultiHeadAttentionWrapper.forward", student, x)
    expected = reference(x)
    if out.shape != expected.shape:
        raise GradingError(f"MultiHeadAttentionWrapper output has shape {tuple(out.shape)}, expected "
                           f"{tuple(expected.shape)}: concatenate the heads along the last dimension (num_heads * d_out).")
    if not close(out, expected):
        fail_with_diagnosis("MultiHeadAttentionWrapper's output", out, expected)


def check_multi_head_attention(cls):
    from llmkit_solutions.attention import MultiHeadAttention

    assert_defined_in_notebook(cls)
    d_in, d_out, context, heads = 6, 8, 10, 2
    x = torch.rand(2, context, d_in, generator=seeded(6))
    _check_dropout_off_in_eval(call_checked("MultiHeadAttention(6, 8, 10, 0.5, num_heads=2)", cls, d_in, d_out,
                                            context, 0.5, num_heads=heads), x, "MultiHeadAttention")
    for qkv_bias in (False, True):
        torch.manual_seed(15)
        student = call_checked("MultiHeadAttention(6, 8, 10, 0.0, num_heads=2)", cls, d_in, d_out, context, 0.0,
                               num_heads=heads, qkv_bias=qkv_bias).eval()
        reference = MultiHeadAttention(d_in, d_out, context, 0.0, num_heads=heads, qkv_bias=qkv_bias).eval()
        transplant(student, reference)
        x = torch.rand(2, context, d_in, generator=seeded(5))
        out = call_checked("MultiHeadAttention.forward", student, x)
        expected = reference(x)
        if not close(out, expected):
            b, T, hd = 2, context, d_out // heads
            split = lambda t: t.view(b, T, heads, hd).transpose(1, 2)
            q, k, v = split(reference.W_query(x)), split(reference.W_key(x)), split(reference.W_value(x))
            merge = lambda t: reference.out_proj(t.transpose(1, 2).reshape(b, T, d_out))
            variants = _variants(q, k, v, True, merge, d_out=d_out)
            variants["no_out_proj"] = (attend(q, k, v).transpose(1, 2).reshape(b, T, d_out), HINTS["no_out_proj"])
            fail_with_diagnosis("MultiHeadAttention's output", out, expected, variants)
    _check_causal(student, x, "MultiHeadAttention")
    short = x[:, :4]
    if call_checked("MultiHeadAttention on 4 of 10 tokens", student, short).shape != (2, 4, d_out):
        raise GradingError("MultiHeadAttention must accept fewer tokens than context_length.")
