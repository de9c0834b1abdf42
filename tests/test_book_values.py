"""The values the book prints, reproduced by the reference with the book's seeds."""

import pytest
import torch

from llmkit_solutions.attention import (
    CausalAttention,
    MultiHeadAttention,
    MultiHeadAttentionWrapper,
    SelfAttention_v1,
    SelfAttention_v2,
)
from llmkit_solutions.gpt import GPT_CONFIG_124M, GPTModel, generate, generate_text_simple

# "Your journey starts with one step", as 3-d embeddings in the book's chapter 3.
INPUTS = torch.tensor([[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
                       [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]])
BATCH = torch.stack((INPUTS, INPUTS))


def test_self_attention_v1_seed_123():
    torch.manual_seed(123)
    out = SelfAttention_v1(3, 2)(INPUTS)
    torch.testing.assert_close(out[0], torch.tensor([0.2996, 0.8053]), atol=1e-4, rtol=0)


def test_self_attention_v2_seed_789():
    torch.manual_seed(789)
    out = SelfAttention_v2(3, 2)(INPUTS)
    torch.testing.assert_close(out[0], torch.tensor([-0.0739, 0.0713]), atol=1e-4, rtol=0)


def test_causal_attention_and_wrapper_seed_123():
    torch.manual_seed(123)
    out = CausalAttention(3, 2, 6, 0.0)(BATCH)
    torch.testing.assert_close(out[0, 0], torch.tensor([-0.4519, 0.2216]), atol=1e-4, rtol=0)
    torch.manual_seed(123)
    out = MultiHeadAttentionWrapper(3, 2, 6, 0.0, num_heads=2)(BATCH)
    assert out.shape == (2, 6, 4)
    torch.testing.assert_close(out[0, 0], torch.tensor([-0.4519, 0.2216, 0.4772, 0.1063]), atol=1e-4, rtol=0)


def test_multi_head_attention_seed_123():
    torch.manual_seed(123)
    out = MultiHeadAttention(3, 2, 6, 0.0, num_heads=2)(BATCH)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.3190, 0.4858]), atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def gpt_124m():
    torch.manual_seed(123)
    model = GPTModel(GPT_CONFIG_124M)
    model.eval()
    return model


@pytest.mark.slow
def test_gpt_124m_parameter_counts(gpt_124m):
    total = sum(p.numel() for p in gpt_124m.parameters())
    assert total == 163_009_536
    assert total - gpt_124m.out_head.weight.numel() == 124_412_160


@pytest.mark.slow
def test_gpt_124m_seed_123_greedy_continuation_of_hello_i_am(gpt_124m):
    prompt = torch.tensor([[15496, 11, 314, 716]])  # "Hello, I am"
    expected = [27018, 24086, 47843, 30961, 42348, 7267, 49706, 43231, 47062, 34657]
    out = generate_text_simple(gpt_124m, prompt, 10, GPT_CONFIG_124M["context_length"])
    assert out[0, 4:].tolist() == expected
    cached = generate(gpt_124m, prompt, 10, GPT_CONFIG_124M["context_length"], use_cache=True)
    assert cached[0, 4:].tolist() == expected
