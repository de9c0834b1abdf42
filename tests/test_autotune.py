"""precision/compile "auto": measured once per machine, cached, and never emulated bf16."""

from __future__ import annotations

import json

import pytest
import torch

from llmkit import autotune


@pytest.fixture(autouse=True)
def cache_file(tmp_path, monkeypatch):
    path = tmp_path / "calibration.json"
    monkeypatch.setenv(autotune.CACHE_ENV, str(path))
    return path


@pytest.fixture
def fake_timings(monkeypatch):
    """Make the measurements instant and scripted: GEMM rates and step seconds per precision."""
    calls = {"gemm": 0, "steps": 0}
    script = {"gemm": {"fp32": 100.0, "bf16": 300.0}, "steps": {"fp32": 0.3, "bf16": 0.1}}

    def gemm(device="cpu", dtypes=("fp32", "bf16"), n=512, repeats=7):
        calls["gemm"] += 1
        return {d: script["gemm"][d] for d in dtypes}

    def interleaved(fns, repeats, device="cpu", statistic=None):
        calls["steps"] += 1
        return {name: script["steps"][name] for name in fns}

    monkeypatch.setattr(autotune, "matmul_gflops", gemm)
    monkeypatch.setattr(autotune, "interleaved", interleaved)
    monkeypatch.setattr(autotune, "_calibration_step", lambda device, precision="fp32", compile=False: lambda: None)
    return script, calls


def test_cache_path_follows_the_env_var_then_xdg(monkeypatch, tmp_path, cache_file):
    assert autotune.cache_path() == cache_file
    monkeypatch.delenv(autotune.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert autotune.cache_path() == tmp_path / "xdg" / "llmkit" / "calibration.json"


def test_machine_key_names_the_cpu_its_flags_threads_and_torch():
    key = autotune.machine_key("cpu")
    assert f"torch={torch.__version__}" in key and "flags_sha1=" in key and f"threads={torch.get_num_threads()}" in key


def test_real_calibration_is_written_once_and_reused(cache_file, monkeypatch):
    first = autotune.choose_precision("cpu")
    assert first in ("fp32", "bf16")
    data = json.loads(cache_file.read_text())
    (entry,) = data["machines"].values()
    assert entry["precision"]["choice"] == first and entry["precision"]["gemm_gflops"]["fp32"] > 0
    assert entry["machine"]["torch"] == torch.__version__

    def must_not_measure(*args, **kwargs):
        raise AssertionError("the cached calibration should have been used")

    monkeypatch.setattr(autotune, "calibrate_precision", must_not_measure)
    assert autotune.choose_precision("cpu") == first


def test_emulated_bf16_is_never_chosen_however_fast_it_looks(monkeypatch, fake_timings):
    monkeypatch.setattr(autotune, "cpu_flags", lambda: {"avx2", "fma"})
    script, calls = fake_timings  # bf16 three times faster in every measurement
    assert autotune.choose_precision("cpu") == "fp32"
    assert calls["steps"] == 0  # no training step in bf16 is even tried
    assert "emulated" in autotune.explain("cpu")


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16", "bf16"])
def test_native_bf16_is_chosen_when_it_measures_faster(monkeypatch, fake_timings, flag):
    monkeypatch.setattr(autotune, "cpu_flags", lambda: {"avx2", flag})
    assert autotune.choose_precision("cpu") == "bf16"


def test_native_bf16_that_measures_slower_or_within_noise_stays_fp32(monkeypatch, fake_timings):
    monkeypatch.setattr(autotune, "cpu_flags", lambda: {"avx512_bf16"})
    script, _ = fake_timings
    script["steps"] = {"fp32": 0.3, "bf16": 0.29}  # 3% is noise, not a reason to change precision
    assert autotune.choose_precision("cpu") == "fp32"


def test_a_new_torch_or_other_flags_measure_again(monkeypatch, fake_timings):
    _, calls = fake_timings
    monkeypatch.setattr(autotune, "cpu_flags", lambda: {"avx2"})
    autotune.choose_precision("cpu")
    autotune.choose_precision("cpu")
    assert calls["gemm"] == 1
    monkeypatch.setattr(autotune, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    autotune.choose_precision("cpu")
    assert calls["gemm"] == 2
    monkeypatch.setattr(torch, "__version__", "99.0.0")
    autotune.choose_precision("cpu")
    assert calls["gemm"] == 3


def test_a_corrupt_cache_is_measured_again_and_rewritten(cache_file, fake_timings):
    cache_file.write_text("{not json")
    assert autotune.choose_precision("cpu") in ("fp32", "bf16")
    assert json.loads(cache_file.read_text())["format"] == autotune.FORMAT


def test_refresh_measures_again(fake_timings):
    _, calls = fake_timings
    autotune.calibration("cpu")
    autotune.calibration("cpu", refresh=True)
    assert calls["gemm"] == 2


def _compile_record(monkeypatch, **record):
    base = {"supported": True, "speedup": 1.3, "compile_seconds": 60.0, "calibration_layers": 2, "reason": "test"}
    monkeypatch.setattr(autotune, "calibrate_compile", lambda device: {**base, **record})


def test_compile_is_chosen_only_when_the_run_repays_the_compile_time(monkeypatch):
    _compile_record(monkeypatch)
    assert autotune.choose_compile("cpu") is True  # no run length given: faster per step is enough
    assert autotune.choose_compile("cpu", steps=10, step_seconds=0.5) is False  # saves 1 s, costs 60
    assert autotune.choose_compile("cpu", steps=10_000, step_seconds=0.5) is True
    # Compiling 12 blocks takes about 6x the 2-block calibration model's time.
    assert autotune.choose_compile("cpu", steps=2000, step_seconds=0.5, n_layers=12) is False


def test_compile_that_is_not_faster_or_not_supported_is_not_chosen(monkeypatch, cache_file):
    _compile_record(monkeypatch, speedup=1.04)
    assert autotune.choose_compile("cpu") is False
    cache_file.unlink()
    _compile_record(monkeypatch, supported=False, speedup=1.0, reason="no C++ compiler")
    assert autotune.choose_compile("cpu") is False


def test_compile_without_a_cxx_compiler_is_reported_not_attempted(monkeypatch):
    monkeypatch.setattr(autotune.shutil, "which", lambda name: None)
    record = autotune.calibrate_compile("cpu")
    assert record["supported"] is False and "C++ compiler" in record["reason"]


def test_a_read_only_cache_still_answers(monkeypatch, tmp_path, fake_timings):
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv(autotune.CACHE_ENV, str(blocked / "calibration.json"))  # parent is a file
    assert autotune.choose_precision("cpu") in ("fp32", "bf16")


def test_calibration_off_measures_nothing_and_keeps_the_static_defaults(monkeypatch):
    monkeypatch.setenv(autotune.CACHE_ENV, "off")

    def must_not_measure(*args, **kwargs):
        raise AssertionError("LLMKIT_CALIBRATION=off must not measure")

    monkeypatch.setattr(autotune, "calibrate_precision", must_not_measure)
    monkeypatch.setattr(autotune, "calibrate_compile", must_not_measure)
    assert autotune.choose_precision("cpu") == "fp32"
    assert autotune.choose_compile("cpu", steps=10**6, step_seconds=1.0) is False
