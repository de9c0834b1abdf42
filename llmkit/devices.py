"""Devices as plugins: where tensors live, which precision training uses, and how ranks split work.

``cpu``, ``cuda``, ``mps`` and ``auto`` run one process. ``ddp`` runs under ``torchrun``: every rank
builds the same loaders with the same seed, takes its slice of each global batch, and
DistributedDataParallel averages the gradients, so N processes follow the 1-process loss curve.
"""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import LLMKitError
from .hookspecs import hookimpl

PRECISIONS = ("fp32", "bf16", "fp16")
# MPS computed wrong losses for these models before PyTorch 2.9 (reported by the book's readers).
MPS_MIN_TORCH = (2, 9)


def torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def mps_usable() -> bool:
    return torch.backends.mps.is_available() and torch_version() >= MPS_MIN_TORCH


class Device:
    """One process on one ``torch.device``; ``precision`` picks autocast (bf16/fp16) or plain fp32."""

    name = "cpu"
    rank, world_size, local_rank = 0, 1, 0

    def __init__(self, precision: str = "auto", torch_device: str | None = None):
        self.torch_device = torch.device(torch_device or self.name)
        self.check_available()
        self.precision = self.default_precision() if precision == "auto" else precision
        if self.precision not in PRECISIONS:
            raise LLMKitError(f"Unknown precision '{precision}'; choose one of auto, {', '.join(PRECISIONS)}.")
        if self.precision == "fp16" and self.torch_device.type == "cpu":
            raise LLMKitError("fp16 autocast is for GPUs; on the CPU use precision bf16 or fp32.")

    def check_available(self) -> None:
        """Raise ``LLMKitError`` when this device cannot run here."""

    def default_precision(self) -> str:
        # Measured with `llmkit bench train` (llmkit run's model): bf16 autocast ran at 0.84x fp32 on a
        # 2-core Xeon without AMX and at 0.08x on a 2-core AMD EPYC (AVX2, no AVX512-BF16), where bf16
        # matmuls are emulated. So fp32 stays the CPU default; bf16 is one flag away where it pays.
        return "fp32"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.torch_device.type, dtype=dtype)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.torch_device)

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return getattr(model, "module", model)

    def shard(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of a global batch, moved to the device."""
        return inputs.to(self.torch_device), targets.to(self.torch_device)

    def mean_across_ranks(self, value: float) -> float:
        return value

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.torch_device}, {self.precision})"


class CPUDevice(Device):
    """The CPU (fp32 by default; bf16 autocast on request)."""

    name = "cpu"


class CUDADevice(Device):
    """An NVIDIA GPU (bf16 autocast by default when the GPU supports it)."""

    name = "cuda"

    def check_available(self) -> None:
        if not torch.cuda.is_available():
            raise LLMKitError("CUDA is not available here (no GPU or a CPU-only torch); use --device cpu or auto.")

    def default_precision(self) -> str:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


class MPSDevice(Device):
    """Apple-silicon GPU, only on PyTorch >= 2.9 (older versions gave wrong losses)."""

    name = "mps"

    def check_available(self) -> None:
        if not torch.backends.mps.is_available():
            raise LLMKitError("MPS is not available here (needs Apple silicon and macOS 12.3+); use --device cpu.")
        if torch_version() < MPS_MIN_TORCH:
            raise LLMKitError(
                f"MPS on torch {torch.__version__} gives wrong losses for these models; "
                f"upgrade to torch>={'.'.join(map(str, MPS_MIN_TORCH))} or use --device cpu."
            )


def auto_device(precision: str = "auto") -> Device:
    """The best device here: CUDA, then MPS (when its torch is recent enough), then the CPU."""
    if torch.cuda.is_available():
        return CUDADevice(precision)
    if mps_usable():
        return MPSDevice(precision)
    return CPUDevice(precision)


class DDPDevice(Device):
    """DistributedDataParallel under torchrun: gloo on CPUs, nccl on GPUs; one rank per process."""

    name = "ddp"

    def __init__(self, precision: str = "auto"):
        import torch.distributed as dist

        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise LLMKitError(
                "The ddp device runs under torchrun; start with: torchrun --nproc_per_node=2 -m llmkit.cli pretrain --device ddp"
            )
        self.rank = int(os.environ["RANK"])
        self.world_size = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        use_cuda = torch.cuda.is_available()
        backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)
        super().__init__(precision, f"cuda:{self.local_rank}" if use_cuda else "cpu")

    def default_precision(self) -> str:
        if self.torch_device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"

    def prepare_model(self, model):
        from torch.nn.parallel import DistributedDataParallel

        model = model.to(self.torch_device)
        device_ids = [self.local_rank] if self.torch_device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def shard(self, inputs, targets):
        batch = inputs.shape[0]
        if batch % self.world_size:
            raise LLMKitError(
                f"batch_size {batch} does not split evenly over {self.world_size} processes; "
                f"use a multiple of {self.world_size}."
            )
        per_rank = batch // self.world_size
        part = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        return inputs[part].to(self.torch_device), targets[part].to(self.torch_device)

    def mean_across_ranks(self, value: float) -> float:
        import torch.distributed as dist

        tensor = torch.tensor([float(value)], device=self.torch_device, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.item() / self.world_size

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def get_device(name: str = "auto", precision: str = "auto") -> Device:
    """Build a device by registry name (``cpu``, ``cuda``, ``mps``, ``auto``, ``ddp`` or a plugin's)."""
    from .plugins import create

    return create("devices", name, precision=precision)


@hookimpl
def register_devices(register):
    register("cpu", CPUDevice)
    register("cuda", CUDADevice)
    register("mps", MPSDevice)
    register("auto", auto_device)
    register("ddp", DDPDevice)
