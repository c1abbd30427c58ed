"""The model catalogue, as data: every supported checkpoint with its family, kind and dimension.

The entries are written in each family's spec (:mod:`mmrag.embedders.families`); this module
gathers them and never imports torch or transformers.

Dispatch is by exact name (never by substring). A checkpoint that is not listed can still be
used by id or local path with its ``family`` named, or with the family read from the checkpoint's
own config (``model_type``); see :func:`mmrag.embedders.load_embedder`.

Example:
    >>> from mmrag.embedders.catalogue import describe, list_supported_models
    >>> describe("vidore/colqwen2-v1.0-hf").family
    'colqwen2'
    >>> "ViT-B-32/laion2b_s34b_b79k" in [m["name"] for m in list_supported_models()]
    True
"""

from __future__ import annotations

from typing import Any

from mmrag.embedders.families import SPECS, get_spec
from mmrag.embedders.families.spec import ModelDescription
from mmrag.errors import ConfigError

__all__ = [
    "FAMILIES",
    "SUPPORTED_MODELS",
    "ModelDescription",
    "describe",
    "list_supported_models",
]

#: Embedder families: the registry names in :mod:`mmrag.registry` (``[embedder] type``).
FAMILIES: tuple[str, ...] = tuple(spec.name for spec in SPECS)

#: Every catalogue entry, family by family (each family's entries live in its spec).
SUPPORTED_MODELS: tuple[ModelDescription, ...] = tuple(
    entry for spec in SPECS for entry in spec.catalogue
)

_BY_NAME = {m.name: m for m in SUPPORTED_MODELS}


def list_supported_models(family: str | None = None) -> list[dict[str, Any]]:
    """Every catalogue entry as a dict, optionally only one family's."""
    if family is not None:
        get_spec(family)  # an unknown family lists the known ones
    return [m.to_dict() for m in SUPPORTED_MODELS if family in (None, m.family)]


def describe(name: str) -> ModelDescription:
    """The catalogue entry named exactly ``name``; an unknown name lists the supported ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        supported = "\n  ".join(f"{m.name} ({m.family})" for m in SUPPORTED_MODELS)
        raise ConfigError(
            f"{name!r} is not in the model catalogue. Supported models:\n  {supported}\n"
            "To use another compatible checkpoint (a Hugging Face id or a local folder), name "
            f"its family explicitly: one of {', '.join(FAMILIES)}."
        ) from None
