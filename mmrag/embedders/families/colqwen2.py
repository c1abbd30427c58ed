"""The ``colqwen2`` family: ColQwen2 on Qwen2-VL, multi-vector at dynamic resolution.

Example:
    >>> from mmrag.embedders.families.colqwen2 import COLQWEN2
    >>> [m.name for m in COLQWEN2.catalogue]
    ['vidore/colqwen2-v1.0-hf']
"""

from __future__ import annotations

from mmrag.embedders.families.spec import FamilySpec, ModelDescription

__all__ = ["COLQWEN2"]

COLQWEN2 = FamilySpec(
    name="colqwen2",
    kind="multi",
    target="mmrag.embedders.colpali:ColQwen2Embedder",
    model_types=("colqwen2",),
    catalogue=(
        ModelDescription(
            name="vidore/colqwen2-v1.0-hf",
            dim=128,
            params="2.2B",
            license="Apache-2.0",
            source="https://huggingface.co/vidore/colqwen2-v1.0-hf",
            description="ColQwen2 v1.0 (Qwen2-VL-2B): dynamic-resolution patch vectors.",
        ),
    ),
)
