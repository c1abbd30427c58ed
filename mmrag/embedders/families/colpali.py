"""The ``colpali`` family: ColPali on PaliGemma, multi-vector.

Example:
    >>> from mmrag.embedders.families.colpali import COLPALI
    >>> COLPALI.kind, COLPALI.target
    ('multi', 'mmrag.embedders.colpali:ColPaliEmbedder')
"""

from __future__ import annotations

from mmrag.embedders.families.spec import FamilySpec, ModelDescription

__all__ = ["COLPALI"]

COLPALI = FamilySpec(
    name="colpali",
    kind="multi",
    target="mmrag.embedders.colpali:ColPaliEmbedder",
    model_types=("colpali",),
    catalogue=(
        ModelDescription(
            name="vidore/colpali-v1.3-hf",
            dim=128,
            params="2.9B",
            license="Gemma",
            source="https://huggingface.co/vidore/colpali-v1.3-hf",
            description="ColPali v1.3 (PaliGemma-3B): 1,024 patch vectors on a 32 x 32 grid.",
        ),
    ),
)
