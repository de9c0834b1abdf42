"""The ``llmkit`` command line, run as a user runs it."""

import os
import subprocess
import sys


def llmkit(*args, env=None):
    return subprocess.run([sys.executable, "-m", "llmkit.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_plugins_lists_every_family_with_provider_and_doc():
    result = llmkit("plugins")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for family in ("tokenizers", "samplers", "attention", "models", "finetune_strategies", "devices", "decoders"):
        assert family in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    for name in ("gpt2", "bpe", "char", "char-book", "simple-v1", "simple-v2", "sentencepiece", "sliding-window",
                 "random-block", "random-block-book", "mha", "sdpa", "gqa", "gpt", "gpt-book", "kv-cache", "book"):
        assert name in lines, f"{name} missing from llmkit plugins"
    assert "llmkit 0.1.0" in lines["sdpa"] and "scaled_dot_product_attention" in lines["sdpa"]
    assert lines["gpt-book"].split()[1] == "reference" and lines["kv-cache"].split()[1] == "llmkit_generate"
    assert lines["gpt"].split()[1] == "llmkit_gpt"
    assert "tokenizers (7)" in out and "attention (4)" in out and "samplers (4)" in out


def test_plugins_family_filter_and_unknown_family():
    assert llmkit("plugins", "--family", "attention").stdout.startswith("attention (4)")
    result = llmkit("plugins", "--family", "atention")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: Unknown component family 'atention'. Did you mean 'attention'? "
        "Families: tokenizers, samplers, attention, models, finetune_strategies, devices, decoders."
    )
    assert "Traceback" not in result.stderr


def test_bench_generate_prints_tokens_per_second_and_identity():
    result = llmkit("bench", "generate", "--config", "small", "--new-tokens", "8", "--prompt-tokens", "8",
                    "--model", "gpt")
    assert result.returncode == 0, result.stderr
    assert "no cache" in result.stdout and "kv-cache" in result.stdout and "book" in result.stdout
    assert "identical tokens: yes" in result.stdout
