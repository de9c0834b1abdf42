"""``llmkit run`` / ``pretrain`` / ``generate`` end to end, the resume-after-kill path, and bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.tiny import tiny_args


def llmkit(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "llmkit.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def records(run_dir, kind):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = llmkit("run", "--run-dir", str(run_dir), *tiny_args())
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_run_writes_every_artifact_and_learns(tiny_run):
    run_dir, result = tiny_run
    for name in ("config.toml", "metrics.jsonl", "loss.png", "checkpoint.pt", "tokenizer.json", "samples.md",
                 "report.md", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run_dir / "summary.json").read_text())["pretrain"]
    assert summary["initial_val_loss"] == pytest.approx(summary["ln_vocab"], abs=0.5)
    assert summary["final_val_loss"] < summary["initial_val_loss"] - 0.5
    report = (run_dir / "report.md").read_text()
    assert "validation loss" in report and "![loss curve](loss.png)" in report
    assert "report:" in result.stdout and "pretrain: val loss" in result.stdout
    assert len(records(run_dir, "sample")) == 2  # one per epoch


def test_generate_from_the_runs_checkpoint(tiny_run):
    run_dir, _ = tiny_run
    result = llmkit("generate", "--checkpoint", str(run_dir / "checkpoint.pt"), "--prompt", "The",
                    "--max-new-tokens", "10", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("The") and len(result.stdout.strip()) > 3


def test_existing_run_folder_is_never_overwritten_silently(tiny_run):
    run_dir, _ = tiny_run
    before = (run_dir / "checkpoint.pt").read_bytes()
    result = llmkit("run", "--run-dir", str(run_dir), *tiny_args())
    assert result.returncode == 2
    assert "already exists; continue it with --resume, replace it with --overwrite" in result.stderr
    assert (run_dir / "checkpoint.pt").read_bytes() == before


@pytest.mark.slow
def test_continual_pretraining_measures_forgetting(tmp_path):
    # Fit the old corpus well first: an undertrained model improves on any English, hiding forgetting.
    old = llmkit("pretrain", "--run-dir", str(tmp_path / "old"),
                 *tiny_args("train.max_steps=600", "train.eval_every=100"))
    assert old.returncode == 0, old.stderr[-3000:]
    result = llmkit("pretrain", "--from", str(tmp_path / "old" / "checkpoint.pt"), "--corpus", "builtin-shift",
                    "--run-dir", str(tmp_path / "shift"), *tiny_args("train.max_steps=200", "train.eval_every=50"))
    assert result.returncode == 0, result.stderr[-3000:]
    old_summary = json.loads((tmp_path / "old" / "summary.json").read_text())["pretrain"]
    summary = json.loads((tmp_path / "shift" / "summary.json").read_text())["pretrain"]
    forgetting = summary["forgetting"]
    assert forgetting["old_corpus"] == "builtin"
    # "before" is the old run's own final validation loss: same weights, same data, same windows.
    assert forgetting["before"] == pytest.approx(old_summary["final_val_loss"], abs=1e-6)
    assert forgetting["after"] > forgetting["before"] + 0.05, "training on a new corpus raises the old corpus's loss"
    assert summary["final_val_loss"] < summary["initial_val_loss"]
    assert "forgetting: loss on builtin" in result.stdout


def test_resume_after_sigkill_reproduces_the_uninterrupted_losses(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    settings = tiny_args("train.checkpoint_every=3")
    full = llmkit("run", "--run-dir", str(tmp_path / "full"), *settings)
    assert full.returncode == 0, full.stderr[-2000:]
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "llmkit.cli", "run", "--run-dir", str(killed_dir), *settings],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        metrics = killed_dir / "metrics.jsonl"
        if metrics.exists() and any(r["step"] >= 7 for r in records(killed_dir, "train")):
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "report.md").exists(), "the run must have died before finishing"
    resumed = llmkit("run", "--run-dir", str(killed_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    losses = lambda d: [(r["step"], r["loss"]) for r in records(d, "train")]
    assert losses(killed_dir) == losses(tmp_path / "full")


@pytest.mark.parametrize("args, message", [
    (["--set", "train.epoch=3"], "Unknown key 'train.epoch' in --set train.epoch=3. Did you mean 'train.epochs'?"),
    (["--set", "train.epochs=three"], "train.epochs must be int, got 'three' (str)."),
    (["--set", 'model.name="gpt-book"', "--set", "model.attention=flash"], "Unknown attention 'flash'."),
    (["--tokenizer", "bpee"], "Did you mean 'bpe'?"),
    (["--resume", "--set", "train.epochs=3"], "--resume continues the run with the config saved in its folder"),
    (["--config", "missing.toml"], "No config file at missing.toml"),
])
def test_bad_run_input_is_one_line(tmp_path, args, message):
    result = llmkit("run", "--run-dir", str(tmp_path / "bad"), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_resume_without_a_checkpoint_and_bad_corpora(tmp_path):
    result = llmkit("run", "--run-dir", str(tmp_path / "none"), "--resume")
    assert result.returncode == 2 and "--resume found no checkpoint" in result.stderr
    short = tmp_path / "short.txt"
    short.write_text("Too short to train on.\n\nReally.")
    result = llmkit("run", "--run-dir", str(tmp_path / "s"), "--corpus", str(short), *tiny_args())
    assert result.returncode == 2 and "fewer than one window" in result.stderr
    binary = tmp_path / "latin.txt"
    binary.write_bytes(b"\xff\xfe caf\xe9")
    result = llmkit("run", "--run-dir", str(tmp_path / "b"), "--corpus", str(binary), *tiny_args())
    assert result.returncode == 2 and "is not UTF-8" in result.stderr


def test_generate_with_a_bad_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    result = llmkit("generate", "--checkpoint", str(bad), "--prompt", "x")
    assert result.returncode == 2 and "not a readable llmkit checkpoint" in result.stderr
