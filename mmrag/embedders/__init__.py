"""Embedders: the protocol, the model catalogue, and the families (CLIP, VLM2Vec, E5-V, ColPali).

Importing this package is cheap; each family module imports torch / transformers itself.

Example:
    >>> from mmrag.embedders import list_supported_models
    >>> sorted({m["family"] for m in list_supported_models()})
    ['clip', 'colmodernvbert', 'colpali', 'colqwen2', 'e5v', 'vlm2vec']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mmrag.embedders.base import Embedder, ModelEmbedder, Query
from mmrag.embedders.catalogue import FAMILIES, describe, list_supported_models
from mmrag.errors import ConfigError

__all__ = [
    "Embedder",
    "ModelEmbedder",
    "Query",
    "describe",
    "detect_family",
    "list_supported_models",
    "load_embedder",
]

#: ``model_type`` in a checkpoint's config.json → embedder family.
_MODEL_TYPES = {
    "colpali": "colpali",
    "colqwen2": "colqwen2",
    "colmodernvbert": "colmodernvbert",
    "qwen2_vl": "vlm2vec",
    "llava_next": "e5v",
}


def detect_family(model: str) -> str:
    """The family of a local checkpoint folder, from its own config (never from its name)."""
    folder = Path(model)
    if (folder / "open_clip_config.json").is_file():
        return "clip"
    config = folder / "config.json"
    adapter = folder / "adapter_config.json"
    if adapter.is_file() and not config.is_file():
        base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        if base and (Path(base) / "config.json").is_file():
            return detect_family(base)
        raise ConfigError(
            f"{model} is a LoRA adapter on {base!r}; name its family (e.g. family='vlm2vec')"
        )
    if config.is_file():
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        if model_type in _MODEL_TYPES:
            return _MODEL_TYPES[model_type]
        raise ConfigError(
            f"{model}: model_type {model_type!r} is not an architecture mmrag can embed with; "
            f"supported: {', '.join(sorted(_MODEL_TYPES))}"
        )
    raise ConfigError(
        f"{model!r} is neither in the model catalogue nor a local checkpoint folder; name its "
        f"family (one of {', '.join(FAMILIES)}) to load it by Hugging Face id"
    )


def load_embedder(model: str, family: str | None = None, **kwargs: Any) -> ModelEmbedder:
    """An embedder for ``model`` (catalogue name, Hugging Face id or local folder); lazy.

    ``family`` is needed only for ids that are neither in the catalogue nor local folders.
    """
    from mmrag.embedders.catalogue import _BY_NAME
    from mmrag.registry import resolve

    if family is None:
        family = _BY_NAME[model].family if model in _BY_NAME else detect_family(model)
    elif family not in FAMILIES:
        raise ConfigError(f"unknown embedder family {family!r}; allowed: {', '.join(FAMILIES)}")
    return resolve("embedder", family)(model, **kwargs)
