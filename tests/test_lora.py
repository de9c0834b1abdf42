"""Stage 7: LoRA layers, the book's parameter counts, target selection and merging."""

import copy
import math

import pytest
import torch
from torch import nn

from llmkit.errors import LLMKitError
from llmkit_solutions.gpt import GPT_CONFIG_124M, GPTModel
from llmkit_solutions.lora import (
    LinearWithLoRA,
    LoRALayer,
    apply_lora,
    count_trainable,
    lora_target_paths,
    merge_lora,
    replace_linear_with_lora,
    trainable_report,
)

TINY = dict(vocab_size=50, context_length=16, emb_dim=16, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return GPTModel(TINY).eval()


def batch(seed=1, b=3, t=8):
    return torch.randint(0, TINY["vocab_size"], (b, t), generator=torch.Generator().manual_seed(seed))


def freeze(model):
    for p in model.parameters():
        p.requires_grad = False
    return model


@pytest.fixture(scope="module")
def book_model():
    torch.manual_seed(123)
    model = GPTModel({**GPT_CONFIG_124M, "qkv_bias": True})
    model.out_head = nn.Linear(768, 2)
    return model


def test_book_counts_before_and_after_lora(book_model):
    assert count_trainable(book_model) == (124_441_346, 124_441_346)
    freeze(book_model)
    assert count_trainable(book_model)[0] == 0
    replace_linear_with_lora(book_model, rank=16, alpha=16)
    trainable, total = count_trainable(book_model)
    assert trainable == 2_666_528
    assert total == 124_441_346 + 2_666_528
    # Every linear layer, the 2-way head included, is now wrapped; no bare nn.Linear is left outside.
    wrapped = [n for n, m in book_model.named_modules() if isinstance(m, LinearWithLoRA)]
    assert len(wrapped) == 12 * 6 + 1 and "out_head" in wrapped
    assert {n for n, p in book_model.named_parameters() if p.requires_grad} == {
        f"{w}.lora.{x}" for w in wrapped for x in ("A", "B")
    }
    assert "trainable 2,666,528 of 127,107,874" in trainable_report(book_model)


def test_lora_layer_init_shapes_and_construction_order():
    torch.manual_seed(7)
    layer = LoRALayer(in_dim=8, out_dim=5, rank=2, alpha=4)
    torch.manual_seed(7)
    expected_a = torch.empty(8, 2)
    nn.init.kaiming_uniform_(expected_a, a=math.sqrt(5))
    assert torch.equal(layer.A, expected_a)  # A is drawn first, as in the book
    assert layer.B.shape == (2, 5) and not layer.B.any()
    assert [n for n, _ in layer.named_parameters()] == ["A", "B"]
    with torch.no_grad():
        layer.B.fill_(1.0)
    x = torch.randn(3, 4, 8)
    torch.testing.assert_close(layer(x), 2.0 * (x @ layer.A @ layer.B))  # alpha / rank = 2
    assert layer(x).shape == (3, 4, 5)


def test_linear_with_lora_starts_as_the_linear():
    linear = nn.Linear(6, 4)
    wrapped = LinearWithLoRA(linear, rank=3, alpha=1)
    assert wrapped.linear is linear and isinstance(wrapped.lora, LoRALayer)
    x = torch.randn(2, 6)
    assert torch.equal(wrapped(x), linear(x))


@pytest.mark.parametrize("rank, alpha", [(0, 16), (-2, 16), (16, 0), (16, -1.0), (1.5, 2)])
def test_bad_rank_or_alpha_is_refused(rank, alpha):
    with pytest.raises(LLMKitError, match="rank|alpha"):
        LoRALayer(4, 4, rank, alpha)
    model = tiny_model()
    with pytest.raises(LLMKitError):
        replace_linear_with_lora(model, rank, alpha)
    with pytest.raises(LLMKitError):
        apply_lora(model, rank, alpha)
    assert not any(isinstance(m, LinearWithLoRA) for m in model.modules())


def test_lora_matches_base_then_learns_and_merges_back():
    base = tiny_model()
    x = batch()
    with torch.no_grad():
        base_logits = base(x)
    model = replace_linear_with_lora(freeze(copy.deepcopy(base)), rank=4, alpha=8)
    with torch.no_grad():
        assert torch.equal(model(x), base_logits)  # B = 0: exactly the base model

    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    targets = batch(seed=2)
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x).flatten(0, 1), targets.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        lora_logits = model(x)
    assert not torch.allclose(lora_logits, base_logits, atol=1e-4)
    for name, p in model.named_parameters():  # only LoRA moved
        if ".lora." not in name:
            assert torch.equal(p, base.get_parameter(name.replace(".linear.", ".")))

    merged = merge_lora(model, inplace=False)
    assert any(isinstance(m, LinearWithLoRA) for m in model.modules())  # the original kept its LoRA
    assert not any(isinstance(m, (LinearWithLoRA, LoRALayer)) for m in merged.modules())
    plain = GPTModel(TINY).eval()
    plain.load_state_dict(merged.state_dict())  # the base architecture, key for key
    with torch.no_grad():
        torch.testing.assert_close(plain(x), lora_logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(merged(x), lora_logits, atol=1e-5, rtol=0)

    same = merge_lora(model)  # in place
    assert same is model and not any(isinstance(m, LinearWithLoRA) for m in model.modules())


def test_targets_select_the_named_layers():
    attention = lora_target_paths(tiny_model(), "attention")
    names = ("W_query", "W_key", "W_value", "out_proj")
    assert attention == [f"trf_blocks.{i}.att.{n}" for i in range(2) for n in names]
    mlp = set(lora_target_paths(tiny_model(), "attention+mlp")) - set(attention)
    assert mlp == {f"trf_blocks.{i}.ff.layers.{j}" for i in range(2) for j in (0, 2)}
    assert set(lora_target_paths(tiny_model(), "all")) == set(attention) | mlp | {"out_head"}

    model = apply_lora(freeze(tiny_model()), rank=2, alpha=2, target="attention")
    wrapped = {n for n, m in model.named_modules() if isinstance(m, LinearWithLoRA)}
    assert wrapped == set(attention)
    assert count_trainable(model)[0] == 8 * 2 * (16 + 16)
    with pytest.raises(LLMKitError, match="target"):
        apply_lora(tiny_model(), 2, 2, target="mlp")


def test_apply_lora_all_is_replace_linear_with_lora():
    torch.manual_seed(3)
    a = apply_lora(tiny_model(), rank=2, alpha=2, target="all")
    torch.manual_seed(3)
    b = replace_linear_with_lora(tiny_model(), rank=2, alpha=2)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_attention_target_on_a_model_without_book_names_fails():
    class Fused(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(4, 12)

    with pytest.raises(LLMKitError, match="W_query"):
        apply_lora(Fused(), 2, 2, target="attention")
