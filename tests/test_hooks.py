"""Each hook, exercised by a toy plugin that implements it; every toy passes its family's conformance
suite, and together they run ``llmkit run`` (pretraining and a fine-tuning stage)."""

import contextlib
import types

import pytest
import torch

import llmkit
from llmkit.errors import LLMKitError
from llmkit.hookspecs import hookimpl
from llmkit.testing.attention import BaseAttentionTests
from llmkit.testing.decoders import BaseDecoderTests
from llmkit.testing.devices import BaseDeviceTests
from llmkit.testing.models import BaseModelTests
from llmkit.testing.samplers import BaseSamplerTests
from llmkit.testing.strategies import BaseStrategyTests
from llmkit.testing.tokenizers import BaseTokenizerTests
from llmkit.tokenizers import build_tokenizer
from tests.tiny import TINY_SETTINGS


class UpperTokenizer:
    """Toy tokenizer: one id per uppercase letter, space and full stop."""

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ ."
    n_vocab = len(alphabet)

    def encode(self, text):
        return [self.alphabet.index(c) for c in text]

    def decode(self, ids):
        return "".join(self.alphabet[int(i)] for i in ids)


class ConstantBatches:
    """Toy sampler: every batch is the first window, repeated (after a check that one fits)."""

    def __init__(self, token_ids, batch_size, max_length, **options):
        if len(token_ids) < max_length + 1:
            raise LLMKitError(f"one window needs max_length + 1 = {max_length + 1} tokens; got {len(token_ids)}.")
        self.x = torch.tensor(token_ids[:max_length]).repeat(batch_size, 1)  # (B, T)
        self.y = torch.tensor(token_ids[1 : max_length + 1]).repeat(batch_size, 1)  # (B, T)

    def __len__(self):
        return 2

    def __iter__(self):
        return iter([(self.x, self.y)] * 2)


class Freeze:
    """Toy strategy: freeze everything but the output head (a new one for classification)."""

    name = "toy-freeze"
    tasks = ("classification", "lm")

    def __init__(self, **options):
        if options:
            raise LLMKitError(f"toy-freeze takes no options, got {', '.join(options)}.")
        self.config = {}

    def prepare(self, model, task="lm", num_classes=2):
        if task == "classification":
            model.out_head = torch.nn.Linear(model.out_head.in_features, num_classes)
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith("out_head")
        return model

    def describe(self, model):
        params = list(model.parameters())
        return {"strategy": self.name, "trainable": sum(p.numel() for p in params if p.requires_grad),
                "total": sum(p.numel() for p in params)}


class CPUOnly:
    """Toy device: always the CPU, fp32, one process; written without the kit's Device base class."""

    torch_device = torch.device("cpu")
    precision = "fp32"
    rank, world_size = 0, 1
    is_main = True

    def __init__(self, precision="auto"):
        if precision not in ("auto", "fp32"):
            raise LLMKitError(f"toy-cpu runs in fp32 only, not {precision}.")

    def autocast(self):
        return contextlib.nullcontext()

    def prepare_model(self, model):
        return model.to(self.torch_device)

    def unwrap(self, model):
        return model

    def shard(self, inputs, targets):
        return inputs.to(self.torch_device), targets.to(self.torch_device)

    def mean_across_ranks(self, value):
        return value

    def barrier(self):
        pass

    def close(self):
        pass


@torch.no_grad()
def greedy_loop(model, idx, max_new_tokens, context_size, temperature=0.0, top_k=None, eos_id=None):
    """Toy decoder: the whole window every step; top-k, then temperature sampling or argmax."""
    if temperature < 0:
        raise LLMKitError(f"temperature must be >= 0, got {temperature}.")
    for _ in range(max_new_tokens):
        logits = model(idx[:, -context_size:])[:, -1, :]  # (B, vocab)
        if top_k:
            kth = torch.topk(logits, top_k).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if temperature > 0:
            nxt = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1)
        else:
            nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        if eos_id is not None and bool((nxt == eos_id).all()):
            break
        idx = torch.cat((idx, nxt), dim=1)
    return idx


@hookimpl
def register_tokenizers(register):
    register("upper", UpperTokenizer)


@hookimpl
def register_samplers(register):
    register("constant", ConstantBatches)


@hookimpl
def register_attention(register):
    register("toy-mha", llmkit.get("attention", "mha").factory, doc="The reference MHA under another name.")


@hookimpl
def register_models(register):
    register("toy-gpt", llmkit.get("models", "gpt-book").factory, doc="The book's GPT under another name.")


@hookimpl
def register_finetune_strategies(register):
    register("toy-freeze", Freeze)


@hookimpl
def register_devices(register):
    register("toy-cpu", CPUOnly)


@hookimpl
def register_decoders(register):
    register("toy-greedy", greedy_loop)


@pytest.fixture(scope="module", autouse=True)
def toy_plugin():
    plugin = types.ModuleType("toy_every_hook")
    for fn in (register_tokenizers, register_samplers, register_attention, register_models,
               register_finetune_strategies, register_devices, register_decoders):
        setattr(plugin, fn.__name__, fn)
    llmkit.add_plugin(plugin, name="toy-every-hook")
    yield plugin
    llmkit.plugins.pm.unregister(name="toy-every-hook")
    llmkit.plugins.refresh()


TOYS = {"tokenizers": "upper", "samplers": "constant", "attention": "toy-mha", "models": "toy-gpt",
        "finetune_strategies": "toy-freeze", "devices": "toy-cpu", "decoders": "toy-greedy"}


def test_every_family_gets_the_toy_component():
    assert set(TOYS) == set(llmkit.plugins.FAMILIES)
    for family, name in TOYS.items():
        component = llmkit.get(family, name)
        assert component.provider == "toy-every-hook"
        assert component.doc, f"{family}/{name} needs a one-line doc"


def test_toy_components_work_together():
    tokenizer = build_tokenizer("upper")
    ids = tokenizer.encode("HELLO WORLD.")
    (x, y), _ = llmkit.create("samplers", "constant", ids, 2, 4)
    cfg = dict(vocab_size=28, context_length=8, emb_dim=8, n_heads=2, n_layers=1, drop_rate=0.0,
               qkv_bias=False, attention="toy-mha")
    model = llmkit.create("models", "toy-gpt", cfg)
    device = llmkit.create("devices", "toy-cpu")
    model = llmkit.create("finetune_strategies", "toy-freeze").prepare(device.prepare_model(model), "lm")
    logits = model(x)
    assert logits.shape == (2, 4, 28)
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"out_head.weight"}
    assert model.tok_emb.weight.grad is None
    out = llmkit.create("decoders", "toy-greedy", model.eval(), x[:1], 3, 8)
    assert out.shape == (1, 7)


def test_llmkit_run_with_the_toy_device_decoder_and_strategy(tmp_path):
    """The toys meet their contracts, so the whole run takes them by name (pretraining and fine-tuning)."""
    from llmkit.run import run
    from llmkit.runconfig import load_run_config

    cfg = load_run_config(None, [*TINY_SETTINGS, 'device.name="toy-cpu"', 'generate.decoder="toy-greedy"',
                                 'model.name="toy-gpt"', 'run.stages=["pretrain", "classify"]',
                                 'finetune.strategies=["toy-freeze"]',
                                 "finetune.max_train_examples=16", "finetune.classify_epochs=1",
                                 "train.epochs=1", "train.sample_tokens=4"])
    run_dir, results = run(cfg, tmp_path / "toys", show_progress=False)
    assert [r.name for r in results] == ["pretrain", "classify"]
    assert results[1].summary["strategies"]["toy-freeze"]["trainable"] > 0
    assert (run_dir / "classify" / "toy-freeze.pt").is_file()


class TestUpperTokenizer(BaseTokenizerTests):
    lossless = False  # it knows capitals, spaces and full stops only
    special_tokens = ()

    @pytest.fixture
    def sample_text(self):
        return "THE QUICK BROWN FOX. THE LAZY DOG."

    @pytest.fixture
    def tokenizer(self):
        return llmkit.create("tokenizers", "upper")

    def test_round_trip_on_varied_text(self, tokenizer, sample_text):
        pytest.skip("varied text holds characters this toy does not know")


class TestConstantSampler(BaseSamplerTests):
    @pytest.fixture
    def sampler_factory(self):
        return llmkit.get("samplers", "constant").factory


class TestToyAttention(BaseAttentionTests):
    registered_name = "toy-mha"

    @pytest.fixture
    def attention_factory(self):
        return llmkit.get("attention", "toy-mha").factory


class TestToyModel(BaseModelTests):
    registered_name = "toy-gpt"
    declares_context_length = False  # the book's GPTModel: the kit reads pos_emb

    @pytest.fixture
    def model_factory(self):
        return llmkit.get("models", "toy-gpt").factory


class TestToyStrategy(BaseStrategyTests):
    @pytest.fixture
    def strategy_factory(self):
        return llmkit.get("finetune_strategies", "toy-freeze").factory


class TestToyDevice(BaseDeviceTests):
    @pytest.fixture
    def device(self):
        return llmkit.create("devices", "toy-cpu")


class TestToyDecoder(BaseDecoderTests):
    model_name = "toy-gpt"

    @pytest.fixture
    def decoder(self):
        return llmkit.get("decoders", "toy-greedy").factory
