"""The recurrent and state-space models (plugin ``recurrent``): the models suite, exact resume, the run."""

import pytest
import torch

import llmkit
import llmkit_recurrent
from llmkit.testing.models import BaseModelTests
from tests.resume_tests import ResumeExactlyTests

if "lstm" not in llmkit.names("models"):  # tests load only the plugins conftest names
    llmkit.add_plugin(llmkit_recurrent, name="recurrent")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class RecurrentSuite(BaseModelTests, ResumeExactlyTests):
    book_compatible = False  # no attention weights to move to the book's GPT
    atol = 1e-5

    @pytest.fixture
    def model_factory(self):
        return llmkit.get("models", self.registered_name).factory


class TestRNN(RecurrentSuite):
    registered_name = "rnn"


class TestLSTM(RecurrentSuite):
    registered_name = "lstm"


class TestSSM(RecurrentSuite):
    registered_name = "ssm"


@pytest.mark.parametrize("name", ["rnn", "lstm", "ssm"])
def test_decoding_with_the_state_gives_the_plain_ids(name):
    torch.manual_seed(0)
    model = llmkit.create("models", name, {"vocab_size": 50, "context_length": 10, "emb_dim": 16, "n_heads": 2,
                                           "n_layers": 2, "drop_rate": 0.0, "qkv_bias": False}).eval()
    decode = llmkit.get("decoders", "kv-cache").factory
    idx = torch.tensor([[1, 2, 3]])
    cached = decode(model, idx, 14, 10)  # runs past the context: the state is rebuilt from the window
    plain = decode(model, idx, 14, 10, use_cache=False)
    assert torch.equal(cached, plain)


@pytest.mark.parametrize("strategy", ["adapter", "lora", "classification"])
def test_the_strategies_apply(strategy):
    model = llmkit.create("models", "lstm", {"vocab_size": 50, "context_length": 10, "emb_dim": 16, "n_heads": 2,
                                             "n_layers": 2, "drop_rate": 0.0, "qkv_bias": False})
    tuned = llmkit.create("finetune_strategies", strategy)
    out = tuned.prepare(model, "classification", num_classes=2)(torch.tensor([[1, 2, 3]]))
    assert out.shape == (1, 3, 2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm", "ssm"])
def test_llmkit_run_trains_them_by_name(name, tmp_path):
    """``llmkit run --set model.name=lstm``: the run's data, trainer, samples and report, unchanged."""
    from llmkit.run import run
    from llmkit.runconfig import load_run_config
    from tests.tiny import TINY_SETTINGS

    cfg = load_run_config(None, [*TINY_SETTINGS, f'model.name="{name}"', "train.epochs=1"])
    run_dir, results = run(cfg, tmp_path / "run", show_progress=False)
    summary = results[0].summary
    assert summary["final_val_loss"] < summary["initial_val_loss"]
    assert {"checkpoint.pt", "report.md", "samples.md", "loss.png"} <= {p.name for p in run_dir.iterdir()}
    assert f"{name}:" in (run_dir / "report.md").read_text()
