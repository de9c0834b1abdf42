"""Fine-tuning end to end: ``llmkit run`` with the classify and instruct stages, ``llmkit finetune``,
``llmkit classify`` and ``llmkit chat``, then each kind of bad input as one line."""

import json
import subprocess
import sys

import pytest
import torch

from llmkit.cli import main
from tests.tiny import tiny_args

# Small enough for seconds: few training examples, one epoch, short answers.
FAST = ["finetune.max_train_examples=48", "finetune.batch_size=8", "finetune.classify_epochs=1",
        "finetune.feature-extraction.epochs=2", "finetune.instruct_epochs=1", "finetune.max_eval_examples=4",
        "finetune.max_new_tokens=6", "finetune.samples=2"]
SPAM = "WINNER! Claim your £1,000 prize now: txt WIN to 80088"


def llmkit(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "llmkit.cli", *args], capture_output=True, text=True, input=stdin,
                          timeout=600)


def settings(*extra):
    return tiny_args(*FAST, *extra)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Pretrain tiny, then the classify stage with two strategies and the instruct stage."""
    run_dir = tmp_path_factory.mktemp("ft") / "run"
    result = llmkit("run", "--run-dir", str(run_dir),
                    *settings('finetune.strategies=["classification", "lora"]',
                              'run.stages=["pretrain", "classify", "instruct"]'))
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_run_compares_strategies_and_scores_instructions(tiny_run):
    run_dir, result = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = summary["classify"]["strategies"]
    assert list(rows) == ["classification", "lora"]
    assert rows["lora"]["trainable"] < rows["classification"]["total"]
    for row in rows.values():
        assert 0.0 <= row["test_accuracy"] <= 1.0 and row["seconds"] >= 0
        assert (run_dir / "classify" / f"{row['strategy']}.pt").is_file()
    instruct = summary["instruct"]
    for key in ("exact_match_before", "exact_match_after", "normalised_match_before", "normalised_match_after"):
        assert 0.0 <= instruct[key] <= 1.0
    report = (run_dir / "report.md").read_text()
    assert "| strategy | trainable parameters |" in report and "| lora |" in report
    assert "| exact match |" in report and "before" in report and "after" in report
    epochs = [json.loads(line) for line in (run_dir / "classify" / "metrics.jsonl").read_text().splitlines()]
    assert {r["label"] for r in epochs if r["kind"] == "epoch"} == {"classification", "lora"}
    assert all(r["val_accuracy"] is not None for r in epochs if r["kind"] == "epoch")
    for png in ("classify/curves.png", "instruct/curves.png"):
        assert (run_dir / png).read_bytes()[:4] == b"\x89PNG"
    answers = json.loads((run_dir / "instruct" / "responses.json").read_text())
    assert len(answers) == 4 and {"before", "after", "output"} <= set(answers[0])
    assert "classify: best_strategy" in result.stdout and "instruct: strategy full" in result.stdout


def test_classify_and_chat_use_the_finetuned_checkpoints(tiny_run):
    run_dir, _ = tiny_run
    result = llmkit("classify", SPAM, "--checkpoint", str(run_dir / "classify" / "lora.pt"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("spam", "not spam")
    result = llmkit("chat", "--checkpoint", str(run_dir / "instruct" / "full.pt"), "--device", "cpu",
                    "--max-new-tokens", "5", stdin="Name the capital city of Peru.\nexit\nnot read\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # one answer, then "exit" ends the loop


def test_finetune_command_from_a_run_checkpoint(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    result = llmkit("finetune", "--strategy", "adapter", "--task", "classification", "--from",
                    str(run_dir / "checkpoint.pt"), "--run-dir", str(tmp_path / "ft"), *settings())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "adapter: test accuracy" in result.stdout
    checkpoint = tmp_path / "ft" / "classify" / "adapter.pt"
    payload = torch.load(checkpoint, weights_only=True)
    info = payload["finetune"]
    assert info["task"] == "classification" and info["strategy"] == "adapter" and info["num_classes"] == 2
    assert payload["tokenizer_data"] and payload["model_cfg"]["context_length"] == 32
    assert "[finetune]" in (tmp_path / "ft" / "config.toml").read_text()


def test_finetune_from_a_gpt2_weights_file(tmp_path):
    """A GPT-2-layout model (GPT-2 vocabulary and tokenizer), read by the book model's from_pretrained."""
    from llmkit_solutions.gpt import GPTModel
    from llmkit_solutions.loading import save_gpt

    cfg = dict(vocab_size=50257, context_length=32, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0, qkv_bias=True)
    torch.manual_seed(0)
    save_gpt(GPTModel(cfg), cfg, tmp_path / "gpt2-mini.safetensors")
    result = llmkit("finetune", "--strategy", "lora", "--from", str(tmp_path / "gpt2-mini.safetensors"),
                    "--run-dir", str(tmp_path / "ft"),
                    *settings("finetune.max_train_examples=16", 'model.name="gpt-book"'))
    assert result.returncode == 0, result.stderr[-3000:]
    result = llmkit("classify", SPAM, "--checkpoint", str(tmp_path / "ft" / "classify" / "lora.pt"),
                    "--device", "cpu")
    assert result.returncode == 0 and result.stdout.strip() in ("spam", "not spam"), result.stderr


# --------------------------------------------------------------------------- bad input: one line, exit 2


def one_line_error(capsys, args):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "labels.tsv").write_text("label\ttext\nham\tsee you at 6\nmaybe\tcall me back\n")
    (folder / "entries.json").write_text(json.dumps([{"instruction": "Add 1 and 2.", "input": "", "output": "3"},
                                                     {"input": "x", "output": "y"}]))
    return folder


@pytest.mark.parametrize("args, message", [
    (["--spam", "{bad}/labels.tsv"], "bad label 'maybe' at line 3 of"),
    (["--task", "instruction", "--instructions", "{bad}/entries.json"], "entry 1 in"),
    (["--set", "finetune.max_length=999"], "sequences of 999 tokens exceed the model's context_length 32"),
    (["--set", "finetune.lora.rank=0"], "LoRA rank must be a positive integer, got 0"),
    (["--set", "finetune.lora.ranks=4"], "has no option ranks (did you mean 'rank'?)"),
    (["--set", "finetune.lorra.rank=4"], "Unknown finetune_strategies 'lorra'. Did you mean 'lora'?"),
    (["--set", "finetune.lora_rank=4"], "A strategy's options go in its own section, e.g. --set finetune.lora.rank=8"),
    (["--strategy", "feature-extraction", "--task", "instruction"], "cannot do task 'instruction'"),
    (["--strategy", "classification", "--set", "finetune.classification.trainable_blocks=5"],
     "trainable_blocks must be between 0 and 2"),
    (["--strategy", "lorra"], "Did you mean 'lora'?"),
])
def test_bad_finetune_input_is_one_line(tiny_run, bad_files, tmp_path, capsys, args, message):
    run_dir, _ = tiny_run
    args = [a.replace("{bad}", str(bad_files)) for a in args]
    err = one_line_error(capsys, ["finetune", "--from", str(run_dir / "checkpoint.pt"),
                                  "--run-dir", str(tmp_path / "out"), *args])
    assert message in err
    assert not (tmp_path / "out").exists()


def test_bad_run_settings_fail_before_pretraining(tmp_path, capsys):
    err = one_line_error(capsys, ["run", "--run-dir", str(tmp_path / "r"),
                                  *tiny_args("finetune.lora.rank=-1", 'run.stages=["pretrain", "classify"]')])
    assert "LoRA rank must be a positive integer, got -1; pass e.g. rank=8." in err
    assert not (tmp_path / "r").exists()


def test_strategy_options_come_from_their_own_section(tmp_path):
    """[finetune.lora] reaches the lora strategy, and the saved config and checkpoint keep it."""
    config = tmp_path / "run.toml"
    config.write_text('[finetune]\nstrategies = ["lora"]\n\n[finetune.lora]\nrank = 2\nalpha = 4\n')
    run_dir = tmp_path / "r"
    result = llmkit("run", "--config", str(config), "--run-dir", str(run_dir),
                    *settings('run.stages=["pretrain", "classify"]'))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[finetune.lora]\nrank = 2\nalpha = 4" in (run_dir / "config.toml").read_text()
    info = torch.load(run_dir / "classify" / "lora.pt", weights_only=True)["finetune"]
    assert info["options"]["rank"] == 2 and info["options"]["alpha"] == 4


def test_checkpoints_used_for_the_wrong_command(tiny_run, capsys):
    run_dir, _ = tiny_run
    err = one_line_error(capsys, ["classify", SPAM, "--checkpoint", str(run_dir / "instruct" / "full.pt")])
    assert "fine-tuned for instruction, not classification; use it with llmkit chat" in err
    err = one_line_error(capsys, ["chat", "--checkpoint", str(run_dir / "checkpoint.pt")])
    assert "is not a fine-tuned checkpoint" in err
