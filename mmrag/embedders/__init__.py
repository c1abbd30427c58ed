"""Embedders: the protocol, the model catalogue, and the families (CLIP, VLM2Vec, E5-V, ColPali).

Importing this package is cheap; each family module imports torch / transformers itself. A
family is defined once, by its spec in :mod:`mmrag.embedders.families`.

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
from mmrag.embedders.families import MODEL_TYPES, SPECS, family_of_model_type, get_spec
from mmrag.errors import ConfigError

__all__ = [
    "Embedder",
    "ModelEmbedder",
    "Query",
    "describe",
    "detect_family",
    "infer_family",
    "list_supported_models",
    "load_embedder",
]


def detect_family(model: str) -> str:
    """The family of a local checkpoint folder, from its own config (never from its name).

    A family's marker file (open_clip's ``open_clip_config.json``) or the ``model_type`` of the
    folder's config.json decides; both come from the family specs in
    :mod:`mmrag.embedders.families`.
    """
    folder = Path(model)
    for spec in SPECS:
        if any((folder / marker).is_file() for marker in spec.marker_files):
            return spec.name
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
        family = family_of_model_type(model_type)
        if family is not None:
            return family
        raise ConfigError(
            f"{model}: model_type {model_type!r} is not an architecture mmrag can embed with; "
            f"supported: {', '.join(sorted(MODEL_TYPES))}"
        )
    raise ConfigError(
        f"{model!r} is neither in the model catalogue nor a local checkpoint folder; name its "
        f"family (one of {', '.join(FAMILIES)}) to load it by Hugging Face id"
    )


def infer_family(model: str, revision: str | None = None) -> str:
    """The family of ``model``: the catalogue, a local folder's config, or a Hub checkpoint's
    config (from the cache, else one short request); see
    :func:`mmrag.embedders.checkpoint.infer_family`."""
    from mmrag.embedders.checkpoint import infer_family as infer

    return infer(model, revision)


def load_embedder(model: str, family: str | None = None, **kwargs: Any) -> ModelEmbedder:
    """An embedder for ``model`` (catalogue name, Hugging Face id or local folder); lazy.

    ``family`` is read from the checkpoint when not given (:func:`infer_family`: the
    catalogue, a local folder's config, or the Hub checkpoint's config).
    """
    if family is None:
        family = infer_family(model, kwargs.get("revision"))
    return get_spec(family).load_class()(model, **kwargs)
