"""Each hook, exercised by a plugin that implements it and a check that the component is usable."""

import types

import pytest
import torch

import llmkit
from llmkit.hookspecs import hookimpl
from llmkit.tokenizers import build_tokenizer


class UpperTokenizer:
    """Toy tokenizer: one id per uppercase letter."""

    n_vocab = 26

    def encode(self, text):
        return [ord(c) - 65 for c in text]

    def decode(self, ids):
        return "".join(chr(i + 65) for i in ids)


def constant_sampler(token_ids, batch_size, max_length, **options):
    """Toy sampler: one batch of the first window."""
    x = torch.tensor(token_ids[:max_length]).repeat(batch_size, 1)
    y = torch.tensor(token_ids[1 : max_length + 1]).repeat(batch_size, 1)
    return [(x, y)]


class Freeze:
    """Toy strategy: freeze everything but the output head."""

    def apply(self, model):
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith("out_head")
        return model


class CPUOnly:
    """Toy device: always the CPU."""

    torch_device = torch.device("cpu")


@hookimpl
def register_tokenizers(register):
    register("upper", UpperTokenizer)


@hookimpl
def register_samplers(register):
    register("constant", constant_sampler)


@hookimpl
def register_attention(register):
    from llmkit_solutions.attention import MultiHeadAttention

    register("toy-mha", MultiHeadAttention, doc="The reference MHA under another name.")


@hookimpl
def register_models(register):
    from llmkit_solutions.gpt import GPTModel

    register("toy-gpt", GPTModel)


@hookimpl
def register_finetune_strategies(register):
    register("toy-freeze", Freeze)


@hookimpl
def register_devices(register):
    register("toy-cpu", CPUOnly)


@pytest.fixture(scope="module")
def toy_plugin():
    plugin = types.ModuleType("toy_every_hook")
    for fn in (register_tokenizers, register_samplers, register_attention, register_models,
               register_finetune_strategies, register_devices):
        setattr(plugin, fn.__name__, fn)
    llmkit.add_plugin(plugin, name="toy-every-hook")
    yield plugin
    llmkit.plugins.pm.unregister(name="toy-every-hook")
    llmkit.plugins.refresh()


def test_every_family_gets_the_toy_component(toy_plugin):
    expected = {"tokenizers": "upper", "samplers": "constant", "attention": "toy-mha",
                "models": "toy-gpt", "finetune_strategies": "toy-freeze", "devices": "toy-cpu"}
    for family, name in expected.items():
        component = llmkit.get(family, name)
        assert component.provider == "toy-every-hook"
        assert component.doc, f"{family}/{name} needs a one-line doc"


def test_toy_components_work_together(toy_plugin):
    tokenizer = build_tokenizer("upper")
    ids = tokenizer.encode("HELLOWORLD")
    (x, y), = llmkit.create("samplers", "constant", ids, 2, 4)
    cfg = dict(vocab_size=26, context_length=8, emb_dim=8, n_heads=2, n_layers=1, drop_rate=0.0,
               qkv_bias=False, attention="toy-mha")
    model = llmkit.create("models", "toy-gpt", cfg)
    device = llmkit.create("devices", "toy-cpu")
    model = llmkit.create("finetune_strategies", "toy-freeze").apply(model.to(device.torch_device))
    logits = model(x)
    assert logits.shape == (2, 4, 26)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"out_head.weight"}
    assert model.tok_emb.weight.grad is None
