"""The ``finetune_strategies`` family: what each strategy trains, what it adds, and that it learns."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import llmkit
from llmkit.errors import LLMKitError
from llmkit.finetune import Adapter, FeatureExtractionClassifier, WithAdapter
from llmkit.lora import LoRALinear
from llmkit.testing.strategies import BaseStrategyTests
from llmkit_solutions.classification import calc_accuracy_loader, calc_loss_batch_classification, classify_review
from llmkit_solutions.gpt import GPT_CONFIG_124M, GPTModel

STRATEGIES = ("full", "lora", "classification", "feature-extraction", "adapter")
TINY = dict(vocab_size=64, context_length=16, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=False)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed=0, **cfg):
    torch.manual_seed(seed)
    return GPTModel({**TINY, **cfg}).eval()


def strategy(name, **options):
    return llmkit.create("finetune_strategies", name, **options)


def trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def separable_data(n=32, t=8, seed=0):
    """Class 0 uses ids 0-31, class 1 ids 32-63: a linear probe on any position separates them."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    ids = torch.randint(0, 32, (n, t), generator=g) + 32 * labels[:, None]
    return ids, labels


# --------------------------------------------------------------------------- registry and book numbers


def test_every_strategy_is_registered_with_a_doc():
    for name in STRATEGIES:
        component = llmkit.get("finetune_strategies", name)
        assert component.provider == "llmkit.finetune" and component.doc


@pytest.fixture(scope="module")
def book_cfg():
    return {**GPT_CONFIG_124M, "qkv_bias": True}


def meta_gpt(cfg):
    with torch.device("meta"):  # parameter counts need shapes, not values: builds in milliseconds
        return GPTModel(cfg)


@pytest.mark.parametrize("name, options, expected", [
    ("lora", {"rank": 16, "alpha": 16}, 2_666_528),  # the book's figure
    ("lora", {}, 1_333_264),  # the kit's default rank 8: half the book's factors
    ("full", {}, 124_441_346),  # the book's figure before LoRA
    ("classification", {}, 7_090_946),  # last block + final_norm + new head
    ("adapter", {"bottleneck": 64}, 2_380_802),  # 24 adapters of 99,136 + head 1,538
    ("feature-extraction", {"hidden": 256}, 197_378),  # 768*256+256 + 256*2+2
    ("lora", {"rank": 16, "target": "attention"}, 1_179_648),
])
def test_trainable_counts_on_gpt2_small_with_a_two_class_head(book_cfg, name, options, expected):
    s = strategy(name, **options)
    model = s.prepare(meta_gpt(book_cfg), "classification", num_classes=2)
    info = s.describe(model)
    assert info["trainable"] == expected and info["strategy"] == name and info["added"]


def test_lora_strategy_on_a_real_gpt2_small_matches_the_book(book_cfg):
    torch.manual_seed(123)
    s = strategy("lora", rank=16, alpha=16)
    model = s.prepare(GPTModel(book_cfg), "classification", num_classes=2)
    info = s.describe(model)
    assert (info["trainable"], info["total"]) == (2_666_528, 124_441_346 + 2_666_528)
    assert model.out_head.linear.weight.shape == (2, 768) and not model.out_head.linear.weight.requires_grad
    assert info["added"][0] == "out_head"  # replaced first, then 73 linear layers got LoRA
    assert len(info["added"]) == 74 and sum(a.endswith(".lora") for a in info["added"]) == 73


# --------------------------------------------------------------------------- what each one trains


def test_full_trains_everything_and_swaps_the_head():
    model = strategy("full").prepare(tiny_model(), "classification", num_classes=3)
    assert trainable(model) == {n for n, _ in model.named_parameters()}
    assert model.out_head.weight.shape == (3, 32)
    lm = strategy("full").prepare(tiny_model(), "lm")
    assert lm.out_head.weight.shape == (64, 32) and trainable(lm) == {n for n, _ in lm.named_parameters()}


def test_lora_trains_only_low_rank_factors_and_starts_as_the_base():
    base = tiny_model()
    x, _ = separable_data()
    model = strategy("lora", rank=4, alpha=8, target="attention+mlp").prepare(copy.deepcopy(base), "instruction")
    assert all(n.endswith((".lora.A", ".lora.B")) for n in trainable(model))
    assert len(trainable(model)) == 2 * 2 * 6
    assert not isinstance(model.out_head, LoRALinear)
    with torch.no_grad():
        assert torch.equal(model(x), base(x))


def test_classification_strategy_trains_last_block_final_norm_and_head():
    s = strategy("classification", trainable_blocks=1)
    model = s.prepare(tiny_model(), "classification")
    assert {n.split(".")[0] if not n.startswith("trf") else n[:12] for n in trainable(model)} == {
        "trf_blocks.1", "final_norm", "out_head"}
    with pytest.raises(LLMKitError, match="'classification' cannot do task 'lm'"):
        s.prepare(tiny_model(), "lm")


def test_adapters_start_as_the_base_model_and_train_alone():
    base = tiny_model()
    x, _ = separable_data()
    s = strategy("adapter", bottleneck=8)
    model = s.prepare(copy.deepcopy(base), "lm")
    assert sum(isinstance(m, Adapter) for m in model.modules()) == 4
    assert all(isinstance(b.att, WithAdapter) and isinstance(b.ff, WithAdapter) for b in model.trf_blocks)
    assert trainable(model) == {f"trf_blocks.{i}.{w}.adapter.{p}.{k}" for i in range(2) for w in ("att", "ff")
                                for p in ("down", "up") for k in ("weight", "bias")}
    with torch.no_grad():
        assert torch.equal(model(x), base(x))  # zero up-projection: identical logits
    cls = strategy("adapter", bottleneck=8).prepare(tiny_model(), "classification")
    assert {n for n in trainable(cls) if "adapter" not in n} == {"out_head.weight", "out_head.bias"}


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_feature_extraction_freezes_the_body(pool):
    s = strategy("feature-extraction", pool=pool, hidden=16, pad_token_id=63)
    model = s.prepare(tiny_model(), "classification", num_classes=2)
    assert isinstance(model, FeatureExtractionClassifier)
    assert trainable(model) == {"head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"}
    x, y = separable_data()
    logits = model(x)
    assert logits.shape == (32, 8, 2) and torch.equal(logits[:, 0], logits[:, -1])
    calc_loss_batch_classification(x, y, model, "cpu").backward()
    assert all(p.grad is None for p in model.body.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    model.train()
    assert not model.body.training and model.head.training  # the frozen body never drops out


def test_mean_pooling_ignores_padding():
    model = strategy("feature-extraction", pool="mean", pad_token_id=63).prepare(tiny_model(), "classification")
    ids = torch.tensor([[5, 9, 12]])
    padded = torch.tensor([[5, 9, 12, 63, 63]])
    torch.testing.assert_close(model.features(padded), model.features(ids))


def test_feature_extraction_works_with_other_attention_and_book_helpers():
    model = strategy("feature-extraction").prepare(tiny_model(attention="sdpa"), "classification")
    x, y = separable_data()
    loader = DataLoader(list(zip(x, y)), batch_size=8)
    assert 0.0 <= calc_accuracy_loader(loader, model, "cpu") <= 1.0

    class Chars:
        def encode(self, text):
            return [ord(c) % 64 for c in text]

    assert classify_review("hello", model, Chars(), "cpu", max_length=8, pad_token_id=63) in ("spam", "not spam")


# --------------------------------------------------------------------------- they learn


def train_steps(model, x, y, steps=25, lr=1e-2):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        calc_loss_batch_classification(x, y, model, "cpu").backward()
        opt.step()
    model.eval()


@pytest.mark.parametrize("name", STRATEGIES)
def test_a_short_classification_run_lowers_the_loss(name):
    x, y = separable_data()
    model = strategy(name).prepare(tiny_model(seed=1), "classification", num_classes=2)
    with torch.no_grad():
        before = calc_loss_batch_classification(x, y, model, "cpu").item()
    train_steps(model, x, y)
    with torch.no_grad():
        after = calc_loss_batch_classification(x, y, model, "cpu").item()
    assert after < 0.7 * before, (name, before, after)


@pytest.mark.parametrize("name", ["full", "lora", "adapter"])
def test_a_short_instruction_run_lowers_the_next_token_loss(name):
    torch.manual_seed(0)
    seq = torch.randint(0, 64, (4, 9))
    x, y = seq[:, :-1], seq[:, 1:]
    model = strategy(name).prepare(tiny_model(seed=2), "instruction")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.0)

    def loss():
        return nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())

    before = loss().item()
    for _ in range(25):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 0.8 * before


# --------------------------------------------------------------------------- misfits


class Bag(nn.Module):
    """A bag-of-embeddings model: an out_head, but no blocks and no attention."""

    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(64, 8)
        self.out_head = nn.Linear(8, 64)

    def forward(self, idx):
        return self.out_head(self.tok_emb(idx))


@pytest.mark.parametrize("name, options, task, missing", [
    ("lora", {"target": "attention"}, "lm", "W_query"),
    ("classification", {}, "classification", "trf_blocks"),
    ("adapter", {}, "lm", "trf_blocks"),
])
def test_a_strategy_that_does_not_fit_names_strategy_model_and_missing_part(name, options, task, missing):
    with pytest.raises(LLMKitError, match=rf"strategy '{name}' does not fit Bag: it lacks .*{missing}"):
        strategy(name, **options).prepare(Bag(), task)


def test_classification_needs_an_out_head_and_bad_options_are_named():
    headless = nn.Sequential(nn.Embedding(8, 4))
    for name in ("full", "lora", "feature-extraction"):
        with pytest.raises(LLMKitError, match=rf"'{name}' does not fit Sequential: .*out_head"):
            strategy(name).prepare(copy.deepcopy(headless), "classification")
    with pytest.raises(LLMKitError, match=r"has no option ranks \(did you mean 'rank'\?\); "
                                          r"its options are: rank=8, alpha=16, target='all'"):
        strategy("lora", ranks=8)
    with pytest.raises(LLMKitError, match="epochs must be an integer >= 1"):
        strategy("lora", epochs=0)
    with pytest.raises(LLMKitError, match="rank"):
        strategy("lora", rank=0)
    with pytest.raises(LLMKitError, match="target"):
        strategy("lora", target="mlp")
    with pytest.raises(LLMKitError, match="pool"):
        strategy("feature-extraction", pool="max")
    with pytest.raises(LLMKitError, match="tasks are: classification"):
        strategy("feature-extraction").prepare(tiny_model(), "lm")
    with pytest.raises(LLMKitError, match="task 'translate'"):
        strategy("full").prepare(tiny_model(), "translate")


# --------------------------------------------------------------------------- the conformance suite, for each


@pytest.mark.parametrize("name", ["lora", "classification"])
def test_the_kits_strategies_match_the_books_recipes(name):
    """The kit's LoRA and classification recipe train exactly what the book's functions train."""
    from llmkit_solutions.classification import prepare_for_classification
    from llmkit_solutions.lora import freeze_and_add_lora

    torch.manual_seed(5)
    ours = strategy(name, **({"rank": 4, "alpha": 8} if name == "lora" else {})).prepare(tiny_model(), "classification")
    torch.manual_seed(5)
    book = tiny_model()
    if name == "lora":
        book.out_head = nn.Linear(32, 2)
        freeze_and_add_lora(book, 4, 8)
    else:
        prepare_for_classification(book, 2, 1)
    assert trainable(ours) == trainable(book)
    x, _ = separable_data()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), book(x), atol=0, rtol=0)


class TestFull(BaseStrategyTests):
    @pytest.fixture
    def strategy_factory(self):
        return llmkit.get("finetune_strategies", "full").factory


class TestLoRA(BaseStrategyTests):
    options = {"rank": 2, "alpha": 4}

    @pytest.fixture
    def strategy_factory(self):
        return llmkit.get("finetune_strategies", "lora").factory


class TestClassification(BaseStrategyTests):
    @pytest.fixture
    def strategy_factory(self):
        return llmkit.get("finetune_strategies", "classification").factory


class TestFeatureExtraction(BaseStrategyTests):
    options = {"hidden": 8}

    @pytest.fixture
    def strategy_factory(self):
        return llmkit.get("finetune_strategies", "feature-extraction").factory


class TestAdapter(BaseStrategyTests):
    options = {"bottleneck": 4}

    @pytest.fixture
    def strategy_factory(self):
        return llmkit.get("finetune_strategies", "adapter").factory
