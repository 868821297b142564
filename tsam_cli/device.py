"""Device choice for everything that runs PyTorch (inpaint's generator, eval's networks, training)."""

from __future__ import annotations

import re

from tsam_cli.errors import UsageError


def cuda_available() -> bool:
    """True when PyTorch is importable and sees a CUDA GPU."""
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
