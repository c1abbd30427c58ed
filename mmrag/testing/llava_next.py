"""Tiny LLaVA-NeXT (``llava_next``): the E5-V embedder's architecture.

Stands in for ``royokong/e5-v`` (LLaVA-NeXT on Llama-3-8B, CLIP ViT-L/14-336 vision, any-res
tiling). The tiny model uses a Llama-3-style byte-level tokenizer, a 2-layer CLIP vision tower
on 56x56 tiles of 14-pixel patches (16 patches + CLS), and grid pinpoints of 56 and 112 pixels.

E5-V pools the last token, so it needs **left padding**, and ``save_pretrained`` does not keep
a tokenizer's padding side: loaders must set ``processor.tokenizer.padding_side = "left"``
after ``from_pretrained`` (the manifest says so).

Example:
    >>> tiny = make_llava_next()
    >>> tiny.processor.tokenizer.padding_side
    'left'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmrag.testing.bundle import TinyModel, seeded
from mmrag.testing.tokenizers import llama3_tokenizer

if TYPE_CHECKING:
    from transformers import LlavaNextConfig, LlavaNextProcessor

#: Side of a vision tile and of a CLIP patch, in pixels.
TILE_SIZE = 56
PATCH_SIZE = 14
#: Any-res layouts the image processor picks from (height, width), in pixels.
GRID_PINPOINTS = [[56, 56], [56, 112], [112, 56], [112, 112]]
#: CLIP's normalisation constants (``openai/clip-vit-large-patch14-336``).
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def tiny_llava_next_processor() -> LlavaNextProcessor:
    """A ``LlavaNextProcessor`` with the stock ``LlavaNextImageProcessor`` and left padding."""
    from transformers import LlavaNextImageProcessor, LlavaNextProcessor

    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": TILE_SIZE},
        crop_size={"height": TILE_SIZE, "width": TILE_SIZE},
        image_grid_pinpoints=GRID_PINPOINTS,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    tokenizer = llama3_tokenizer()
    tokenizer.padding_side = "left"
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token
    )


def tiny_llava_next_config(processor: LlavaNextProcessor) -> LlavaNextConfig:
    """A tiny ``LlavaNextConfig`` (Llama text, CLIP vision) sized to ``processor``."""
    from transformers import LlavaNextConfig

    tokenizer = processor.tokenizer
    return LlavaNextConfig(
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 1024,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": TILE_SIZE,
            "patch_size": PATCH_SIZE,
            "projection_dim": 32,
        },
        image_token_index=processor.image_token_id,
        image_grid_pinpoints=GRID_PINPOINTS,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=(TILE_SIZE // PATCH_SIZE) ** 2,
    )


def make_llava_next(seed: int = 0) -> TinyModel:
    """Build a tiny ``LlavaNextForConditionalGeneration`` and its ``LlavaNextProcessor``.

    Example:
        >>> tiny = make_llava_next()
        >>> type(tiny.model).__name__
        'LlavaNextForConditionalGeneration'
    """
    from transformers import LlavaNextForConditionalGeneration

    processor = tiny_llava_next_processor()
    config = tiny_llava_next_config(processor)
    with seeded(seed):
        model = LlavaNextForConditionalGeneration(config).eval()
    tokenizer = processor.tokenizer
    generation = model.generation_config
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.do_sample = False
    return TinyModel(model=model, processor=processor)
