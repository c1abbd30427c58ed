"""Tiny Qwen2-VL models: the generator/backbone (``qwen2vl``) and ColQwen2 (``colqwen2``).

``qwen2vl`` stands in for ``Qwen/Qwen2-VL-2B-Instruct`` (VLM2Vec backbone, MonoQwen2-VL
reranker base, generator); ``colqwen2`` for ``vidore/colqwen2-v1.0-hf``. Both share one tiny
Qwen2-VL configuration: 2 text layers of width 32, a 1-block vision tower, the stock
``Qwen2VLImageProcessor`` (patch 14, merge 2) with a small image budget, so a 100x80 image
becomes a [1, 8, 6] patch grid and 12 image tokens.

Example:
    >>> tiny = make_qwen2vl(seed=0)
    >>> tiny.processor.image_processor.size["longest_edge"] == MAX_PIXELS
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmrag.testing.bundle import TinyModel, seeded
from mmrag.testing.tokenizers import qwen2_tokenizer

if TYPE_CHECKING:
    from transformers import (
        ColQwen2Processor,
        Qwen2Tokenizer,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
    )

#: Smallest and largest image area, in pixels (4 and 16 merged 28x28 patches).
MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 16

#: The chat template shipped with ``Qwen/Qwen2-VL-2B-Instruct`` (``chat_template.json``).
QWEN2VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen2vl_config(tokenizer: Qwen2Tokenizer) -> Qwen2VLConfig:
    """A tiny ``Qwen2VLConfig`` whose special token ids come from ``tokenizer``.

    ``mrope_section`` must sum to ``head_dim / 2`` (16 / 2 = 8).
    """
    from transformers import Qwen2VLConfig

    ids = {
        t: tokenizer.convert_tokens_to_ids(t)
        for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")
    }
    return Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 1024,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 3, 3],
            },
            "bos_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def tiny_qwen2vl_image_processor() -> Qwen2VLImageProcessor:
    """The stock (torchvision) ``Qwen2VLImageProcessor`` with the tiny image budget."""
    from transformers import Qwen2VLImageProcessor

    return Qwen2VLImageProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)


def tiny_qwen2vl_processor() -> Qwen2VLProcessor:
    """A ``Qwen2VLProcessor`` (image + video processors) with the real chat template."""
    from transformers import Qwen2VLProcessor, Qwen2VLVideoProcessor

    return Qwen2VLProcessor(
        image_processor=tiny_qwen2vl_image_processor(),
        tokenizer=qwen2_tokenizer(),
        video_processor=Qwen2VLVideoProcessor(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS),
        chat_template=QWEN2VL_CHAT_TEMPLATE,
    )


def make_qwen2vl(seed: int = 0) -> TinyModel:
    """Build a tiny ``Qwen2VLForConditionalGeneration`` and its ``Qwen2VLProcessor``.

    Its generation config is greedy and stops at ``<|im_end|>`` or ``<|endoftext|>``
    (the real checkpoint's eos ids), padding with ``<|endoftext|>``.

    Example:
        >>> tiny = make_qwen2vl()
        >>> tok = tiny.processor.tokenizer
        >>> tiny.model.generation_config.pad_token_id == tok.pad_token_id
        True
    """
    from transformers import Qwen2VLForConditionalGeneration

    processor = tiny_qwen2vl_processor()
    tokenizer = processor.tokenizer
    config = tiny_qwen2vl_config(tokenizer)
    with seeded(seed):
        model = Qwen2VLForConditionalGeneration(config).eval()
    generation = model.generation_config
    generation.bos_token_id = tokenizer.pad_token_id
    generation.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    generation.pad_token_id = tokenizer.pad_token_id
    generation.do_sample = False
    return TinyModel(model=model, processor=processor)


def tiny_colqwen2_processor() -> ColQwen2Processor:
    """A ``ColQwen2Processor`` on the tiny Qwen2 tokenizer and image processor."""
    from transformers import ColQwen2Processor

    return ColQwen2Processor(
        image_processor=tiny_qwen2vl_image_processor(), tokenizer=qwen2_tokenizer()
    )


def make_colqwen2(seed: int = 0) -> TinyModel:
    """Build a tiny ``ColQwen2ForRetrieval`` (128-d per token) and its ``ColQwen2Processor``.

    Example:
        >>> tiny = make_colqwen2()
        >>> tiny.model.config.embedding_dim
        128
    """
    from transformers import ColQwen2Config, ColQwen2ForRetrieval

    processor = tiny_colqwen2_processor()
    config = ColQwen2Config(vlm_config=tiny_qwen2vl_config(processor.tokenizer), embedding_dim=128)
    with seeded(seed):
        model = ColQwen2ForRetrieval(config).eval()
    return TinyModel(model=model, processor=processor)
