"""Stage 5: the GPT architecture, its config checks, and generation with and without a KV cache."""

import pytest
import torch

from llmkit.errors import LLMKitError
from llmkit_solutions.embeddings import GPTEmbedding
from llmkit_solutions.gpt import (
    GELU,
    FeedForward,
    GPTModel,
    LayerNorm,
    TransformerBlock,
    generate,
    generate_text_simple,
    supports_kv_cache,
    text_to_token_ids,
    token_ids_to_text,
)

CFG = dict(vocab_size=97, context_length=16, emb_dim=32, n_heads=4, n_layers=2, drop_rate=0.1, qkv_bias=False)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPTModel(CFG).eval()


def ids(batch=2, tokens=10, seed=1):
    return torch.randint(0, CFG["vocab_size"], (batch, tokens), generator=torch.Generator().manual_seed(seed))


def test_layer_norm_gives_zero_mean_unit_biased_variance():
    x = torch.randn(3, 7) * 5 + 2
    out = LayerNorm(7)(x)
    torch.testing.assert_close(out.mean(dim=-1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(dim=-1, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    assert [n for n, _ in LayerNorm(7).named_parameters()] == ["scale", "shift"]


def test_gelu_is_the_tanh_approximation():
    x = torch.linspace(-4, 4, 101)
    torch.testing.assert_close(GELU()(x), torch.nn.functional.gelu(x, approximate="tanh"))


def test_feed_forward_expands_four_times():
    ff = FeedForward(CFG)
    assert ff.layers[0].out_features == 4 * CFG["emb_dim"] and isinstance(ff.layers[1], GELU)
    assert ff(torch.randn(2, 3, 32)).shape == (2, 3, 32)


def test_transformer_block_keeps_the_shape_and_names():
    block = TransformerBlock(CFG)
    assert [name for name, _ in block.named_children()] == ["att", "ff", "norm1", "norm2", "drop_shortcut"]
    assert block(torch.randn(2, 5, 32)).shape == (2, 5, 32)


def test_gpt_model_modules_in_the_book_order_and_logit_shape(model):
    assert [n for n, _ in model.named_children()] == ["tok_emb", "pos_emb", "drop_emb", "trf_blocks",
                                                      "final_norm", "out_head"]
    assert model.out_head.bias is None
    assert model(ids()).shape == (2, 10, CFG["vocab_size"])


def test_embedding_stage_matches_the_models_first_step():
    torch.manual_seed(0)
    emb = GPTEmbedding(CFG["vocab_size"], CFG["emb_dim"], CFG["context_length"])
    x = ids()
    expected = emb.tok_emb(x) + emb.pos_emb(torch.arange(10))
    torch.testing.assert_close(emb(x), expected)


@pytest.mark.parametrize("key", ["vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate",
                                 "qkv_bias"])
def test_a_cfg_missing_a_key_names_the_key_and_an_example(key):
    cfg = {k: v for k, v in CFG.items() if k != key}
    with pytest.raises(LLMKitError) as err:
        GPTModel(cfg)
    assert f"cfg is missing '{key}'" in str(err.value) and "GPT_CONFIG_124M" in str(err.value)


def test_emb_dim_not_divisible_by_heads_is_one_line_with_a_fix():
    with pytest.raises(LLMKitError) as err:
        GPTModel({**CFG, "emb_dim": 30})
    assert str(err.value) == "emb_dim (30) must be divisible by n_heads (4); change one of them, e.g. emb_dim=28."


def test_wrong_types_and_ranges_are_refused():
    with pytest.raises(LLMKitError, match="must be int"):
        GPTModel({**CFG, "n_layers": 2.0})
    with pytest.raises(LLMKitError, match=r"drop_rate'\] must be in \[0, 1\)"):
        GPTModel({**CFG, "drop_rate": 1.5})
    with pytest.raises(LLMKitError, match="unknown-attn|Unknown attention"):
        GPTModel({**CFG, "attention": "unknown-attn"})


def test_unknown_attention_option_lists_the_valid_ones():
    with pytest.raises(LLMKitError, match="has no option 'window'.*window_size"):
        GPTModel({**CFG, "attention": "sliding-window", "attention_options": {"window": 3}})


def test_too_long_input_says_how_to_crop(model):
    with pytest.raises(LLMKitError, match=r"idx\[:, -16:\]"):
        model(ids(tokens=17))


def test_generate_text_simple_is_greedy_and_crops_the_context(model):
    prompt = ids(batch=1, tokens=14)
    out = generate_text_simple(model, prompt, 6, CFG["context_length"])
    assert out.shape == (1, 20) and torch.equal(out[:, :14], prompt)
    with torch.no_grad():
        first = model(prompt)[:, -1].argmax(-1)
    assert out[0, 14] == first


def test_generate_with_temperature_zero_equals_greedy(model):
    prompt = ids(batch=1, tokens=4)
    assert torch.equal(generate(model, prompt, 8, 16), generate_text_simple(model, prompt, 8, 16))


def test_top_k_one_is_greedy_even_when_sampling(model):
    prompt = ids(batch=2, tokens=4)
    torch.manual_seed(5)
    assert torch.equal(generate(model, prompt, 6, 16, temperature=1.5, top_k=1), generate(model, prompt, 6, 16))


def test_top_k_restricts_samples_to_the_k_most_likely(model):
    prompt = ids(batch=1, tokens=4)
    with torch.no_grad():
        allowed = set(model(prompt)[0, -1].topk(3).indices.tolist())
    for seed in range(20):
        torch.manual_seed(seed)
        assert generate(model, prompt, 1, 16, temperature=2.0, top_k=3)[0, -1].item() in allowed


def test_generation_stops_at_eos(model):
    prompt = ids(batch=1, tokens=4)
    first = generate(model, prompt, 1, 16)[0, -1].item()
    out = generate(model, prompt, 10, 16, eos_id=first)
    assert torch.equal(out, prompt), "the eos token itself is not appended"


def test_bad_sampling_arguments_are_refused(model):
    with pytest.raises(LLMKitError, match="top_k"):
        generate(model, ids(1, 3), 2, 16, top_k=0)
    with pytest.raises(LLMKitError, match="temperature"):
        generate(model, ids(1, 3), 2, 16, temperature=-1.0)


@pytest.mark.parametrize("attention", [None, "sdpa", "gqa", "sliding-window"])
def test_kv_cache_generation_yields_exactly_the_uncached_tokens(attention):
    cfg = dict(CFG, drop_rate=0.0)
    if attention:
        cfg["attention"] = attention
    torch.manual_seed(0)
    model = GPTModel(cfg).eval()
    assert supports_kv_cache(model)
    prompt = ids(batch=2, tokens=5)
    # 30 new tokens run far past the 16-token window, so the cache must be rebuilt after cropping.
    assert torch.equal(generate(model, prompt, 30, 16, use_cache=True), generate(model, prompt, 30, 16))
    torch.manual_seed(9)
    sampled_cached = generate(model, prompt, 20, 16, temperature=1.0, top_k=20, use_cache=True)
    torch.manual_seed(9)
    sampled = generate(model, prompt, 20, 16, temperature=1.0, top_k=20)
    assert torch.equal(sampled_cached, sampled)


def test_kv_cache_with_an_attention_that_cannot_cache_is_one_clear_line():
    from llmkit_solutions.attention import MultiHeadAttentionWrapper

    torch.manual_seed(0)
    model = GPTModel(dict(CFG, drop_rate=0.0)).eval()
    for block in model.trf_blocks:
        block.att = MultiHeadAttentionWrapper(32, 8, 16, 0.0, num_heads=4)
    assert not supports_kv_cache(model)
    with pytest.raises(LLMKitError, match="use_cache=False"):
        generate(model, ids(1, 3), 2, 16, use_cache=True)
    assert generate(model, ids(1, 3), 2, 16).shape == (1, 5)


def test_text_token_id_round_trip():
    from llmkit.gpt2_bpe import gpt2_encoding

    tokenizer = gpt2_encoding()
    ids_ = text_to_token_ids("Every effort moves you<|endoftext|>", tokenizer)
    assert ids_.shape == (1, 5) and ids_[0, -1] == 50256
    assert token_ids_to_text(ids_, tokenizer) == "Every effort moves you<|endoftext|>"
