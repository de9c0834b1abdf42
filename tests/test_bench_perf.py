"""The performance benchmarks run end to end on a tiny preset and report what they promise."""

from __future__ import annotations

import json

import pytest
import torch

from llmkit import bench_perf
from llmkit.bench_perf import PRESETS, TrainPath, flops_per_token


@pytest.fixture(autouse=True)
def calibration_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMKIT_CALIBRATION", str(tmp_path / "calibration.json"))


def test_flops_per_token_of_gpt_mini_is_the_issues_figure():
    # 6 x (6 blocks x 12 x 384^2 + 384 x 50257) + 12 x 6 x 256 x 384 = 186.5 MFLOP
    assert flops_per_token(PRESETS["gpt-mini"]["cfg"]) == pytest.approx(186.5e6, rel=1e-3)


def test_train_reports_tokens_mfu_and_ratio_per_path():
    paths = [TrainPath("book", model="gpt-book", fused_loss=False, fused_adamw=False),
             TrainPath("gpt", tie_weights=True)]
    result = bench_perf.bench_train("tiny", paths, rounds=1, threads=1)
    assert result["peak_gflops"]["fp32"] > 0
    rows = {r["name"]: r for r in result["rows"]}
    if "gpt-book" not in [p["path"] for p in result["skipped"]]:
        assert rows["book"]["ratio"] == 1.0
    for row in rows.values():
        assert row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1.5 and len(row["all_seconds"]) == 1


def test_train_json_cli_is_one_document(capsys):
    assert bench_perf.main(["train", "--preset", "tiny", "--paths", "gpt+tied,gpt+plain", "--rounds", "1",
                            "--threads", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["bench"] == "train" and [r["name"] for r in result["rows"]] == ["gpt+tied", "gpt+plain"]
    assert result["rows"][1]["fused_loss"] is False and result["machine"]["torch"] == torch.__version__


def test_unknown_path_flag_is_refused():
    with pytest.raises(SystemExit, match="unknown path flag"):
        bench_perf.parse_paths("gpt+turbo")


def test_hf_conversion_holds_the_same_weights():
    pytest.importorskip("transformers")
    import llmkit

    cfg = dict(PRESETS["tiny"]["cfg"])
    torch.manual_seed(0)
    model = llmkit.create("models", "gpt", cfg).eval()
    hf = bench_perf.hf_gpt2_from(model, cfg)
    x = torch.randint(0, cfg["vocab_size"], (2, 10))
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, model(x), atol=1e-4, rtol=0)


def test_generate_compares_paths_and_checks_identical_ids(capsys):
    pytest.importorskip("transformers")
    result = bench_perf.bench_generate(prompt_tokens=4, new_tokens=5, rounds=1, threads=1,
                                       cfg=dict(PRESETS["tiny"]["cfg"]), extra=("bf16", "int8-dynamic"))
    rows = {r["path"]: r for r in result["rows"]}
    assert rows["transformers GPT2 generate"]["identical_to_production_fp32"]
    if "book + KV cache (reference)" in rows:
        assert rows["book + KV cache (reference)"]["identical_to_production_fp32"]
    assert rows["gpt fp32 (production)"]["vs_hf"] > 0 and "gpt bf16 copy" in rows
    assert rows["gpt fp32 + bf16 draft 8"]["identical_to_production_fp32"]  # speculative: fp32's own ids
    assert rows["gpt fp32 + int8-dynamic draft 8"]["identical_to_production_fp32"]
    bench_perf.print_generate(result)
    assert "same ids as production fp32" in capsys.readouterr().out
