"""What ``mmrag info`` reports: version, libraries, devices, components, and the store in use.

It imports no torch, transformers or component module (``mmrag info`` takes a fraction of a
second): library versions come from package metadata, components are found as files, and the
devices are probed through the CUDA driver (see :func:`probe_devices`).

Example:
    >>> from mmrag.config import PipelineConfig
    >>> from mmrag.info import collect_info
    >>> sorted(collect_info(PipelineConfig(), devices=False))
    ['components', 'config', 'libraries', 'mmrag']
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import re
import sys
from pathlib import Path
from typing import Any

from mmrag import __version__
from mmrag.config import PipelineConfig
from mmrag.registry import COMPONENTS

__all__ = ["LIBRARIES", "collect_info", "probe_devices"]

#: Distributions whose versions are reported (read from metadata; nothing is imported).
LIBRARIES = (
    "torch",
    "torchvision",
    "transformers",
    "open_clip_torch",
    "pymupdf",
    "qdrant-client",
    "qdrant-edge-py",
    "pillow",
    "av",
    "langchain-core",
    "pydantic",
    "fastembed",
    "peft",
    "fastapi",
    "ray",
)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _component_status(target: str) -> str:
    """Whether a component's module is present, found as a file (importing a component's
    package would import its dependencies: torch for most)."""
    module = target.partition(":")[0]
    top, _, rest = module.partition(".")
    if top == "mmrag":
        base = Path(__file__).resolve().parent.joinpath(*rest.split("."))
        found = base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()
    else:
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
    return "available" if found else "not in this build"


def _torch_build() -> dict[str, str | None]:
    """The accelerators torch was built for (its ``version.py``, read, not imported)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {}
    version = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        text = version.read_text(encoding="utf-8")
    except OSError:
        return {}
    found = re.findall(r"^(cuda|hip)\b[^=]*=\s*['\"]?([^'\"\s]+)", text, flags=re.MULTILINE)
    return {name: None if value == "None" else value for name, value in found}


def _cuda_devices() -> int:
    """CUDA devices the driver sees (honouring ``CUDA_VISIBLE_DEVICES``); 0 without one."""
    import ctypes
    import ctypes.util

    names = ["libcuda.so.1", "libcuda.so", "nvcuda.dll", ctypes.util.find_library("cuda")]
    for name in filter(None, names):
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if driver.cuInit(0) == 0 and driver.cuDeviceGetCount(ctypes.byref(count)) == 0:
            return count.value
        return 0
    return 0


def probe_devices() -> list[str]:
    """The devices torch can use here, best first, found without importing torch: the CUDA
    devices the driver reports when torch is a CUDA build, ``mps`` on Apple silicon, then
    ``cpu`` (:func:`mmrag.device.available_devices` asks torch itself).

    Example:
        >>> probe_devices()[-1]
        'cpu'
    """
    build = _torch_build()
    if not build:
        return ["cpu"]
    devices = [f"cuda:{i}" for i in range(_cuda_devices())] if build.get("cuda") else []
    if sys.platform == "darwin" and platform.machine() == "arm64":
        devices.append("mps")
    return [*devices, "cpu"]


def collect_info(config: PipelineConfig, *, devices: bool = True) -> dict[str, dict[str, Any]]:
    """Everything ``mmrag info`` prints, as nested dicts (JSON-safe)."""
    data: dict[str, dict[str, Any]] = {
        "mmrag": {
            "version": __version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "libraries": {name: _version(name) for name in LIBRARIES},
        "components": {
            f"{kind}.{name}": _component_status(target)
            for kind, entries in COMPONENTS.items()
            for name, target in entries.items()
        },
        "config": {
            "embedder": config.embedder.type or "read from the model's checkpoint",
            "model": config.embedder.init_parameters.get("model", ""),
            "store": config.store.backend,
            "location": config.store.url if config.store.backend == "server" else config.store.path,
            "collection": config.store.collection,
            "plan": config.retrieval.plan,
            "reranker": _component(config.reranker),
            "generator": _component(config.generator),
        },
    }
    if devices:
        data["mmrag"]["devices"] = ", ".join(probe_devices())
    return data


def _component(spec: Any) -> str:
    """``type (model)`` of a configured component, or ``none``."""
    if spec is None:
        return "none"
    model = spec.init_parameters.get("model")
    return f"{spec.type} ({model})" if model else spec.type
