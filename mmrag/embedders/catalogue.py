"""The model catalogue, as data: every supported checkpoint with its family, kind and dimension.

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

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from mmrag.errors import ConfigError

__all__ = [
    "FAMILIES",
    "SUPPORTED_MODELS",
    "ModelDescription",
    "describe",
    "list_supported_models",
]

#: Embedder families: the registry names in :mod:`mmrag.registry` (``[embedder] type``).
FAMILIES: tuple[str, ...] = ("clip", "vlm2vec", "e5v", "colpali", "colqwen2", "colmodernvbert")


@dataclass(frozen=True)
class ModelDescription:
    """One catalogue entry.

    ``name`` is what users pass (a Hugging Face id, or ``ARCH/PRETRAINED`` for open_clip);
    ``base_model`` is set for adapters (LoRA) that load on top of another checkpoint.
    """

    name: str
    family: str
    kind: Literal["single", "multi"]
    dim: int
    params: str
    license: str
    source: str
    base_model: str | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (for ``mmrag info`` and JSON output)."""
        return dataclasses.asdict(self)


SUPPORTED_MODELS: tuple[ModelDescription, ...] = (
    ModelDescription(
        name="ViT-B-32/laion2b_s34b_b79k",
        family="clip",
        kind="single",
        dim=512,
        params="151M",
        license="MIT",
        source="https://github.com/mlfoundations/open_clip",
        description="open_clip CLIP ViT-B/32 trained on LAION-2B: the single-vector baseline.",
    ),
    ModelDescription(
        name="ViT-L-14/laion2b_s32b_b82k",
        family="clip",
        kind="single",
        dim=768,
        params="428M",
        license="MIT",
        source="https://github.com/mlfoundations/open_clip",
        description="open_clip CLIP ViT-L/14 trained on LAION-2B.",
    ),
    ModelDescription(
        name="VLM2Vec/VLM2Vec-V2.0",
        family="vlm2vec",
        kind="single",
        dim=1536,
        params="2.2B",
        license="Apache-2.0",
        source="https://huggingface.co/VLM2Vec/VLM2Vec-V2.0",
        base_model="Qwen/Qwen2-VL-2B-Instruct",
        description="VLM2Vec-V2 (LoRA on Qwen2-VL-2B): images, videos and visual documents.",
    ),
    ModelDescription(
        name="TIGER-Lab/VLM2Vec-Qwen2VL-2B",
        family="vlm2vec",
        kind="single",
        dim=1536,
        params="2.2B",
        license="Apache-2.0",
        source="https://huggingface.co/TIGER-Lab/VLM2Vec-Qwen2VL-2B",
        base_model="Qwen/Qwen2-VL-2B-Instruct",
        description="VLM2Vec V1 (LoRA on Qwen2-VL-2B).",
    ),
    ModelDescription(
        name="TIGER-Lab/VLM2Vec-Qwen2VL-7B",
        family="vlm2vec",
        kind="single",
        dim=3584,
        params="8.3B",
        license="Apache-2.0",
        source="https://huggingface.co/TIGER-Lab/VLM2Vec-Qwen2VL-7B",
        base_model="Qwen/Qwen2-VL-7B-Instruct",
        description="VLM2Vec V1 (LoRA on Qwen2-VL-7B).",
    ),
    ModelDescription(
        name="royokong/e5-v",
        family="e5v",
        kind="single",
        dim=4096,
        params="8.4B",
        license="Llama 3 Community License (derived from Llama-3-8B; none on the model card)",
        source="https://huggingface.co/royokong/e5-v",
        description="E5-V on LLaVA-NeXT-8B: one-word-summary prompts, last-token embedding.",
    ),
    ModelDescription(
        name="vidore/colpali-v1.3-hf",
        family="colpali",
        kind="multi",
        dim=128,
        params="2.9B",
        license="Gemma",
        source="https://huggingface.co/vidore/colpali-v1.3-hf",
        description="ColPali v1.3 (PaliGemma-3B): 1,024 patch vectors on a 32 x 32 grid.",
    ),
    ModelDescription(
        name="vidore/colqwen2-v1.0-hf",
        family="colqwen2",
        kind="multi",
        dim=128,
        params="2.2B",
        license="Apache-2.0",
        source="https://huggingface.co/vidore/colqwen2-v1.0-hf",
        description="ColQwen2 v1.0 (Qwen2-VL-2B): dynamic-resolution patch vectors.",
    ),
    ModelDescription(
        name="ModernVBERT/colmodernvbert-merged",
        family="colmodernvbert",
        kind="multi",
        dim=128,
        params="250M",
        license="MIT",
        source="https://huggingface.co/ModernVBERT/colmodernvbert-merged",
        description="ColModernVBert (transformers-native weights of ModernVBERT/colmodernvbert): "
        "a small late-interaction model, fast on CPU.",
    ),
)

_BY_NAME = {m.name: m for m in SUPPORTED_MODELS}


def list_supported_models(family: str | None = None) -> list[dict[str, Any]]:
    """Every catalogue entry as a dict, optionally only one family's."""
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"unknown embedder family {family!r}; allowed: {', '.join(FAMILIES)}")
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
