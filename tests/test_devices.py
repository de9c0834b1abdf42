"""Devices: selection, precision, the MPS guard, and DDP under torchrun matching one process."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import llmkit
from llmkit import devices
from llmkit.devices import CPUDevice, get_device
from llmkit.errors import LLMKitError
from tests.tiny import tiny_args


def test_cpu_and_auto_devices():
    assert set(llmkit.names("devices")) >= {"cpu", "cuda", "mps", "auto", "ddp"}
    cpu = get_device("cpu")
    assert cpu.torch_device.type == "cpu" and cpu.precision == "fp32" and cpu.is_main
    if not torch.cuda.is_available() and not devices.mps_usable():
        assert get_device("auto").torch_device.type == "cpu"


def test_precision_choices():
    with torch.no_grad():
        with CPUDevice("bf16").autocast():
            out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    with pytest.raises(LLMKitError, match="fp16 autocast is for GPUs"):
        CPUDevice("fp16")
    with pytest.raises(LLMKitError, match="Unknown precision 'fp8'"):
        CPUDevice("fp8")


def test_unavailable_accelerators_say_what_to_use(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(LLMKitError, match="CUDA is not available.*--device cpu"):
        get_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(devices, "torch_version", lambda: (2, 4))
    with pytest.raises(LLMKitError, match="wrong losses.*torch>=2.9"):
        get_device("mps")
    assert get_device("auto").torch_device.type == "cpu", "auto must skip MPS on old torch"


def test_ddp_outside_torchrun_says_how_to_start():
    with pytest.raises(LLMKitError, match="torchrun --nproc_per_node=2"):
        get_device("ddp")


def _eval_losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["val_loss"] for r in records if r["kind"] == "eval"], [r["loss"] for r in records if r["kind"] == "train"]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_follows_the_single_process_loss_curve(tmp_path):
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    common = tiny_args("model.drop_rate=0.0", "train.max_steps=8", "sampler.batch_size=4")
    single = subprocess.run([sys.executable, "-m", "llmkit.cli", "pretrain", "--run-dir", str(tmp_path / "one"),
                             *common], capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-2000:]
    double = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "llmkit.cli", "pretrain",
                             "--run-dir", str(tmp_path / "two"), "--device", "ddp", *common],
                            capture_output=True, text=True, timeout=600)
    assert double.returncode == 0, double.stderr[-3000:]
    val_one, train_one = _eval_losses(tmp_path / "one")
    val_two, train_two = _eval_losses(tmp_path / "two")
    assert len(train_one) == len(train_two) == 8
    # Same global batch, gradients averaged over ranks: equal up to float summation order.
    assert train_two == pytest.approx(train_one, abs=1e-4)
    assert val_two == pytest.approx(val_one, abs=1e-4)
    assert train_one[-1] < train_one[0]
