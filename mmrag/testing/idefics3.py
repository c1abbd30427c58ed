"""Tiny SmolVLM-style generators: Idefics3 (``idefics3``) and SmolVLM2 (``smolvlm``).

``HuggingFaceTB/SmolVLM-256M-Instruct`` (SmolVLM v1) is an Idefics3 checkpoint
(``model_type: idefics3``, ``Idefics3Processor``); SmolVLM2 checkpoints such as
``HuggingFaceTB/SmolVLM2-256M-Video-Instruct`` resolve to ``SmolVLMForConditionalGeneration``
and ``SmolVLMProcessor`` (which also carries a video processor and needs ``num2words``).
Both tiny models share one layout: a SmolLM2-style byte-level tokenizer, a 1-layer SigLIP-style
vision tower on 64x64 tiles of 16-pixel patches, pixel shuffle by 2, so every tile is
``IMAGE_SEQ_LEN`` = 4 ``<image>`` tokens; images are resized to a longest edge of 128 and split
into up to 2x2 tiles plus a global view.

Example:
    >>> tiny = make_idefics3()
    >>> tiny.processor.image_seq_len == IMAGE_SEQ_LEN
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmrag.testing.bundle import TinyModel, seeded
from mmrag.testing.tokenizers import smolvlm_tokenizer

if TYPE_CHECKING:
    from transformers import GPT2Tokenizer

#: Tile side and patch side, in pixels, and the pixel-shuffle factor.
TILE_SIZE = 64
PATCH_SIZE = 16
SCALE_FACTOR = 2
#: ``<image>`` tokens per tile: ``(TILE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR ** 2``.
IMAGE_SEQ_LEN = (TILE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2
#: Images are resized to this longest edge before being split into tiles.
LONGEST_EDGE = 2 * TILE_SIZE

#: Chat template of ``HuggingFaceTB/SmolVLM-256M-Instruct``.
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

#: Chat template of SmolVLM2 (``transformers.models.smolvlm.processing_smolvlm``): adds videos.
SMOLVLM2_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}"
    "{% elif line['type'] == 'video' %}{{ '<video>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def _config_kwargs(tokenizer: GPT2Tokenizer) -> dict[str, Any]:
    """Keyword arguments shared by ``Idefics3Config`` and ``SmolVLMConfig``."""
    return {
        "text_config": {
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
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": TILE_SIZE,
            "patch_size": PATCH_SIZE,
        },
        "scale_factor": SCALE_FACTOR,
        "image_token_id": tokenizer.convert_tokens_to_ids("<image>"),
        "pad_token_id": tokenizer.pad_token_id,
    }


def _set_generation_defaults(model: Any, tokenizer: GPT2Tokenizer) -> None:
    """Greedy decoding that stops at ``<end_of_utterance>`` (as SmolVLM's generation config)."""
    generation = model.generation_config
    generation.bos_token_id = tokenizer.bos_token_id
    generation.eos_token_id = tokenizer.eos_token_id
    generation.pad_token_id = tokenizer.pad_token_id
    generation.do_sample = False


def make_idefics3(seed: int = 0) -> TinyModel:
    """Build a tiny ``Idefics3ForConditionalGeneration`` and its ``Idefics3Processor``.

    Example:
        >>> tiny = make_idefics3()
        >>> type(tiny.model).__name__, type(tiny.processor).__name__
        ('Idefics3ForConditionalGeneration', 'Idefics3Processor')
    """
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": LONGEST_EDGE}, max_image_size={"longest_edge": TILE_SIZE}
        ),
        tokenizer=smolvlm_tokenizer(),
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=SMOLVLM_CHAT_TEMPLATE,
    )
    config = Idefics3Config(**_config_kwargs(processor.tokenizer))
    with seeded(seed):
        model = Idefics3ForConditionalGeneration(config).eval()
    _set_generation_defaults(model, processor.tokenizer)
    return TinyModel(model=model, processor=processor)


def make_smolvlm(seed: int = 0) -> TinyModel:
    """Build a tiny ``SmolVLMForConditionalGeneration`` and its ``SmolVLMProcessor``.

    ``SmolVLMProcessor`` refuses to start without the ``num2words`` package.

    Example:
        >>> tiny = make_smolvlm()  # doctest: +SKIP
        >>> type(tiny.processor.video_processor).__name__  # doctest: +SKIP
        'SmolVLMVideoProcessor'
    """
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    sizes = {"size": {"longest_edge": LONGEST_EDGE}, "max_image_size": {"longest_edge": TILE_SIZE}}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(**sizes),
        tokenizer=smolvlm_tokenizer(),
        video_processor=SmolVLMVideoProcessor(**sizes),
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=SMOLVLM2_CHAT_TEMPLATE,
    )
    config = SmolVLMConfig(**_config_kwargs(processor.tokenizer))
    with seeded(seed):
        model = SmolVLMForConditionalGeneration(config).eval()
    _set_generation_defaults(model, processor.tokenizer)
    return TinyModel(model=model, processor=processor)
