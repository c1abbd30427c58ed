"""The ``vlm2vec`` family: VLM2Vec on Qwen2-VL (LoRA adapters or merged checkpoints).

Example:
    >>> from mmrag.embedders.families.vlm2vec import VLM2VEC
    >>> VLM2VEC.model_types
    ('qwen2_vl',)
"""

from __future__ import annotations

from mmrag.embedders.families.spec import FamilySpec, ModelDescription

__all__ = ["VLM2VEC"]

VLM2VEC = FamilySpec(
    name="vlm2vec",
    kind="single",
    target="mmrag.embedders.vlm2vec:VLM2VecEmbedder",
    model_types=("qwen2_vl",),  # the backbone's (an adapter folder is detected by its base)
    catalogue=(
        ModelDescription(
            name="VLM2Vec/VLM2Vec-V2.0",
            dim=1536,
            params="2.2B",
            license="Apache-2.0",
            source="https://huggingface.co/VLM2Vec/VLM2Vec-V2.0",
            base_model="Qwen/Qwen2-VL-2B-Instruct",
            description="VLM2Vec-V2 (LoRA on Qwen2-VL-2B): images, videos and visual documents.",
        ),
        ModelDescription(
            name="TIGER-Lab/VLM2Vec-Qwen2VL-2B",
            dim=1536,
            params="2.2B",
            license="Apache-2.0",
            source="https://huggingface.co/TIGER-Lab/VLM2Vec-Qwen2VL-2B",
            base_model="Qwen/Qwen2-VL-2B-Instruct",
            description="VLM2Vec V1 (LoRA on Qwen2-VL-2B).",
        ),
        ModelDescription(
            name="TIGER-Lab/VLM2Vec-Qwen2VL-7B",
            dim=3584,
            params="8.3B",
            license="Apache-2.0",
            source="https://huggingface.co/TIGER-Lab/VLM2Vec-Qwen2VL-7B",
            base_model="Qwen/Qwen2-VL-7B-Instruct",
            description="VLM2Vec V1 (LoRA on Qwen2-VL-7B).",
        ),
    ),
)
