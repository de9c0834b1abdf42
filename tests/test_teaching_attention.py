"""The book's teaching attention classes, against their own contract."""

import pytest
import torch

from llmkit.errors import LLMKitError
from llmkit_solutions.attention import (
    CausalAttention,
    MultiHeadAttention,
    MultiHeadAttentionWrapper,
    SelfAttention_v1,
    SelfAttention_v2,
)

X = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))  # (num_tokens, d_in)


def test_self_attention_v1_has_raw_parameter_matrices_and_is_not_causal():
    module = SelfAttention_v1(5, 3)
    assert [n for n, _ in module.named_parameters()] == ["W_query", "W_key", "W_value"]
    assert module.W_query.shape == (5, 3)
    out = module(X)
    changed = X.clone()
    changed[-1] += 1.0
    assert out.shape == (6, 3)
    assert not torch.allclose(module(changed)[0], out[0]), "the first token must see the last one"


def test_self_attention_v2_equals_v1_with_transplanted_weights():
    v2 = SelfAttention_v2(5, 3)
    v1 = SelfAttention_v1(5, 3)
    with torch.no_grad():
        for name in ("W_query", "W_key", "W_value"):
            getattr(v1, name).copy_(getattr(v2, name).weight.T)  # Linear stores (out, in)
    torch.testing.assert_close(v1(X), v2(X))
    assert SelfAttention_v2(5, 3, qkv_bias=True).W_key.bias is not None


def test_causal_attention_masks_the_future_and_drops_weights_in_training():
    module = CausalAttention(5, 3, context_length=6, dropout=0.0)
    assert torch.equal(module.mask, torch.triu(torch.ones(6, 6), diagonal=1))
    batch = X.unsqueeze(0)
    changed = batch.clone()
    changed[0, 4:] += 1.0
    torch.testing.assert_close(module(changed)[0, :4], module(batch)[0, :4])
    dropping = CausalAttention(5, 3, 6, dropout=0.9).train()
    assert not torch.allclose(dropping(batch), dropping(batch))


def test_wrapper_concatenates_independent_heads():
    wrapper = MultiHeadAttentionWrapper(5, 3, 6, 0.0, num_heads=2)
    batch = X.unsqueeze(0)
    out = wrapper(batch)
    assert out.shape == (1, 6, 6)
    torch.testing.assert_close(out, torch.cat([wrapper.heads[0](batch), wrapper.heads[1](batch)], dim=-1))


def test_one_head_multi_head_attention_is_causal_attention_plus_out_proj():
    mha = MultiHeadAttention(5, 3, 6, 0.0, num_heads=1)
    single = CausalAttention(5, 3, 6, 0.0)
    single.load_state_dict({k: v for k, v in mha.state_dict().items() if not k.startswith("out_proj")})
    batch = X.unsqueeze(0)
    torch.testing.assert_close(mha(batch), mha.out_proj(single(batch)))


def test_multi_head_attention_scales_by_head_dim():
    mha = MultiHeadAttention(5, 4, 6, 0.0, num_heads=2)
    assert mha.head_dim == 2
    with pytest.raises(LLMKitError, match="divisible"):
        MultiHeadAttention(5, 5, 6, 0.0, num_heads=2)
