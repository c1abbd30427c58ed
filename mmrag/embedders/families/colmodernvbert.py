"""The ``colmodernvbert`` family: ColModernVBert (ModernBERT + SigLIP), small and fast on CPU.

Example:
    >>> from mmrag.embedders.families.colmodernvbert import COLMODERNVBERT
    >>> COLMODERNVBERT.catalogue[0].params
    '250M'
"""

from __future__ import annotations

from mmrag.embedders.families.spec import FamilySpec, ModelDescription

__all__ = ["COLMODERNVBERT"]

COLMODERNVBERT = FamilySpec(
    name="colmodernvbert",
    kind="multi",
    target="mmrag.embedders.colpali:ColModernVBertEmbedder",
    model_types=("colmodernvbert",),
    catalogue=(
        ModelDescription(
            name="ModernVBERT/colmodernvbert-merged",
            dim=128,
            params="250M",
            license="MIT",
            source="https://huggingface.co/ModernVBERT/colmodernvbert-merged",
            description="ColModernVBert (transformers-native weights of "
            "ModernVBERT/colmodernvbert): a small late-interaction model, fast on CPU.",
        ),
    ),
)
