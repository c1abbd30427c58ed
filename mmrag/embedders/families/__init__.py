"""The embedder families, one spec each: the single place where a family is defined.

Each module here holds one :class:`~mmrag.embedders.families.spec.FamilySpec` (name, vector
kind, embedder class, checkpoint ``model_type`` values, catalogue entries) as plain data, so that
the catalogue, the registry and family detection never import torch. Everything else is derived
from :data:`SPECS`: :data:`mmrag.registry.COMPONENTS` ``["embedder"]``,
:data:`mmrag.embedders.catalogue.FAMILIES` and ``SUPPORTED_MODELS``,
:func:`mmrag.embedders.detect_family`, and each embedder class's ``family`` and ``kind`` (the class
names its spec).

Adding a family is its embedder class (which sets ``spec = MY_FAMILY``), a module here with its
spec, and one entry in :data:`SPECS`.

Example:
    >>> from mmrag.embedders.families import SPECS, family_of_model_type, get_spec
    >>> [spec.name for spec in SPECS]
    ['clip', 'vlm2vec', 'e5v', 'colpali', 'colqwen2', 'colmodernvbert']
    >>> get_spec("colqwen2").target
    'mmrag.embedders.colpali:ColQwen2Embedder'
    >>> family_of_model_type("llava_next")
    'e5v'
"""

from __future__ import annotations

from collections.abc import Mapping

from mmrag.embedders.families.clip import CLIP
from mmrag.embedders.families.colmodernvbert import COLMODERNVBERT
from mmrag.embedders.families.colpali import COLPALI
from mmrag.embedders.families.colqwen2 import COLQWEN2
from mmrag.embedders.families.e5v import E5V
from mmrag.embedders.families.spec import FamilySpec, ModelDescription
from mmrag.embedders.families.vlm2vec import VLM2VEC
from mmrag.errors import ConfigError

__all__ = [
    "MODEL_TYPES",
    "SPECS",
    "FamilySpec",
    "ModelDescription",
    "family_of_model_type",
    "get_spec",
]

#: Every embedder family, in the order they are listed to users.
SPECS: tuple[FamilySpec, ...] = (CLIP, VLM2VEC, E5V, COLPALI, COLQWEN2, COLMODERNVBERT)


def _index(specs: tuple[FamilySpec, ...]) -> tuple[dict[str, FamilySpec], dict[str, str]]:
    """Specs by name and ``model_type`` → family; a name or model type claimed twice is an error."""
    by_name: dict[str, FamilySpec] = {}
    by_model_type: dict[str, str] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ValueError(f"two embedder families are named {spec.name!r}")
        by_name[spec.name] = spec
        for model_type in spec.model_types:
            if model_type in by_model_type:
                raise ValueError(
                    f"model_type {model_type!r} is claimed by both {by_model_type[model_type]!r} "
                    f"and {spec.name!r}"
                )
            by_model_type[model_type] = spec.name
    return by_name, by_model_type


_BY_NAME, _BY_MODEL_TYPE = _index(SPECS)

#: ``model_type`` in a checkpoint's config.json → embedder family (derived from :data:`SPECS`).
MODEL_TYPES: Mapping[str, str] = _BY_MODEL_TYPE


def get_spec(family: str) -> FamilySpec:
    """The spec of ``family``; an unknown name lists the known ones."""
    try:
        return _BY_NAME[family]
    except KeyError:
        raise ConfigError(
            f"unknown embedder family {family!r}; allowed: {', '.join(_BY_NAME)}"
        ) from None


def family_of_model_type(model_type: str | None) -> str | None:
    """The family whose checkpoints declare ``model_type`` in their config.json, if any."""
    return _BY_MODEL_TYPE.get(model_type or "")
