"""The kit without its answer key: every command works with ``llmkit_solutions`` impossible to import.

Each command runs in a fresh interpreter whose import system refuses ``llmkit_solutions`` (as if the
package were not installed), with every installed plugin allowed. The kit's own tokenizers,
samplers, GPT, decoder and strategies do the work; asking for a reference component by name says in
one line that the reference is not there.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.tiny import tiny_args

WITHOUT_ANSWERS = """
import sys

class NoAnswers:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "llmkit_solutions":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoAnswers())
from llmkit.cli import main

code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.startswith("llmkit_solutions")], "the answers were imported"
sys.exit(code)
"""
FAST = ["finetune.max_train_examples=32", "finetune.batch_size=8", "finetune.classify_epochs=1",
        "finetune.instruct_epochs=1", "finetune.max_eval_examples=2", "finetune.max_new_tokens=4",
        "finetune.samples=1", 'finetune.strategies=["lora"]', 'run.stages=["pretrain", "classify", "instruct"]']
SPAM = "WINNER! Claim your prize now: txt WIN to 80088"


def without_answers(*args, stdin=None, allow=None):
    env = {k: v for k, v in os.environ.items() if k != "LLMKIT_LOAD_PLUGINS"}  # every installed plugin
    if allow is not None:
        env["LLMKIT_LOAD_PLUGINS"] = allow
    return subprocess.run([sys.executable, "-c", WITHOUT_ANSWERS, *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=600)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("no-answers") / "run"
    result = without_answers("run", "--run-dir", str(run_dir), *tiny_args(*FAST))
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_plugins_lists_the_kits_components_and_no_answers():
    result = without_answers("plugins")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    names = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert {"gpt", "bpe", "char", "gpt2", "random-block", "sliding-window", "kv-cache", "lora", "cpu"} <= names
    assert not names & {"gpt-book", "mha", "char-book", "simple-v2", "book"}


def test_run_pretrains_and_fine_tunes_on_the_kits_components(tiny_run):
    run_dir, result = tiny_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["pretrain"]["final_val_loss"] < summary["pretrain"]["initial_val_loss"]
    assert 0.0 <= summary["classify"]["strategies"]["lora"]["test_accuracy"] <= 1.0
    assert "exact_match_after" in summary["instruct"]
    assert 'name = "gpt"' in (run_dir / "config.toml").read_text()


def test_generate_classify_chat_and_finetune(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    result = without_answers("generate", "--checkpoint", str(run_dir / "checkpoint.pt"), "--prompt", "The",
                             "--max-new-tokens", "8", "--device", "cpu")
    assert result.returncode == 0 and result.stdout.startswith("The"), result.stderr[-2000:]
    result = without_answers("classify", SPAM, "--checkpoint", str(run_dir / "classify" / "lora.pt"), "--device", "cpu")
    assert result.returncode == 0 and result.stdout.strip() in ("spam", "not spam"), result.stderr[-2000:]
    result = without_answers("chat", "--checkpoint", str(run_dir / "instruct" / "full.pt"), "--device", "cpu",
                             stdin="Name a colour.\nexit\n")
    assert result.returncode == 0 and result.stdout.count("\n") == 1, result.stderr[-2000:]
    result = without_answers("finetune", "--strategy", "adapter", "--from", str(run_dir / "checkpoint.pt"),
                             "--run-dir", str(tmp_path / "ft"), *tiny_args(*FAST))
    assert result.returncode == 0 and "adapter: test accuracy" in result.stdout, result.stderr[-2000:]


@pytest.mark.parametrize("allow, why", [(None, "reference (not installed"),
                                        ("sdpa", "reference (left out by LLMKIT_LOAD_PLUGINS)")])
def test_a_reference_component_by_name_is_one_clear_line(tmp_path, allow, why):
    result = without_answers("run", "--run-dir", str(tmp_path / "r"), *tiny_args('model.name="gpt-book"'),
                             allow=allow)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: Unknown models 'gpt-book'.") and why in lines[0]
