"""Tiny ColModernVBert (``colmodernvbert``): late interaction on a ModernBERT + SigLIP encoder.

Stands in for ``ModernVBERT/colmodernvbert`` (the transformers-native weights are published as
``ModernVBERT/colmodernvbert-merged``; both use ``ColModernVBertProcessor``, an Idefics3-style
processor with ``image_seq_len: 64``). The real model splits pages into 512x512 tiles of
16-pixel patches shuffled by 4 (64 tokens per tile); the tiny one uses 64x64 tiles shuffled
by 2 (``IMAGE_SEQ_LEN`` = 4 tokens per tile), images resized to a longest edge of 128.

Example:
    >>> tiny = make_colmodernvbert()
    >>> tiny.processor.image_seq_len == IMAGE_SEQ_LEN
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmrag.testing.bundle import TinyModel, seeded
from mmrag.testing.tokenizers import modernbert_tokenizer

if TYPE_CHECKING:
    from transformers import ColModernVBertProcessor, ModernVBertConfig

#: Tile side and patch side, in pixels, and the pixel-shuffle factor.
TILE_SIZE = 64
PATCH_SIZE = 16
PIXEL_SHUFFLE_FACTOR = 2
#: ``<image>`` tokens per tile: ``(TILE_SIZE // PATCH_SIZE) ** 2 // PIXEL_SHUFFLE_FACTOR ** 2``.
IMAGE_SEQ_LEN = (TILE_SIZE // PATCH_SIZE) ** 2 // PIXEL_SHUFFLE_FACTOR**2
#: Images are resized to this longest edge before being split into tiles.
LONGEST_EDGE = 2 * TILE_SIZE


def tiny_colmodernvbert_processor() -> ColModernVBertProcessor:
    """A ``ColModernVBertProcessor`` with the stock ``Idefics3ImageProcessor``."""
    from transformers import ColModernVBertProcessor, Idefics3ImageProcessor

    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": LONGEST_EDGE},
        max_image_size={"longest_edge": TILE_SIZE},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return ColModernVBertProcessor(
        image_processor=image_processor,
        tokenizer=modernbert_tokenizer(),
        image_seq_len=IMAGE_SEQ_LEN,
    )


def tiny_modernvbert_config(processor: ColModernVBertProcessor) -> ModernVBertConfig:
    """A tiny ``ModernVBertConfig`` (ModernBERT text, SigLIP vision) sized to ``processor``."""
    from transformers import ModernVBertConfig

    tokenizer = processor.tokenizer
    return ModernVBertConfig(
        text_config={
            "model_type": "modernbert",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 1024,
            "local_attention": 16,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.cls_token_id,
            "eos_token_id": tokenizer.sep_token_id,
            "cls_token_id": tokenizer.cls_token_id,
            "sep_token_id": tokenizer.sep_token_id,
        },
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": TILE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        image_token_id=processor.image_token_id,
        pixel_shuffle_factor=PIXEL_SHUFFLE_FACTOR,
    )


def make_colmodernvbert(seed: int = 0) -> TinyModel:
    """Build a tiny ``ColModernVBertForRetrieval`` (128-d per token) and its processor.

    Example:
        >>> tiny = make_colmodernvbert()
        >>> type(tiny.model).__name__, tiny.model.config.embedding_dim
        ('ColModernVBertForRetrieval', 128)
    """
    from transformers import ColModernVBertConfig, ColModernVBertForRetrieval

    processor = tiny_colmodernvbert_processor()
    config = ColModernVBertConfig(vlm_config=tiny_modernvbert_config(processor), embedding_dim=128)
    with seeded(seed):
        model = ColModernVBertForRetrieval(config).eval()
    return TinyModel(model=model, processor=processor)
