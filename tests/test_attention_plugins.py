"""The first-party attention plugins: the conformance suite for each, then what is special to each.

- sdpa: the fused kernel, including chunks of several tokens after a KV cache.
- gqa: a real grouping (2 K/V heads for 4 query heads) and its smaller weights and cache.
- sliding-window: a real window (3 tokens) against a per-position brute force.
"""

import pytest
import torch

import llmkit
import llmkit_gqa
import llmkit_sdpa
import llmkit_sliding_window
from llmkit.errors import LLMKitError
from llmkit.kv_cache import LayerCache
from llmkit.testing.attention import CONTEXT, D_IN, D_OUT, HEADS, BaseAttentionTests
from llmkit_gqa import GroupedQueryAttention, default_kv_groups
from llmkit_sdpa import SDPAttention
from llmkit_sliding_window import SlidingWindowAttention
from llmkit_solutions.attention import MultiHeadAttention
from llmkit_solutions.gpt import GPTModel, generate

ATOL = 1e-5

# Until the kit is pip-installed the entry points do not exist; register the modules by hand.
for _name, _module in (("sdpa", llmkit_sdpa), ("gqa", llmkit_gqa),
                       ("sliding-window", llmkit_sliding_window)):
    if _name not in llmkit.names("attention"):
        llmkit.add_plugin(_module, name=_name)


def inputs(batch=2, tokens=CONTEXT, seed=1):
    return torch.randn(batch, tokens, D_IN, generator=torch.Generator().manual_seed(seed))


def build(cls, seed=0, dropout=0.0, qkv_bias=False, **options):
    torch.manual_seed(seed)
    return cls(D_IN, D_OUT, CONTEXT, dropout, HEADS, qkv_bias=qkv_bias, **options).eval()


def run_in_chunks(module, x, sizes):
    """Feed x through a fresh LayerCache in chunks of the given sizes; return outputs and the cache."""
    assert sum(sizes) == x.shape[1]
    cache, parts, start = LayerCache(), [], 0
    for size in sizes:
        parts.append(module(x[:, start : start + size], kv_cache=cache))
        start += size
    return torch.cat(parts, dim=1), cache


def tiny_gpt(attention, **options):
    cfg = dict(vocab_size=50, context_length=CONTEXT, emb_dim=D_OUT, n_heads=HEADS, n_layers=2,
               drop_rate=0.0, qkv_bias=False, attention=attention, attention_options=options)
    torch.manual_seed(7)
    return GPTModel(cfg).eval()


# --- The conformance suite, once per plugin ----------------------------------------------------


class TestSDPAttention(BaseAttentionTests):
    registered_name = "sdpa"

    @pytest.fixture
    def attention_factory(self):
        return SDPAttention


class TestGroupedQueryAttention(BaseAttentionTests):
    registered_name = "gqa"
    reference_options = {"num_kv_groups": HEADS}  # one K/V head per query head: plain MHA

    @pytest.fixture
    def attention_factory(self):
        return GroupedQueryAttention


class TestSlidingWindowAttention(BaseAttentionTests):
    registered_name = "sliding-window"
    reference_options = {"window_size": CONTEXT}  # a window as long as the context: plain causal

    @pytest.fixture
    def attention_factory(self):
        return SlidingWindowAttention


# --- Shared to all three, with their non-trivial options ---------------------------------------

NON_TRIVIAL = [
    pytest.param(SDPAttention, {}, id="sdpa"),
    pytest.param(GroupedQueryAttention, {"num_kv_groups": 2}, id="gqa-2-groups"),
    pytest.param(SlidingWindowAttention, {"window_size": 3}, id="window-3"),
]


@pytest.mark.parametrize("cls, options", NON_TRIVIAL)
@pytest.mark.parametrize("sizes", [(5, 1, 1, 1, 1, 1, 1, 1), (3, 4, 1, 4), (1,) * CONTEXT, (CONTEXT,)])
def test_kv_cache_in_chunks_matches_the_full_sequence(cls, options, sizes):
    # Chunks of several tokens after the first are where a mask must use absolute positions.
    module = build(cls, **options)
    x = inputs()
    chunked, cache = run_in_chunks(module, x, sizes)
    torch.testing.assert_close(chunked, module(x), atol=ATOL, rtol=0)
    assert cache.length == CONTEXT


@pytest.mark.parametrize("cls, options", [
    pytest.param(SDPAttention, {}, id="sdpa"),
    pytest.param(GroupedQueryAttention, {"num_kv_groups": HEADS}, id="gqa"),
    pytest.param(SlidingWindowAttention, {"window_size": 3}, id="sliding-window"),
])
def test_a_reference_state_dict_loads_strictly(cls, options):
    reference = build(MultiHeadAttention, seed=3)
    module = build(cls, seed=4, **options)
    module.load_state_dict(reference.state_dict())  # strict: same names, shapes and buffer
    if cls is not SlidingWindowAttention:
        torch.testing.assert_close(module(inputs()), reference(inputs()), atol=ATOL, rtol=0)
    else:  # the window must survive loading a causal mask buffer
        assert not torch.allclose(module(inputs()), reference(inputs()))


@pytest.mark.parametrize("attention, options", [
    ("sdpa", {}),
    ("gqa", {}),  # the default grouping
    ("gqa", {"num_kv_groups": 2}),
    ("sliding-window", {"window_size": 3}),
])
def test_cached_generation_matches_uncached_inside_gpt_model(attention, options):
    model = tiny_gpt(attention, **options)
    prompt = torch.randint(0, 50, (2, 4), generator=torch.Generator().manual_seed(8))
    # 10 new tokens overflow the 12-token context, so the cache is also rebuilt once.
    plain = generate(model, prompt, max_new_tokens=10, context_size=CONTEXT)
    cached = generate(model, prompt, max_new_tokens=10, context_size=CONTEXT, use_cache=True)
    assert torch.equal(cached, plain)


def test_the_plugins_are_registered_by_name():
    assert llmkit.get("attention", "sdpa").factory is SDPAttention
    assert llmkit.get("attention", "gqa").factory is GroupedQueryAttention
    assert llmkit.get("attention", "sliding-window").factory is SlidingWindowAttention


# --- sdpa --------------------------------------------------------------------------------------


def test_sdpa_matches_the_reference_in_training_mode_without_dropout():
    # Training mode changes only the dropout rate passed to the kernel.
    reference = build(MultiHeadAttention, seed=3).train()
    module = build(SDPAttention, seed=4).train()
    module.load_state_dict(reference.state_dict())
    torch.testing.assert_close(module(inputs()), reference(inputs()), atol=ATOL, rtol=0)


# --- gqa with a real grouping ------------------------------------------------------------------


def test_gqa_grouped_shapes_and_causality():
    module = build(GroupedQueryAttention, num_kv_groups=2)
    for tokens in (1, 5, CONTEXT):
        assert module(inputs(tokens=tokens)).shape == (2, tokens, D_OUT)
    x = inputs()
    changed = x.clone()
    changed[:, 7:] = torch.randn_like(changed[:, 7:])
    before, after = module(x), module(changed)
    torch.testing.assert_close(after[:, :7], before[:, :7], atol=ATOL, rtol=0)
    assert not torch.allclose(after[:, 7:], before[:, 7:])


def test_gqa_cache_stores_only_the_kv_heads():
    module = build(GroupedQueryAttention, num_kv_groups=2)
    _, cache = run_in_chunks(module, inputs(), (5, 7))
    head_dim = D_OUT // HEADS
    assert cache.keys.shape == cache.values.shape == (2, 2, CONTEXT, head_dim)


def test_gqa_has_fewer_parameters_than_mha():
    head_dim = D_OUT // HEADS
    for qkv_bias in (False, True):
        mha = build(MultiHeadAttention, qkv_bias=qkv_bias)
        gqa = build(GroupedQueryAttention, qkv_bias=qkv_bias, num_kv_groups=2)
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        saved_per_projection = (D_OUT - 2 * head_dim) * (D_IN + qkv_bias)  # K and V each
        assert count(gqa) == count(mha) - 2 * saved_per_projection
        assert count(gqa) < count(mha)


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_gqa_equals_mha_with_each_kv_head_copied_to_its_group(qkv_bias):
    # The meaning of grouping: query head h reads K/V head h // (num_heads // num_kv_groups).
    gqa = build(GroupedQueryAttention, seed=4, qkv_bias=qkv_bias, num_kv_groups=2)
    mha = build(MultiHeadAttention, seed=3, qkv_bias=qkv_bias)
    head_dim, group_size = D_OUT // HEADS, HEADS // 2
    own = dict(gqa.named_parameters())
    with torch.no_grad():
        for name, param in mha.named_parameters():
            source = own[name]
            if name.startswith(("W_key", "W_value")):  # (2*hd, ...) -> (4*hd, ...), heads repeated
                source = source.unflatten(0, (2, head_dim)).repeat_interleave(group_size, dim=0)
                source = source.flatten(0, 1)
            param.copy_(source)
    torch.testing.assert_close(gqa(inputs()), mha(inputs()), atol=ATOL, rtol=0)


def test_gqa_rejects_a_grouping_that_does_not_divide_the_heads():
    with pytest.raises(LLMKitError, match="divisible by num_kv_groups.*pick num_kv_groups from"):
        build(GroupedQueryAttention, num_kv_groups=3)
    for bad in (0, -2, 2.0, True):
        with pytest.raises(LLMKitError, match="num_kv_groups"):
            build(GroupedQueryAttention, num_kv_groups=bad)


def test_gqa_default_grouping():
    assert [default_kv_groups(h) for h in (1, 2, 4, 6, 7, 12, 32)] == [1, 1, 1, 2, 7, 3, 8]
    assert build(GroupedQueryAttention).num_kv_groups == default_kv_groups(HEADS)


# --- sliding window with a real window ---------------------------------------------------------

WINDOW = 3


def brute_force_sliding_window(module, x, window):
    """Position by position: softmax over the keys of tokens max(0, t-window+1)..t only."""
    b, num_tokens, _ = x.shape
    heads, head_dim = module.num_heads, module.head_dim
    q = module.W_query(x).view(b, num_tokens, heads, head_dim)
    k = module.W_key(x).view(b, num_tokens, heads, head_dim)
    v = module.W_value(x).view(b, num_tokens, heads, head_dim)
    rows = []
    for t in range(num_tokens):
        lo = max(0, t - window + 1)
        scores = torch.einsum("bhd,bjhd->bhj", q[:, t], k[:, lo : t + 1]) / head_dim**0.5
        weights = torch.softmax(scores, dim=-1)  # (B, H, tokens in window)
        rows.append(torch.einsum("bhj,bjhd->bhd", weights, v[:, lo : t + 1]).reshape(b, heads * head_dim))
    return module.out_proj(torch.stack(rows, dim=1))


@pytest.mark.parametrize("window", [1, 2, WINDOW, 7, CONTEXT - 1])
@pytest.mark.parametrize("qkv_bias", [False, True])
def test_sliding_window_matches_a_per_position_brute_force(window, qkv_bias):
    module = build(SlidingWindowAttention, qkv_bias=qkv_bias, window_size=window)
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(module(x), brute_force_sliding_window(module, x, window),
                                   atol=ATOL, rtol=0)


def test_sliding_window_ignores_tokens_before_the_window():
    module = build(SlidingWindowAttention, window_size=WINDOW)
    x = inputs()
    out = module(x)
    for t in range(WINDOW, CONTEXT):
        changed = x.clone()
        changed[:, : t - WINDOW + 1] = torch.randn_like(changed[:, : t - WINDOW + 1])
        torch.testing.assert_close(module(changed)[:, t], out[:, t], atol=ATOL, rtol=0)
        # ...but the oldest token inside the window still counts.
        inside = x.clone()
        inside[:, t - WINDOW + 1] += 1.0
        assert not torch.allclose(module(inside)[:, t], out[:, t])


def test_sliding_window_of_one_sees_only_the_token_itself():
    module = build(SlidingWindowAttention, window_size=1)
    x = inputs()
    torch.testing.assert_close(module(x), module.out_proj(module.W_value(x)), atol=ATOL, rtol=0)


def test_sliding_window_none_is_full_causal_attention():
    reference = build(MultiHeadAttention, seed=3)
    module = build(SlidingWindowAttention, seed=4, window_size=None)
    module.load_state_dict(reference.state_dict())
    torch.testing.assert_close(module(inputs()), reference(inputs()), atol=ATOL, rtol=0)


def test_sliding_window_rejects_a_window_below_one():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(LLMKitError, match="window_size must be a positive int"):
            build(SlidingWindowAttention, window_size=bad)
