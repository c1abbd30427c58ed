"""Device and dtype as values with an ``auto`` policy (never ``"cuda:0"`` literals in library code).

Example:
    >>> from mmrag.device import resolve_device, resolve_dtype
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_dtype("auto", "cpu")
    'float32'
"""

from __future__ import annotations

import importlib.util
import logging
import os

from mmrag.errors import ConfigError

__all__ = ["available_devices", "passive_openmp", "resolve_device", "resolve_dtype"]

_DTYPES = ("float32", "float16", "bfloat16")


def available_devices() -> list[str]:
    """The torch devices usable here, best first (imports torch)."""
    if importlib.util.find_spec("torch") is None:
        return ["cpu"]
    import torch

    devices = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return [*devices, "cpu"]


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks the first CUDA device, else Apple MPS, else the CPU; others pass through."""
    if device == "auto":
        return available_devices()[0]
    if device == "cpu" or device == "mps" or device.startswith("cuda"):
        return device
    raise ConfigError(f"device {device!r} is not one of: auto, cpu, mps, cuda, cuda:N")


def resolve_dtype(dtype: str = "auto", device: str = "cpu") -> str:
    """``auto`` picks bfloat16 on CUDA devices that support it, float16 on other accelerators,
    and float32 on the CPU (where half precision is slow or unsupported)."""
    if dtype != "auto":
        if dtype not in _DTYPES:
            raise ConfigError(f"dtype {dtype!r} is not one of: auto, {', '.join(_DTYPES)}")
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device == "mps":
        return "float16"
    return "float32"


def passive_openmp() -> None:
    """Make OpenMP threads sleep when idle, if it is not too late (torch not imported yet).

    torch's OpenMP threads spin-wait between operations by default; next to the job's ingest
    and writer threads they then take the CPU those need (measured: 5x slower on 2 cores).
    """
    import sys

    if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        logging.getLogger(__name__).debug(
            "OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep when idle)"
        )
