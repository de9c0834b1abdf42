"""The attention checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.attention import (
    check_causal_attention,
    check_multi_head_attention,
    check_multi_head_attention_wrapper,
    check_self_attention_v1,
    check_self_attention_v2,
)
from llmkit_solutions import attention as ref
from tests.grading_helpers import mutate, notebook, reference_source

HEADER = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
MHA = reference_source(ref.MultiHeadAttention).replace("        check_attention_args(d_in, d_out, num_heads)\n", "")


def student(code, name):
    return notebook(HEADER + code)[name]


@pytest.mark.parametrize("check, cls", [
    (check_self_attention_v1, ref.SelfAttention_v1), (check_self_attention_v2, ref.SelfAttention_v2),
    (check_causal_attention, ref.CausalAttention), (check_multi_head_attention, ref.MultiHeadAttention),
])
def test_the_reference_written_in_a_notebook_passes(check, cls):
    code = reference_source(cls).replace("        check_attention_args(d_in, d_out, num_heads)\n", "")
    check(student(code, cls.__name__))


def test_wrapper_written_in_a_notebook_passes():
    code = reference_source(ref.CausalAttention) + reference_source(ref.MultiHeadAttentionWrapper)
    check_multi_head_attention_wrapper(student(code, "MultiHeadAttentionWrapper"))


FUSED_EINSUM = '''
class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.h, self.d = num_heads, d_out // num_heads
        self.qkv = nn.Linear(d_in, 3 * d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("causal", torch.tril(torch.ones(context_length, context_length, dtype=torch.bool)))

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.h, self.d).unbind(dim=2)
        att = torch.einsum("bqhd,bkhd->bhqk", q, k) / self.d ** 0.5
        att = att.masked_fill(~self.causal[:T, :T], float("-inf")).softmax(dim=-1)
        y = torch.einsum("bhqk,bkhd->bqhd", self.drop(att), v).reshape(B, T, self.h * self.d)
        return self.out_proj(y)
'''


def test_a_fused_qkv_einsum_solution_earns_full_marks():
    check_multi_head_attention(student(FUSED_EINSUM, "MultiHeadAttention"))


@pytest.mark.parametrize("old, new, hint", [
    ("weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)", "weights = torch.softmax(scores, dim=-1)",
     "not divided by sqrt(d_k)"),
    ("        scores = scores.masked_fill(future, -torch.inf)\n", "", "no causal mask"),
    ("diagonal=1", "diagonal=0", "hides the token itself"),
    ("diagonal=1", "diagonal=2", "sees one future token"),
    ("keys.shape[-1] ** 0.5, dim=-1)", "keys.shape[-1] ** 0.5, dim=-2)", "wrong dimension"),
    ("return self.out_proj(context)", "return context", "out_proj is not applied"),
    ("weights = self.dropout(weights)", "weights = F.dropout(weights, self.dropout.p)", "dropout is active in eval"),
    # Dropout on the wrong tensor shows only in train mode, under the random numbers the reference draws.
    ("        weights = self.dropout(weights)\n", "", "dropout is never applied in train mode"),
    ("weights = torch.softmax(scores / keys.shape[-1] ** 0.5, dim=-1)\n        weights = self.dropout(weights)",
     "weights = torch.softmax(self.dropout(scores) / keys.shape[-1] ** 0.5, dim=-1)", "applied to the scores"),
    # Every parameter: a missing or extra bias is named, never blamed on the layer names.
    ("self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)", "self.W_key = nn.Linear(d_in, d_out, bias=False)",
     "bias numbers"),
    ("self.out_proj = nn.Linear(d_out, d_out)", "self.out_proj = nn.Linear(d_out, d_out, bias=qkv_bias)",
     "out_proj has no bias"),
])
def test_mha_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_multi_head_attention(student(mutate(MHA, old, new), "MultiHeadAttention"))


def test_causal_attention_scaled_by_d_out_in_mha_is_named():
    code = mutate(MHA, "keys.shape[-1] ** 0.5", "self.d_out ** 0.5")
    with pytest.raises(GradingError, match="scale by sqrt\\(head_dim\\)"):
        check_multi_head_attention(student(code, "MultiHeadAttention"))


def test_causal_attention_mask_not_sliced_is_named():
    code = mutate(reference_source(ref.CausalAttention), "self.mask.bool()[:num_tokens, :num_tokens]",
                  "self.mask.bool()[:8, :8]")
    with pytest.raises(GradingError, match="slice it to the tokens there are"):
        check_causal_attention(student(code, "CausalAttention"))


@pytest.mark.parametrize("old, new, hint", [
    ("bias=qkv_bias", "bias=False", "still have no bias"),
    ("bias=qkv_bias", "bias=True", "have a bias anyway"),
])
def test_qkv_bias_mistakes_are_named_not_blamed_on_layer_names(old, new, hint):
    code = reference_source(ref.CausalAttention).replace(old, new)
    with pytest.raises(GradingError, match=re.escape(hint)) as caught:
        check_causal_attention(student(code, "CausalAttention"))
    assert "layer names" not in str(caught.value)


def test_dropout_on_the_output_of_a_causal_head_is_named():
    code = mutate(reference_source(ref.CausalAttention), "weights = self.dropout(weights)\n        return weights @ values",
                  "return self.dropout(weights @ values)")
    with pytest.raises(GradingError, match="dropout is applied to the output"):
        check_causal_attention(student(code, "CausalAttention"))


def test_importing_the_reference_earns_nothing():
    ns = notebook("from llmkit_solutions.attention import MultiHeadAttention")
    with pytest.raises(GradingError, match="imported from llmkit_solutions.attention"):
        check_multi_head_attention(ns["MultiHeadAttention"])


def test_subclassing_or_wrapping_the_reference_earns_nothing():
    sub = notebook("import llmkit_solutions.attention as a\nclass MultiHeadAttention(a.MultiHeadAttention):\n    pass")
    with pytest.raises(GradingError, match="subclasses MultiHeadAttention"):
        check_multi_head_attention(sub["MultiHeadAttention"])
    wrapped = notebook(HEADER + '''
from llmkit_solutions.attention import MultiHeadAttention as Ref
class MultiHeadAttention(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.inner = Ref(*args, **kwargs)
    def forward(self, x):
        return self.inner(x)
''')
    with pytest.raises(GradingError, match="calls the reference solution Ref"):
        check_multi_head_attention(wrapped["MultiHeadAttention"])
    via_module = notebook(HEADER + '''
import llmkit_solutions
class SelfAttention_v1(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.inner = llmkit_solutions.attention.SelfAttention_v1(d_in, d_out)
    def forward(self, x):
        return self.inner(x)
''')
    with pytest.raises(GradingError, match="calls the reference solution"):
        check_self_attention_v1(via_module["SelfAttention_v1"])


def test_a_crashing_student_class_is_a_failed_check_not_a_crash():
    code = mutate(MHA, "b, num_tokens, _ = x.shape", "b, num_tokens = x.shape")
    with pytest.raises(GradingError, match="raised ValueError"):
        check_multi_head_attention(student(code, "MultiHeadAttention"))
