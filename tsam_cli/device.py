"""Device choice for everything that runs PyTorch (inpaint's generator, eval's networks, training)."""

from __future__ import annotations

import os
import re
import sys

from tsam_cli.errors import UsageError

#: device nodes / driver files one of which exists wherever a GPU driver is installed on Linux
#: (NVIDIA, AMD ROCm's /dev/kfd, WSL2's /dev/dxg); containers with a GPU get them mounted
GPU_DRIVER_PATHS = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def no_gpu_driver() -> bool:
    """True on Linux when no GPU driver is present: CUDA cannot be available, so asking
    PyTorch (an import of ~1 s and ~0.2 GB that the classical path does not otherwise need)
    is skipped. Elsewhere False (ask PyTorch)."""
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in GPU_DRIVER_PATHS)


def cuda_available() -> bool:
    """True when PyTorch is importable and sees a CUDA GPU."""
    if "torch" not in sys.modules and no_gpu_driver():
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def resolve_device(device: str, local_rank: int | None = None) -> str:
    """``auto`` -> ``cuda`` when a GPU is seen, else ``cpu``; validates explicit choices.

    ``cuda`` becomes ``cuda:<local_rank>`` when a rank is given (one GPU per torchrun process).
    Raises :class:`UsageError` for an unknown name or ``cuda`` without a GPU.
    """
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise UsageError(f"--device {device!r} is not known: use auto, cpu, cuda or cuda:N")
    if device == "cpu" or (device == "auto" and not cuda_available()):
        return "cpu"
    if not cuda_available():
        raise UsageError(f"--device {device} asked for, but PyTorch sees no CUDA GPU: use --device cpu")
    if device in ("auto", "cuda"):
        return "cuda" if local_rank is None else f"cuda:{local_rank}"
    return device


def cuda_name(index: int = 0) -> str:
    """Name of CUDA device ``index`` (e.g. ``NVIDIA H200``), or ``"unknown"`` if it cannot be read."""
    try:
        import torch

        return torch.cuda.get_device_name(index)
    except Exception:  # no torch, no driver, bad index: this is only a label
        return "unknown"


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask (``taskset``), capped by a cgroup v2 CPU
    quota (containers: ``cpu.max``); at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota (not in a container, or cgroup v1): the affinity mask alone
    return max(1, n)
