"""Tiny ColPali: ``ColPaliForRetrieval`` on a tiny PaliGemma (Gemma text + SigLIP vision).

Stands in for ``vidore/colpali-v1.3-hf``. The real model sees 448x448 pages as a 32x32 grid of
14-pixel patches (1024 image tokens); the tiny one sees 56x56 pages as a 4x4 grid (16 image
tokens). ``ColPaliProcessor`` needs ``image_seq_length`` on the image processor (the real
``preprocessor_config.json`` carries it) and adds ``<image>`` and the ``<locXXXX>``/``<segXXX>``
tokens to the tokenizer itself.

Example:
    >>> tiny = make_colpali()
    >>> tiny.processor.image_seq_length == GRID_SIDE**2
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmrag.testing.bundle import TinyModel, seeded
from mmrag.testing.tokenizers import gemma_tokenizer

if TYPE_CHECKING:
    from transformers import ColPaliProcessor, PaliGemmaConfig

#: Side of the (square) input image, in pixels, and of a SigLIP patch.
IMAGE_SIZE = 56
PATCH_SIZE = 14
#: Patches per side: the image is ``GRID_SIDE**2`` image tokens.
GRID_SIDE = IMAGE_SIZE // PATCH_SIZE


def tiny_colpali_processor() -> ColPaliProcessor:
    """A ``ColPaliProcessor`` with the stock ``SiglipImageProcessor`` at 56x56."""
    from transformers import ColPaliProcessor, SiglipImageProcessor

    image_processor = SiglipImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    image_processor.image_seq_length = GRID_SIDE**2
    return ColPaliProcessor(image_processor=image_processor, tokenizer=gemma_tokenizer())


def tiny_paligemma_config(processor: ColPaliProcessor) -> PaliGemmaConfig:
    """A tiny ``PaliGemmaConfig`` sized to ``processor``'s tokenizer (after its added tokens)."""
    from transformers import PaliGemmaConfig

    tokenizer = processor.tokenizer
    return PaliGemmaConfig(
        text_config={
            "model_type": "gemma",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "vision_use_head": False,
        },
        image_token_index=processor.image_token_id,
        vocab_size=len(tokenizer),
        projection_dim=32,
        hidden_size=32,
    )


def make_colpali(seed: int = 0) -> TinyModel:
    """Build a tiny ``ColPaliForRetrieval`` (128-d per token) and its ``ColPaliProcessor``.

    Example:
        >>> tiny = make_colpali()
        >>> type(tiny.model).__name__, tiny.model.config.embedding_dim
        ('ColPaliForRetrieval', 128)
    """
    from transformers import ColPaliConfig, ColPaliForRetrieval

    processor = tiny_colpali_processor()
    config = ColPaliConfig(vlm_config=tiny_paligemma_config(processor), embedding_dim=128)
    with seeded(seed):
        model = ColPaliForRetrieval(config).eval()
    return TinyModel(model=model, processor=processor)
