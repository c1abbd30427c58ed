"""The ``e5v`` family: E5-V on LLaVA-NeXT.

Example:
    >>> from mmrag.embedders.families.e5v import E5V
    >>> E5V.model_types
    ('llava_next',)
"""

from __future__ import annotations

from mmrag.embedders.families.spec import FamilySpec, ModelDescription

__all__ = ["E5V"]

E5V = FamilySpec(
    name="e5v",
    kind="single",
    target="mmrag.embedders.e5v:E5VEmbedder",
    model_types=("llava_next",),
    catalogue=(
        ModelDescription(
            name="royokong/e5-v",
            dim=4096,
            params="8.4B",
            license="Llama 3 Community License (derived from Llama-3-8B; none on the model card)",
            source="https://huggingface.co/royokong/e5-v",
            description="E5-V on LLaVA-NeXT-8B: one-word-summary prompts, last-token embedding.",
        ),
    ),
)
