"""``precision="auto"`` and ``compile="auto"``, decided by measuring this machine once.

Whether bf16 or ``torch.compile`` pays depends on the machine: bf16 autocast trained 1.7x faster than
fp32 on one two-core EPYC (AVX-512 BF16), 0.84x on a Xeon without AMX, and at a hundredth of the speed
on an EPYC with AVX2 only, where every bf16 matmul is emulated. So the first time a choice is needed
the kit measures it, in a few seconds, and keeps the result per machine (CPU model and flags, or GPU
name and capability), thread count and torch version in ``~/.cache/llmkit/calibration.json``
(``$LLMKIT_CALIBRATION`` names another file; ``off`` measures nothing and keeps the static defaults:
fp32 on a CPU, bf16 or fp16 on a GPU, no compile):

- precision: the GEMM rate in fp32 and bf16, then, where the hardware has native bf16, a tiny
  training step in each; bf16 is chosen only when the hardware has it *and* the step is >= 10% faster.
  A CPU without AVX512_BF16/AMX (x86) or BF16 (Arm) never gets bf16, whatever a timing says.
- compile: the same tiny step eager and compiled, and how long compiling took. ``choose_compile``
  says yes when compiling is >= 10% faster per step and, given the run's length, saves more time than
  it costs.

    from llmkit.autotune import choose_precision, choose_compile
    precision = choose_precision("cpu")                   # "fp32" here, "bf16" where it pays
    if choose_compile("cpu", steps=2000, step_seconds=0.4, n_layers=6): model = torch.compile(model)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .allocator import keep_freed_memory

CACHE_ENV = "LLMKIT_CALIBRATION"
FORMAT = 2  # 2: calibration steps reuse freed memory, as training does
MIN_GAIN = 1.10  # a choice other than the default must win by this factor, not by noise
# Native bf16 matmul instructions: x86 (AVX512_BF16, AMX) and Arm (FEAT_BF16, "bf16" in /proc/cpuinfo).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# The calibration model: small enough for seconds, shaped like the kit's GPTs (matmul-bound).
CALIBRATION_CFG = {"vocab_size": 2048, "context_length": 64, "emb_dim": 128, "n_heads": 4, "n_layers": 2,
                   "drop_rate": 0.0, "qkv_bias": False}
CALIBRATION_BATCH = 4


# --------------------------------------------------------------------------- where and which machine


def cache_path() -> Path:
    """``$LLMKIT_CALIBRATION``, else ``$XDG_CACHE_HOME/llmkit/calibration.json`` (``~/.cache`` by default)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llmkit" / "calibration.json"


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    fields: dict[str, str] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_flags() -> set[str]:
    info = _cpuinfo()
    return set((info.get("flags") or info.get("Features") or "").split())


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("CPU part") or platform.processor() or platform.machine()


def _device(device: Any) -> torch.device:
    device = getattr(device, "torch_device", device)  # an llmkit Device or a torch.device / string
    return torch.device(device)


def machine(device: Any = "cpu") -> dict:
    """What a calibration is valid for: the hardware, the thread count and the torch version."""
    dev = _device(device)
    info = {"device": dev.type, "torch": torch.__version__}
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        info.update(name=torch.cuda.get_device_name(index),
                    capability=".".join(map(str, torch.cuda.get_device_capability(index))))
    elif dev.type == "mps":
        info.update(name=f"{platform.machine()} macOS {platform.mac_ver()[0]}")
    else:
        flags = " ".join(sorted(cpu_flags()))
        info.update(name=cpu_model(), flags_sha1=hashlib.sha1(flags.encode()).hexdigest()[:12],
                    threads=torch.get_num_threads(), isa=torch.backends.cpu.get_cpu_capability())
    return info


def machine_key(device: Any = "cpu") -> str:
    return " | ".join(f"{k}={v}" for k, v in machine(device).items())


def bf16_capability(device: Any = "cpu") -> tuple[bool, str]:
    """(True, why) when the hardware computes bf16 matmuls natively; (False, why) when it would emulate."""
    dev = _device(device)
    if dev.type == "cuda":
        major, _ = torch.cuda.get_device_capability(dev)
        return major >= 8, f"CUDA capability {major}.x ({'native' if major >= 8 else 'no native'} bf16 tensor cores)"
    if dev.type == "mps":
        return True, "Apple GPU"
    found = sorted(cpu_flags() & set(BF16_CPU_FLAGS))
    if found:
        return True, f"CPU flags {', '.join(found)}"
    return False, "the CPU has no AVX512_BF16, AMX or BF16 flag: bf16 matmuls would be emulated"


# --------------------------------------------------------------------------- measuring


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elif dev.type == "mps":
        torch.mps.synchronize()


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, device: Any = "cpu",
                statistic: Callable[[list[float]], float] = statistics.median) -> dict[str, float]:
    """Seconds per call of each function (median by default), run in turns (A, B, A, B ...) so that
    a machine busy with other work slows every candidate alike."""
    dev = _device(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            _sync(dev)
            start = time.perf_counter()
            fn()
            _sync(dev)
            times[name].append(time.perf_counter() - start)
    return {name: statistic(values) for name, values in times.items()}


def matmul_gflops(device: Any = "cpu", dtypes=("fp32", "bf16"), n: int = 512, repeats: int = 9) -> dict[str, float]:
    """Peak GEMM rate (GFLOP/s) of an n x n x n matmul per dtype: the fastest of ``repeats``
    interleaved calls, since other work on the machine can only slow a call down."""
    dev = _device(device)
    types = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    mats = {d: (torch.randn(n, n, device=dev, dtype=types[d]), torch.randn(n, n, device=dev, dtype=types[d]))
            for d in dtypes}
    fns = {d: (lambda a=a, b=b: a @ b) for d, (a, b) in mats.items()}
    for fn in fns.values():
        fn()  # warm-up: the first call picks and packs kernels
    seconds = interleaved(fns, repeats, dev, statistic=min)
    return {d: 2 * n ** 3 / s / 1e9 for d, s in seconds.items()}


def _calibration_step(device: Any, precision: str = "fp32", compile: bool = False):
    """A closure running one training step (forward, backward, AdamW) of a tiny GPT from the registry."""
    from .plugins import create

    dev = _device(device)
    if dev.type == "cpu":
        keep_freed_memory()  # as train() does, so the calibration times the steps a run will take
    torch.manual_seed(0)
    model = create("models", "gpt", dict(CALIBRATION_CFG)).to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cfg = CALIBRATION_CFG
    data = torch.randint(0, cfg["vocab_size"], (CALIBRATION_BATCH, cfg["context_length"] + 1), device=dev)
    inputs, targets = data[:, :-1], data[:, 1:]
    forward = torch.compile(model) if compile else model
    takes_targets = "targets" in inspect.signature(model.forward).parameters  # the fused loss, if the model has one
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

    def step():
        with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
            if takes_targets:
                loss = forward(inputs, targets=targets)
            else:
                loss = torch.nn.functional.cross_entropy(forward(inputs).flatten(0, 1).float(), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def calibrate_precision(device: Any = "cpu", repeats: int = 5) -> dict:
    """Measure fp32 against bf16 here and decide; returns the record that the cache keeps."""
    dev = _device(device)
    capable, why = bf16_capability(dev)
    # An emulated bf16 GEMM can be 100x slower; a small one still shows it in milliseconds.
    record: dict[str, Any] = {"bf16_native": capable, "bf16_reason": why,
                              "gemm_gflops": matmul_gflops(dev, n=512 if capable else 256, repeats=repeats)}
    if capable:
        steps = {p: _calibration_step(dev, p) for p in ("fp32", "bf16")}
        for step in steps.values():
            step()  # warm-up
        seconds = interleaved(steps, repeats, dev)
        record["step_seconds"] = seconds
        speedup = seconds["fp32"] / seconds["bf16"]
        record["bf16_speedup"] = speedup
        chosen = "bf16" if speedup >= MIN_GAIN else "fp32"
        record["reason"] = f"bf16 is native ({why}) and a training step ran {speedup:.2f}x fp32's speed"
    else:
        gemm = record["gemm_gflops"]
        chosen = "fp32"
        record["reason"] = f"{why} (bf16 GEMM {gemm['bf16']:.1f} GFLOP/s vs fp32 {gemm['fp32']:.1f})"
    if dev.type == "cuda" and chosen == "fp32" and not capable:
        chosen, record["reason"] = "fp16", f"{why}; fp16 autocast instead"
    record["choice"] = chosen
    return record


def compile_supported(device: Any = "cpu") -> tuple[bool, str]:
    dev = _device(device)
    if not hasattr(torch, "compile"):
        return False, "this torch has no torch.compile"
    if dev.type == "cpu" and not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        return False, "torch.compile on the CPU needs a C++ compiler (g++ or clang++), and none is on PATH"
    if dev.type == "mps":
        return False, "torch.compile's MPS backend is still experimental"
    return True, "supported"


def calibrate_compile(device: Any = "cpu", repeats: int = 5) -> dict:
    """Time the tiny step eager and compiled (and how long compiling took) here."""
    dev = _device(device)
    ok, why = compile_supported(dev)
    if not ok:
        return {"supported": False, "reason": why, "speedup": 1.0, "compile_seconds": None}
    eager, compiled = _calibration_step(dev), _calibration_step(dev, compile=True)
    eager()
    start = time.perf_counter()
    try:
        compiled()  # the first call compiles forward and backward
    except Exception as err:  # a broken toolchain must not stop a run: report it and stay eager
        return {"supported": False, "reason": f"torch.compile failed: {type(err).__name__}: {err}"[:300],
                "speedup": 1.0, "compile_seconds": None}
    compile_seconds = time.perf_counter() - start
    seconds = interleaved({"eager": eager, "compiled": compiled}, repeats, dev)
    speedup = seconds["eager"] / seconds["compiled"]
    return {"supported": True, "step_seconds": seconds, "speedup": speedup, "compile_seconds": compile_seconds,
            "calibration_layers": CALIBRATION_CFG["n_layers"],
            "reason": f"compiled step {speedup:.2f}x eager, compiling took {compile_seconds:.0f} s"}


# --------------------------------------------------------------------------- the cache


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"format": FORMAT, "machines": {}}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("machines"), dict):
        return {"format": FORMAT, "machines": {}}  # another version's file: measure again
    return data


def _write_cache(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one


def calibration(device: Any = "cpu", parts=("precision",), refresh: bool = False) -> dict:
    """This machine's cached record, measuring the ``parts`` ("precision", "compile") it lacks."""
    path = cache_path()
    data = _read_cache(path)
    key = machine_key(device)
    entry = data["machines"].setdefault(key, {"machine": machine(device)})
    measured = False
    for part in parts:
        if refresh or part not in entry:
            print(f"llmkit: measuring {'fp32 against bf16' if part == 'precision' else 'eager against compiled'} "
                  f"on this machine, once (kept in {path})", file=sys.stderr, flush=True)
            entry[part] = (calibrate_precision if part == "precision" else calibrate_compile)(device)
            entry[part]["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            measured = True
    if measured:
        try:
            _write_cache(path, data)
        except OSError:
            pass  # a read-only home still gets the measured answer, just not kept
    return entry


# --------------------------------------------------------------------------- the choices


def calibration_off() -> bool:
    return os.environ.get(CACHE_ENV, "").strip().lower() == "off"


def static_precision(device: Any = "cpu") -> str:
    """The choice without measuring: fp32 on a CPU or Apple GPU, bf16 (else fp16) on a CUDA GPU."""
    dev = _device(device)
    if dev.type == "cuda":
        return "bf16" if bf16_capability(dev)[0] else "fp16"
    return "fp32"


def choose_precision(device: Any = "cpu") -> str:
    """"fp32", "bf16" or "fp16" for training on ``device``, measured once here and cached."""
    if calibration_off():
        return static_precision(device)
    # calibrate_precision never picks bf16 without native support, whatever the timings say.
    return calibration(device)["precision"]["choice"]


def choose_compile(device: Any = "cpu", steps: int | None = None, step_seconds: float | None = None,
                   n_layers: int | None = None) -> bool:
    """Whether ``torch.compile`` pays here: >= 10% faster per step, and, when the run's ``steps``
    and eager ``step_seconds`` are given, saving more than compiling costs. Compile time is scaled
    from the calibration model's by ``n_layers`` (dynamo traces every block)."""
    if calibration_off():
        return False
    record = calibration(device, parts=("compile",))["compile"]
    if not record.get("supported") or record["speedup"] < MIN_GAIN:
        return False
    if steps is None or step_seconds is None:
        return True
    cost = record["compile_seconds"] * max(1.0, (n_layers or 0) / record.get("calibration_layers", 2))
    saved = steps * step_seconds * (1.0 - 1.0 / record["speedup"])
    return saved > cost


def step_flops(model_cfg: dict, batch_tokens: int) -> float:
    """Training FLOPs of one step of a GPT shaped like ``model_cfg`` (6 per weight per token, plus attention)."""
    e, layers = model_cfg["emb_dim"], model_cfg["n_layers"]
    per_token = 6 * (layers * 12 * e * e + e * model_cfg["vocab_size"]) + 12 * layers * model_cfg["context_length"] * e
    return per_token * batch_tokens


def choose_compile_for(device: Any, model_cfg: dict, batch_tokens: int, steps: int) -> bool:
    """``choose_compile`` for a run of ``steps`` steps of this model: its eager step time is the
    calibration step's, scaled by the ratio of their FLOPs."""
    if calibration_off():
        return False
    record = calibration(device, parts=("compile",))["compile"]
    eager = (record.get("step_seconds") or {}).get("eager")
    if eager is None:
        return choose_compile(device)
    calibration_flops = step_flops(CALIBRATION_CFG, CALIBRATION_BATCH * CALIBRATION_CFG["context_length"])
    step_seconds = eager * step_flops(model_cfg, batch_tokens) / calibration_flops
    return choose_compile(device, steps, step_seconds, model_cfg.get("n_layers"))


def explain(device: Any = "cpu") -> str:
    """One line for reports: what auto chose here and why (measures the precision part if missing)."""
    entry = calibration(device)
    line = f"precision auto -> {entry['precision']['choice']}: {entry['precision']['reason']}"
    if "compile" in entry:
        c = entry["compile"]
        line += f"; compile: {c['reason']}"
    return line
