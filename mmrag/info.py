"""What ``mmrag info`` reports: version, libraries, devices, components, and the store in use.

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
import sys
from typing import Any

from mmrag import __version__
from mmrag.config import PipelineConfig
from mmrag.registry import COMPONENTS

__all__ = ["LIBRARIES", "collect_info"]

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
    module = target.partition(":")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return "available" if found else "not in this build"


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
            "embedder": config.embedder.type,
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
        from mmrag.device import available_devices

        data["mmrag"]["devices"] = ", ".join(available_devices())
    return data


def _component(spec: Any) -> str:
    """``type (model)`` of a configured component, or ``none``."""
    if spec is None:
        return "none"
    model = spec.init_parameters.get("model")
    return f"{spec.type} ({model})" if model else spec.type
