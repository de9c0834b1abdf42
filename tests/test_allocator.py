"""llmkit.allocator: freed CPU memory stays in the process, so a training step stops faulting in pages."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from llmkit import allocator
from llmkit.errors import LLMKitError

ROOT = Path(__file__).resolve().parents[1]
GLIBC = allocator._glibc() is not None  # Linux with glibc: what CI runs

# A fresh process allocates a 64 MB tensor and asks glibc (mallinfo2) where the block came from:
# "hblkhd" counts bytes in blocks malloc mapped on their own (munmapped again on free), "arena" the
# heap that freed blocks return to, ready for the next allocation.
PROBE = textwrap.dedent("""
    import ctypes, json, sys, torch
    from llmkit import allocator

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    state = allocator.keep_freed_memory() if sys.argv[1] == "keep" else "untouched"
    block = torch.ones(16 * 1024 * 1024)  # 64 MB: above glibc's default mmap threshold (32 MB at most)
    held = libc.mallinfo2()
    del block
    freed = libc.mallinfo2()
    print(json.dumps({"state": state, "mapped_while_held": held.hblkhd, "heap_after_free": freed.arena,
                      "free_in_heap_after_free": freed.fordblks}))
""")
MB64 = 64 * 1024 * 1024


def probe(mode: str, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env}, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("value,expected", [("1", True), ("", True), ("on", True), ("0", False), ("off", False),
                                            ("NO", False)])
def test_the_switch_reads_the_usual_spellings(monkeypatch, value, expected):
    monkeypatch.setenv(allocator.ENV, value)
    assert allocator.wanted() is expected


def test_a_bad_switch_is_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv(allocator.ENV, "sometimes")
    with pytest.raises(LLMKitError) as err:
        allocator.wanted()
    message = str(err.value)
    assert "\n" not in message and allocator.ENV in message and "1" in message and "0" in message


def require_glibc() -> None:
    """glibc's malloc is what the setting tunes: CI (Debian) has it, so there its absence fails."""
    if GLIBC:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("glibc's malloc was not found (ctypes could not call gnu_get_libc_version)")
    pytest.skip("glibc's malloc is what this setting tunes")


def test_kept_memory_serves_a_large_block_from_the_heap_and_keeps_it_there_after_free():
    require_glibc()
    plain, kept = probe("plain"), probe("keep")
    # By default glibc maps a 64 MB block on its own and unmaps it on free: the next step faults it in again.
    assert plain["mapped_while_held"] >= MB64, plain
    assert plain["free_in_heap_after_free"] < MB64, plain
    # Kept: the block comes from the heap and stays there, free, for the next allocation.
    assert kept["state"].startswith("on"), kept
    assert kept["mapped_while_held"] < MB64, kept
    assert kept["free_in_heap_after_free"] >= MB64, kept


def test_switched_off_it_leaves_malloc_alone():
    require_glibc()
    off = probe("keep", **{allocator.ENV: "0"})
    assert off["state"].startswith("off")
    assert off["mapped_while_held"] >= MB64 and off["free_in_heap_after_free"] < MB64, off


def test_it_applies_once_and_reports_the_same_answer(monkeypatch):
    monkeypatch.setattr(allocator, "_state", {})
    calls = []
    real = allocator._glibc

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(allocator, "_glibc", counting)
    first = allocator.keep_freed_memory()
    assert allocator.keep_freed_memory() == first
    assert len(calls) == 1


def test_train_on_the_cpu_keeps_freed_memory(monkeypatch):
    from llmkit import training
    from llmkit_solutions.gpt import GPTModel

    called = []
    monkeypatch.setattr(training, "keep_freed_memory", lambda: called.append(1) or "on")
    torch.manual_seed(0)
    cfg = dict(vocab_size=20, context_length=8, emb_dim=16, n_heads=2, n_layers=1, drop_rate=0.0, qkv_bias=False)
    data = torch.randint(0, 20, (8, 9))
    loader = torch.utils.data.DataLoader(list(zip(data[:, :-1], data[:, 1:])), batch_size=4)
    training.train(GPTModel(cfg), loader, {}, training.TrainConfig(epochs=1, eval_every=100, checkpoint_every=100,
                                                                   sample_tokens=0), show_progress=False)
    assert called == [1]


# --------------------------------------------------------------------------- the nanoGPT comparison

FAKE_NANOGPT = textwrap.dedent('''
    """A stand-in with nanoGPT's interface (GPTConfig, GPT(config), forward(idx, targets), configure_optimizers)."""
    from dataclasses import dataclass
    import torch
    from torch import nn

    @dataclass
    class GPTConfig:
        block_size: int = 256
        vocab_size: int = 50304
        n_layer: int = 6
        n_head: int = 6
        n_embd: int = 384
        dropout: float = 0.0
        bias: bool = True

    class GPT(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            print("number of parameters: many")

        def forward(self, idx, targets=None):
            logits = self.head(self.wte(idx))
            loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
            return logits, loss

        def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
            return torch.optim.AdamW(self.parameters(), lr=learning_rate, betas=betas)
''')


@pytest.mark.slow
def test_compare_nanogpt_runs_every_contestant_in_its_own_process(tmp_path, capsys):
    (tmp_path / "model.py").write_text(FAKE_NANOGPT)
    spec = importlib.util.spec_from_file_location("compare_nanogpt", ROOT / "benchmarks" / "compare_nanogpt.py")
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    assert compare.main(["--nanogpt", str(tmp_path), "--precisions", "fp32", "--modes", "eager",
                         "--rounds", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = {r["path"]: r for r in result["rows"]}
    assert list(rows) == ["nanoGPT eager fp32", "nanoGPT eager fp32 +kept memory", "llmkit eager fp32"]
    pids = {r["pid"] for r in rows.values()}
    assert len(pids) == 3 and os.getpid() not in pids
    assert rows["nanoGPT eager fp32"]["allocator"].startswith("as the process starts")
    for name in ("nanoGPT eager fp32 +kept memory", "llmkit eager fp32"):
        assert rows[name]["allocator"].startswith("on") or not GLIBC
    for r in rows.values():
        assert len(r["all_seconds"]) == 2 and all(s > 0 for s in r["all_seconds"])
    llm = rows["llmkit eager fp32"]
    assert llm["vs_nanogpt_same_mode"] == pytest.approx(
        llm["tokens_per_s"] / rows["nanoGPT eager fp32"]["tokens_per_s"])
    assert "vs_nanogpt_kept_memory" in llm


def test_compare_nanogpt_without_a_checkout_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare_nanogpt.py"), "--nanogpt",
                          str(tmp_path / "nowhere")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and "nanoGPT" in out.stderr
