"""llmkit.widgets without a browser: each widget's controls drive its output, and the static fallback."""

from __future__ import annotations

import json
import re

import pytest
import torch

import llmkit
from llmkit.errors import LLMKitError
from llmkit.tokenizers import build_tokenizer
from llmkit.widgets import (TrainingDashboard, attention_heatmap, embedding_view, finetune_view,
                            generation_playground, sliding_window_view, static_reason, tokenizer_explorer,
                            widgets_enabled)
from llmkit.widgets.attention_heatmap import attention_maps
from tests.browser.support import require

try:
    import ipywidgets  # noqa: F401
except ImportError:  # the widget views need it; the static fallbacks do not
    ipywidgets = None

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
SMALL = dict(vocab_size=50257, context_length=16, emb_dim=16, n_heads=4, n_layers=2, drop_rate=0.0, qkv_bias=False)


@pytest.fixture
def needs_ipywidgets():
    require(ipywidgets is not None, "ipywidgets is not installed (pip install ipywidgets)")


@pytest.fixture(scope="module")
def gpt2():
    return build_tokenizer("gpt2")


def tiny_gpt(seed=0, **overrides):
    """The book's GPTModel, whose attention modules (any of them, by name) the views look inside."""
    torch.manual_seed(seed)
    return llmkit.create("models", "gpt-book", {**SMALL, **overrides})


def ids_shown(html_text, tokenizer_label):
    panel = re.search(rf'data-tokenizer="{tokenizer_label}".*?<code class="llmkit-ids"[^>]*>\[(.*?)\]</code>',
                      html_text, re.S)
    return [int(i) for i in panel.group(1).split(",") if i.strip()]


def formatted(obj):
    """What Jupyter would receive for ``obj`` as a cell's last line."""
    from IPython.core.formatters import DisplayFormatter

    return DisplayFormatter().format(obj)[0]


# ------------------------------------------------------------------------------ widget or static


class FakeKernelShell:
    kernel = object()  # what a comm-capable ipykernel shell has and terminal IPython lacks


def test_the_display_rule(monkeypatch):
    import IPython

    monkeypatch.delenv("LLMKIT_NO_WIDGETS", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert "no Jupyter kernel" in static_reason()  # pytest: no IPython at all
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    if ipywidgets is not None:
        assert widgets_enabled()
    for env, value, reason in (("LLMKIT_NO_WIDGETS", "1", "LLMKIT_NO_WIDGETS"),
                               ("NBGRADER_EXECUTION", "autograde", "nbgrader")):
        monkeypatch.setenv(env, value)
        assert reason in static_reason() and not widgets_enabled()
        monkeypatch.delenv(env)
    monkeypatch.setenv("LLMKIT_NO_WIDGETS", "0")  # only a true value switches the views off
    assert widgets_enabled() == (ipywidgets is not None)


def test_a_widget_view_carries_the_static_fallback(monkeypatch, needs_ipywidgets):
    import IPython

    explorer = tokenizer_explorer("Hello world", tokenizers=("gpt2",))
    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("LLMKIT_NO_WIDGETS", raising=False)
    bundle = formatted(explorer)
    assert bundle[WIDGET_VIEW]["model_id"] == explorer.ui.model_id
    assert "[15496, 995]" in bundle["text/html"]  # for front ends without the widget manager
    monkeypatch.setenv("LLMKIT_NO_WIDGETS", "1")
    assert WIDGET_VIEW not in formatted(explorer)


def test_every_widget_has_a_static_fallback(monkeypatch, gpt2):
    monkeypatch.setenv("LLMKIT_NO_WIDGETS", "1")
    model = tiny_gpt()
    dash = TrainingDashboard()
    dash({"kind": "train", "step": 1, "epoch": 0, "loss": 3.0, "lr": 1e-3, "tokens_seen": 64, "tokens_per_s": 10.0})
    views = [tokenizer_explorer("Hi there", tokenizers=("gpt2",)), sliding_window_view("one two three four five six"),
             embedding_view(20, 8, 4), attention_heatmap(model, gpt2, "Hello world"), dash,
             generation_playground(model, gpt2, max_tokens=3), finetune_view(tiny_gpt(vocab_size=40), ("full", "lora"))]
    for view in views:
        bundle = formatted(view)
        assert WIDGET_VIEW not in bundle, type(view).__name__
        assert bundle.get("text/html") or bundle.get("image/png", b"").startswith(b"\x89PNG"), type(view).__name__
        assert view._ui is None  # the static path never builds ipywidgets
    assert isinstance(dash.figure(), __import__("matplotlib.figure").figure.Figure)


# ------------------------------------------------------------------------------ tokenizers, windows, embeddings


def test_tokenizer_explorer_shows_each_tokenizers_ids_and_follows_the_text_box(gpt2, needs_ipywidgets):
    explorer = tokenizer_explorer("Hello, world", tokenizers=("gpt2", "char"))
    char = explorer.tokenizers["char"]
    html_text = explorer.ui.children[1].value
    assert ids_shown(html_text, "gpt2") == gpt2.encode("Hello, world")
    assert ids_shown(html_text, "char") == char.encode("Hello, world")
    explorer.controls["text"].value = "Do you like tea?"
    html_text = explorer.output.value
    assert ids_shown(html_text, "gpt2") == gpt2.encode("Do you like tea?")
    assert ids_shown(html_text, "char") == char.encode("Do you like tea?")
    assert html_text.count('class="llmkit-token"') == len(gpt2.encode("Do you like tea?")) + len("Do you like tea?")
    explorer.controls["text"].value = "naïve ☕"  # beyond the char vocabulary: that panel explains, gpt2 still works
    assert "not in the vocabulary" in explorer.output.value
    assert ids_shown(explorer.output.value, "gpt2") == gpt2.encode("naïve ☕")


def test_sliding_window_pairs_follow_the_sliders(needs_ipywidgets):
    ids = list(range(100, 130))  # 30 ids
    view = sliding_window_view(ids, max_length=4, stride=1, tokenizer=None)
    pairs = view.pairs()
    assert len(pairs) == 26 and pairs[0] == ([100, 101, 102, 103], [101, 102, 103, 104])
    assert all(y == x[1:] + [x[-1] + 1] for x, y in pairs)  # the target is the input shifted by one
    view.ui
    view.controls["stride"].value = 4
    assert view.output.value.count('class="llmkit-pair"') == min(len(range(0, 26, 4)), view.max_rows)
    assert "30 tokens → 7 pairs" in view.output.value
    view.controls["max_length"].value = 8
    assert len(view.pairs()) == len(range(0, 30 - 8, 4)) and "stride 4" in view.summary()
    assert "max_length 8" in view.output.value and "[100, 101, 102, 103, 104, 105, 106, 107]" in view.output.value
    too_short = sliding_window_view([1, 2, 3], max_length=4, tokenizer=None)
    assert "needs max_length + 1" in too_short.render_html()


def test_sliding_window_decodes_text_with_the_tokenizer(gpt2):
    view = sliding_window_view("In the heart of the city stood the old library", max_length=4, stride=2)
    assert view.ids == gpt2.encode("In the heart of the city stood the old library")
    assert "&#x27; heart&#x27;" in view.render_html() or "' heart'" in view.render_html()


def test_embedding_view_adds_the_position_vector_and_follows_the_slider(needs_ipywidgets):
    view = embedding_view(vocab_size=50, emb_dim=16, context_length=6, token_ids=[3, 7, 11])
    v0, v4 = view.vectors(0), view.vectors(4)
    torch.testing.assert_close(v4["input"], view.tok_emb(torch.tensor([3, 7, 11])) + view.pos_emb.weight[4])
    p0, p4 = view.projected(0), view.projected(4)
    torch.testing.assert_close(p4["input"] - p4["token"], p4["position"].expand(3, 2))
    torch.testing.assert_close(p0["token"], p4["token"])  # tokens stay; only the sum moves
    before = view.ui.children[1].value
    view.controls["position"].value = 4
    assert view.position == 4 and view.output.value != before and bytes(view.output.value).startswith(b"\x89PNG")
    two_d = embedding_view(10, 2, 3)  # emb_dim 2: the plot is the vectors themselves
    torch.testing.assert_close(two_d.projected(1)["input"], two_d.vectors(1)["input"])


# ------------------------------------------------------------------------------ attention


def weights_seen_by_dropout(model, ids):
    """The weights each block actually used: MHA, GQA and sliding-window pass them through self.dropout."""
    seen = []
    hooks = [block.att.dropout.register_forward_hook(lambda m, i, out: seen.append(out.detach()))
             for block in model.trf_blocks]
    model.eval()
    with torch.no_grad():
        model(torch.tensor([ids]))
    for hook in hooks:
        hook.remove()
    heads = model.trf_blocks[0].att.num_heads
    return torch.stack([w.reshape(1, heads, len(ids), len(ids))[0] for w in seen])


@pytest.mark.parametrize("attention, options", [("mha", {}), ("gqa", {"num_kv_groups": 2}),
                                                ("sliding-window", {"window_size": 3})])
def test_heatmap_weights_are_the_ones_the_attention_uses(attention, options, gpt2):
    model = tiny_gpt(attention=attention, attention_options=options)
    heatmap = attention_heatmap(model, gpt2, "Your journey starts with one step")
    maps = heatmap.maps
    assert maps.shape == (2, 4, 6, 6)
    torch.testing.assert_close(maps, weights_seen_by_dropout(model, heatmap.ids))
    assert torch.all(torch.triu(maps, diagonal=1) == 0)  # causal: no weight on future tokens
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, 6))
    if attention == "sliding-window":
        assert torch.all(torch.tril(maps, diagonal=-3) == 0) and torch.all(torch.diagonal(maps, -2, -2, -1) > 0)


def test_heatmap_of_fused_sdpa_equals_mha_with_the_same_weights(gpt2):
    mha = tiny_gpt(attention="mha")
    sdpa = tiny_gpt(seed=5, attention="sdpa")
    sdpa.load_state_dict(mha.state_dict())
    ids = gpt2.encode("Every effort moves you forward")
    torch.testing.assert_close(attention_maps(sdpa, ids), attention_maps(mha, ids))
    assert model_is_in_training_mode_after(mha, ids)


def test_heatmap_of_the_kits_gpt_equals_the_books_with_the_same_weights(gpt2):
    book = tiny_gpt()
    kit = llmkit.create("models", "gpt", SMALL)
    kit.load_state_dict(book.state_dict())
    ids = gpt2.encode("Every effort moves you forward")
    torch.testing.assert_close(attention_maps(kit, ids), attention_maps(book, ids), atol=1e-6, rtol=0)


def model_is_in_training_mode_after(model, ids):
    model.train()
    attention_maps(model, ids)
    return all(m.training for m in model.modules())


def test_heatmap_dropdowns_and_prompt_drive_the_picture(gpt2, needs_ipywidgets):
    heatmap = attention_heatmap(tiny_gpt(), gpt2, "Hello world, hello", layer=0, head=0)
    first_png = heatmap.ui.children[-1].value
    heatmap.controls["head"].value = 3
    assert heatmap.head == 3 and torch.equal(heatmap.weights, heatmap.maps[0, 3])
    assert heatmap.output.value != first_png
    heatmap.controls["layer"].value = 1
    torch.testing.assert_close(heatmap.weights, heatmap.maps[1, 3])
    heatmap.controls["prompt"].value = "A longer prompt with more tokens in it"
    assert heatmap.weights.shape == (8, 8) and heatmap.tokens[1] == " longer"
    heatmap.controls["prompt"].value = ""
    assert "no tokens" in heatmap.message.value  # the error is shown, the last picture stays


def test_heatmap_explains_an_attention_without_projections(gpt2):
    model = tiny_gpt()

    class Opaque(torch.nn.Module):
        def forward(self, x):
            return x

    model.trf_blocks[1].att = Opaque()
    with pytest.raises(LLMKitError, match="Opaque: it lacks W_query, W_key, num_heads, head_dim"):
        attention_heatmap(model, gpt2, "Hello")


def test_heatmap_sees_through_the_adapter_wrapper(gpt2):
    model = tiny_gpt()
    ids = gpt2.encode("Hello there")
    expected = attention_maps(model, ids)
    adapted = llmkit.create("finetune_strategies", "adapter", bottleneck=4).prepare(model, "lm")
    torch.testing.assert_close(attention_maps(adapted, ids), expected)  # adapters start as the identity


# ------------------------------------------------------------------------------ training dashboard


def test_dashboard_receives_exactly_what_train_emits(tmp_path, needs_ipywidgets):
    from llmkit.training import TrainConfig, train
    from llmkit_solutions.data_sampling import sliding_window_loader

    class Chars:
        def encode(self, text):
            return [ord(c) % 40 for c in text]

        def decode(self, ids):
            return "".join(chr(97 + i % 26) for i in ids)

    ids = [(i * 7) % 40 for i in range(600)]
    model = tiny_gpt(vocab_size=40)
    dash = TrainingDashboard(redraw_every=60)  # the plot: redrawn at evaluations and samples only
    first_png = dash.ui.children[0].value
    loaders = {"train": sliding_window_loader(ids[:400], 4, 16, shuffle=False),
               "val": sliding_window_loader(ids[400:], 2, 16, shuffle=False)}
    train(model, sliding_window_loader(ids[:400], 4, 16, seed=1), loaders,  # one epoch = 6 batches
          TrainConfig(epochs=1, eval_every=3, eval_batches=1, warmup_steps=2, sample_tokens=4),
          tokenizer=Chars(), run_dir=tmp_path, callbacks=[dash], show_progress=False)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert dash.records == logged  # every event, nothing invented, nothing trained twice
    assert [r["kind"] for r in dash.records].count("train") == 6 == len(dash.train_steps)
    assert dash.train_losses == [r["loss"] for r in logged if r["kind"] == "train"]
    assert [r["step"] for r in dash.evals] == [0, 3, 6] and dash.samples[-1]["text"]
    stats = dash.stats()
    last = [r for r in logged if r["kind"] == "train"][-1]
    assert stats["step"] == 6 and stats["tokens_per_s"] == last["tokens_per_s"]
    assert stats["val_loss"] == dash.evals[-1]["val_loss"]
    assert 'data-stat="step">6<' in dash.stats_box.value and "sample after epoch 1" in dash.sample_box.value
    assert dash.plot.value != first_png
    lines = dash.figure().axes[0].get_lines()
    assert list(lines[0].get_ydata()) == dash.train_losses
    assert list(lines[2].get_ydata()) == [r["val_loss"] for r in dash.evals]


@pytest.mark.slow
def test_dashboard_as_a_pipeline_run_callback(tmp_path):
    from llmkit.pipeline import run
    from llmkit.runconfig import load_run_config
    from tests.tiny import TINY_SETTINGS

    cfg = load_run_config(None, [*TINY_SETTINGS, "train.epochs=1", "sampler.batches_per_epoch=3",
                                 "tokenizer.name=char"])
    dash = TrainingDashboard()
    run_dir, _ = run(cfg, run_dir=tmp_path / "run", stages=["pretrain"], callbacks=[dash], show_progress=False)
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert dash.records == logged and dash.stats()["step"] == 3 and dash.samples


# ------------------------------------------------------------------------------ generation, fine-tuning


def test_playground_controls_regenerate_reproducibly(gpt2, needs_ipywidgets):
    model = tiny_gpt()
    playground = generation_playground(model, tokenizer=gpt2, prompt="Hello", max_tokens=8)
    playground.ui
    greedy = playground.text
    assert greedy.startswith("Hello") and len(playground.last_ids) == 1 + 8
    rng_before = torch.get_rng_state()
    playground.controls["temperature"].value = 1.5
    sampled = playground.text
    assert sampled != greedy and "<b>Hello</b>" in playground.output.value
    assert torch.equal(torch.get_rng_state(), rng_before)  # seeded inside fork_rng: the notebook's RNG is untouched
    playground.controls["temperature"].value = 0.0
    assert playground.text == greedy
    playground.controls["temperature"].value = 1.5
    assert playground.text == sampled  # same seed, same settings, same text
    playground.controls["seed"].value = 7
    assert playground.text != sampled
    playground.controls["top_k"].value = 1  # top-1 sampling is greedy
    assert playground.text == greedy
    playground.controls["max_tokens"].value = 3
    assert len(playground.last_ids) == 1 + 3
    assert model.training  # the model's mode is restored after generating


def test_playground_picks_between_a_model_and_a_checkpoint(tmp_path, needs_ipywidgets):
    from llmkit.checkpoint import save_checkpoint
    from llmkit.pipeline import tokenizer_bytes

    char = build_tokenizer("char", "hello world, the quick brown fox")
    cfg = {**SMALL, "vocab_size": char.n_vocab}
    trained, fresh = tiny_gpt(1, vocab_size=char.n_vocab), tiny_gpt(2, vocab_size=char.n_vocab)
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", trained, model_cfg=cfg, tokenizer_name="char",
                    tokenizer_data=tokenizer_bytes(char), model_name="gpt-book")
    playground = generation_playground({"fresh": fresh, "saved": tmp_path / "run"}, tokenizer=char,
                                       prompt="the", max_tokens=10)
    playground.ui
    from_fresh = playground.text
    playground.controls["model"].value = "saved"
    assert playground.text == generation_playground(trained, char, prompt="the", max_tokens=10).generate()
    assert playground.text != from_fresh
    assert list(generation_playground(tmp_path).sources) == [str(tmp_path / "run")]  # a folder of runs
    with pytest.raises(LLMKitError, match="tokenizer"):
        generation_playground(fresh).generate()


def test_finetune_view_counts_each_strategy_on_a_copy(needs_ipywidgets):
    model = tiny_gpt(vocab_size=40)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    view = finetune_view(model)
    rows = {r["strategy"]: r for r in view.rows()}
    assert list(rows) == ["full", "lora", "classification", "feature-extraction", "adapter"]
    assert rows["full"]["trainable"] == rows["full"]["total"]
    for name in ("lora", "classification", "feature-extraction", "adapter"):
        assert 0 < rows[name]["trainable"] < rows[name]["total"]
        assert rows[name]["frozen"] == rows[name]["total"] - rows[name]["trainable"]
    lora = llmkit.create("finetune_strategies", "lora")
    import copy

    info = lora.describe(lora.prepare(copy.deepcopy(model), "classification"))
    assert rows["lora"]["trainable"] == info["trainable"] and rows["lora"]["total"] == info["total"]
    # the model passed in is untouched: same tensors, every parameter still trainable, no new modules
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert all(p.requires_grad for p in model.parameters())
    first_png = view.ui.children[1].value
    view.controls["task"].value = "lm"
    lm = {r["strategy"]: r for r in view.rows()}
    assert "error" in lm["classification"] and "error" in lm["feature-extraction"]
    assert lm["full"]["trainable"] > rows["full"]["trainable"]  # the LM head (40 outputs) replaces the 2-class one
    assert view.output.value != first_png


@pytest.mark.slow
def test_the_rule_in_a_real_kernel():
    """A Jupyter kernel gets the widget view (plus the fallback) unless LLMKIT_NO_WIDGETS or nbgrader says static."""
    require(ipywidgets is not None, "ipywidgets is not installed (pip install ipywidgets)")
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = ["import os\nos.environ.pop('LLMKIT_NO_WIDGETS', None)\nos.environ.pop('NBGRADER_EXECUTION', None)\n"
             "from llmkit.widgets import tokenizer_explorer\nview = tokenizer_explorer('Hello world', ('gpt2',))\nview",
             "os.environ['LLMKIT_NO_WIDGETS'] = '1'\nview",
             "del os.environ['LLMKIT_NO_WIDGETS']\nos.environ['NBGRADER_EXECUTION'] = 'autograde'\nview"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    bundles = [[o for o in cell.outputs if o.output_type == "execute_result"][0]["data"] for cell in nb.cells]
    assert WIDGET_VIEW in bundles[0] and "[15496, 995]" in bundles[0]["text/html"]
    for static in bundles[1:]:
        assert WIDGET_VIEW not in static and "[15496, 995]" in static["text/html"]
