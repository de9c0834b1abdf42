"""``llmkit run`` with precision and compile "auto": the machine's measured choice reaches the run."""

import pytest
import torch

import llmkit.training
from llmkit import autotune
from llmkit.errors import LLMKitError
from llmkit.run import run
from llmkit.runconfig import load_run_config
from tests.tiny import TINY_SETTINGS


@pytest.fixture
def compiled(monkeypatch):
    """torch.compile as the training loop sees it, recorded (and not run: compiling takes a minute)."""
    calls = []

    def fake_compile(model, *args, **kwargs):
        calls.append(model)
        return model

    monkeypatch.setattr(llmkit.training.torch, "compile", fake_compile)
    return calls


def tiny(*extra):
    return load_run_config(None, [*TINY_SETTINGS, "train.max_steps=3", *extra])


def test_auto_takes_what_the_machine_measured(tmp_path, monkeypatch, compiled):
    asked = {}

    def compile_for(device, model_cfg, batch_tokens, steps):
        asked.update(model_cfg=model_cfg, batch_tokens=batch_tokens, steps=steps)
        return True

    monkeypatch.setattr(autotune, "choose_precision", lambda device: "bf16")
    monkeypatch.setattr(autotune, "choose_compile_for", compile_for)
    _, results = run(tiny(), tmp_path / "run")
    summary = results[0].summary
    assert "bf16" in summary["device"] and summary["compiled"] is True and len(compiled) == 1
    assert asked["steps"] == 3 and asked["batch_tokens"] == 8 * 32 and asked["model_cfg"]["n_layers"] == 2
    assert "training step compiled (precision auto, compile auto)" in (tmp_path / "run" / "report.md").read_text()


def test_explicit_settings_are_kept_and_nothing_is_measured(tmp_path, monkeypatch, compiled):
    def measure(*args, **kwargs):
        raise AssertionError("an explicit setting must not measure")

    monkeypatch.setattr(autotune, "choose_precision", measure)
    monkeypatch.setattr(autotune, "choose_compile_for", measure)
    _, results = run(tiny("device.precision=fp32", "device.compile=off"), tmp_path / "off")
    assert "fp32" in results[0].summary["device"] and results[0].summary["compiled"] is False and not compiled
    _, results = run(tiny("device.precision=fp32", "device.compile=on"), tmp_path / "on")
    assert results[0].summary["compiled"] is True and len(compiled) == 1


def test_calibration_off_keeps_fp32_and_eager(tmp_path, monkeypatch, compiled):
    monkeypatch.setenv(autotune.CACHE_ENV, "off")
    _, results = run(tiny(), tmp_path / "run")
    assert "fp32" in results[0].summary["device"] and results[0].summary["compiled"] is False and not compiled


def test_a_bad_compile_setting_is_one_line(tmp_path):
    with pytest.raises(LLMKitError, match="device.compile must be one of auto, on, off") as err:
        run(tiny("device.compile=yes"), tmp_path / "run")
    assert "\n" not in str(err.value)


def test_the_fused_loss_and_adamw_train_like_the_plain_step():
    # What the run's step changed (the model's own chunked loss, fused AdamW) moves the losses by
    # float rounding only: five steps of each from the same seed.
    from llmkit_gpt import GPT

    cfg = dict(vocab_size=97, context_length=16, emb_dim=32, n_heads=2, n_layers=2, drop_rate=0.0, qkv_bias=True)
    data = torch.randint(0, 97, (4, 17), generator=torch.Generator().manual_seed(0))
    losses = []
    for fused in (False, True):
        torch.manual_seed(0)
        model = GPT(cfg).train()
        optimizer = llmkit.training.make_optimizer(model, 1e-2, 0.1, fused=fused)
        run_losses = []
        for _ in range(5):
            loss = llmkit.training.step_loss(model, data[:, :-1], data[:, 1:], fused)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            run_losses.append(loss.item())
        losses.append(run_losses)
    assert losses[1] == pytest.approx(losses[0], abs=1e-4)
    assert losses[0][-1] < losses[0][0] - 0.1  # and they do learn
