"""The ``clip`` family: open_clip CLIP, the single-vector baseline.

Example:
    >>> from mmrag.embedders.families.clip import CLIP
    >>> CLIP.name, CLIP.kind, CLIP.marker_files
    ('clip', 'single', ('open_clip_config.json',))
"""

from __future__ import annotations

from mmrag.embedders.families.spec import FamilySpec, ModelDescription

__all__ = ["CLIP"]

CLIP = FamilySpec(
    name="clip",
    kind="single",
    target="mmrag.embedders.clip:ClipEmbedder",
    marker_files=("open_clip_config.json",),  # open_clip folders have no transformers config
    catalogue=(
        ModelDescription(
            name="ViT-B-32/laion2b_s34b_b79k",
            dim=512,
            params="151M",
            license="MIT",
            source="https://github.com/mlfoundations/open_clip",
            description="open_clip CLIP ViT-B/32 trained on LAION-2B: the single-vector baseline.",
        ),
        ModelDescription(
            name="ViT-L-14/laion2b_s32b_b82k",
            dim=768,
            params="428M",
            license="MIT",
            source="https://github.com/mlfoundations/open_clip",
            description="open_clip CLIP ViT-L/14 trained on LAION-2B.",
        ),
    ),
)
