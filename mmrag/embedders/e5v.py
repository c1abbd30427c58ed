"""E5-V-style single-vector embedder: LLaVA-NeXT, one-word-summary prompts, last token.

The recipe of ``royokong/e5-v`` (README example and ``retrieval.py`` in
https://github.com/kongds/E5-V; model card https://huggingface.co/royokong/e5-v; Jiang et al.,
"E5-V: Universal Embeddings with Multimodal Large Language Models", arXiv:2407.12580):

* **Template** (Llama-3 chat turn, ending in an assistant header, a space and a newline)::

    <|start_header_id|>user<|end_header_id|>\\n\\n{}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n \\n

  The tokenizer adds ``<|begin_of_text|>`` in front.
* **Prompts** placed in ``{}``: an image ``'<image>\\nSummary above image in one word: '``, a
  sentence ``'<sent>\\nSummary above sentence in one word: '`` (``<sent>`` is replaced by the
  text). An image *and* text query uses ``'<image>\\n<sent>\\nSummary above image and text in
  one word: '``, the E5-V prompt of VLM2Vec's baseline code (``e5_v_prompt_template`` in
  https://github.com/TIGER-AI-Lab/VLM2Vec/blob/main/src/model/processor.py). Pages are images.
* **Pooling**: ``hidden_states[-1][:, -1, :]`` — the final (normed) hidden state of the last
  token — with the tokenizer **padding on the left** (``retrieval.py`` sets it; it is not saved
  with the processor, so it is set after loading), then L2 normalisation. Positions are passed
  as ``0 … n-1`` over each row's real tokens so that a batched embedding equals the unpadded one.
* **Images**: LLaVA-NeXT's any-resolution tiling, exactly as the checkpoint's image processor
  (``preprocessor_config.json``) configures it. ``royokong/e5-v`` was saved by transformers
  4.41 without a ``processor_config.json``; the settings transformers 5.x needs to expand
  ``<image>`` (patch size, feature strategy, CLS token) are then read from the model config.

Example:
    >>> from mmrag.embedders.e5v import E5VEmbedder
    >>> embedder = E5VEmbedder("royokong/e5-v")      # cheap: nothing loads yet
    >>> embedder.query_prompt("a dog")
    '<|start_header_id|>user<|end_header_id|>\\n\\na dog\\nSummary above sentence in one word: <|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n \\n'
"""  # noqa: E501

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mmrag.embedders.base import ModelEmbedder, Query
from mmrag.embedders.families.e5v import E5V
from mmrag.embedders.vlm2vec import last_token, positions_from_mask
from mmrag.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.types import Embedding

__all__ = [
    "IMAGE_PROMPT",
    "IMAGE_TEXT_PROMPT",
    "LLAMA3_TEMPLATE",
    "TEXT_PROMPT",
    "E5VEmbedder",
]

logger = logging.getLogger(__name__)

#: E5-V's Llama-3 chat wrapper (``llama3_template`` in the E5-V README and ``retrieval.py``).
LLAMA3_TEMPLATE = (
    "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n \n"
)
#: E5-V's sentence prompt; ``<sent>`` is replaced by the query text.
TEXT_PROMPT = "<sent>\nSummary above sentence in one word: "
#: E5-V's image prompt (documents and image-only queries).
IMAGE_PROMPT = "<image>\nSummary above image in one word: "
#: E5-V's image + text prompt (VLM2Vec's E5-V baseline, ``e5_v_prompt_template``).
IMAGE_TEXT_PROMPT = "<image>\n<sent>\nSummary above image and text in one word: "
#: Placeholders in the prompts.
_TEXT_SLOT = "<sent>"
_IMAGE_SLOT = "<image>"


def _complete_legacy_processor(processor: Any, config: Any) -> Any:
    """Fill in what a LLaVA-NeXT processor saved by transformers < 4.45 lacks.

    ``royokong/e5-v`` ships no ``processor_config.json`` (it was saved with transformers 4.41,
    when the model, not the processor, expanded ``<image>``). transformers 5.x processors expand
    ``<image>`` into one token per image feature and need the vision patch size, the feature
    selection strategy and the number of extra (CLS) tokens of the vision tower: read them from
    the checkpoint's own config.
    """
    if getattr(processor, "patch_size", None) is not None:
        return processor
    vision = config.vision_config
    processor.patch_size = int(vision.patch_size)
    processor.vision_feature_select_strategy = config.vision_feature_select_strategy
    # CLIP towers prepend a CLS token to the patch features (llava-hf's processor configs say 1)
    processor.num_additional_image_tokens = 1 if vision.model_type == "clip_vision_model" else 0
    logger.info(
        "completed a legacy LLaVA-NeXT processor from the model config: patch_size=%d, "
        "vision_feature_select_strategy=%s, num_additional_image_tokens=%d",
        processor.patch_size,
        processor.vision_feature_select_strategy,
        processor.num_additional_image_tokens,
    )
    return processor


class E5VEmbedder(ModelEmbedder):
    """E5-V on LLaVA-NeXT: one L2-normalised vector per page, text query, image query or both.

    The template and the three prompts default to the published ones and are part of :attr:`id`;
    ``template`` holds one ``{}`` for the prompt, prompts hold ``<sent>`` for the text and
    ``<image>`` for the image (rewritten to the processor's own image token).

    Example:
        >>> from mmrag.embedders.e5v import E5VEmbedder
        >>> embedder = E5VEmbedder("royokong/e5-v", dtype="bfloat16")
        >>> embedder.kind, embedder.dim
        ('single', 4096)
        >>> embedder.document_prompt().count("<image>")
        1
    """

    spec = E5V

    _model: Any
    _processor: Any

    def __init__(
        self,
        model: str,
        *,
        template: str = LLAMA3_TEMPLATE,
        text_prompt: str = TEXT_PROMPT,
        image_prompt: str = IMAGE_PROMPT,
        image_text_prompt: str = IMAGE_TEXT_PROMPT,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        trust_remote_code: bool = False,
        local_files_only: bool | None = None,
    ) -> None:
        super().__init__(
            model,
            revision=revision,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
            local_files_only=local_files_only,
        )
        if template.count("{}") != 1:
            raise ConfigError(f"template must hold exactly one '{{}}' for the prompt: {template!r}")
        for name, prompt, slots in (
            ("text_prompt", text_prompt, (_TEXT_SLOT,)),
            ("image_prompt", image_prompt, (_IMAGE_SLOT,)),
            ("image_text_prompt", image_text_prompt, (_IMAGE_SLOT, _TEXT_SLOT)),
        ):
            for slot in slots:
                if prompt.count(slot) != 1:
                    raise ConfigError(f"{name} must hold {slot} exactly once: {prompt!r}")
        self.template = template
        self.text_prompt = text_prompt
        self.image_prompt = image_prompt
        self.image_text_prompt = image_text_prompt
        self.image_token = _IMAGE_SLOT

    # -- identity ---------------------------------------------------------------------------------

    def init_parameters(self) -> dict[str, Any]:
        """The constructor arguments (for ``{type, init_parameters}`` serialisation)."""
        return {
            **super().init_parameters(),
            "template": self.template,
            "text_prompt": self.text_prompt,
            "image_prompt": self.image_prompt,
            "image_text_prompt": self.image_text_prompt,
        }

    def id_settings(self) -> dict[str, Any]:
        """The template and prompts (they shape every vector)."""
        return {
            "template": self.template,
            "text_prompt": self.text_prompt,
            "image_prompt": self.image_prompt,
            "image_text_prompt": self.image_text_prompt,
        }

    @property
    def dim(self) -> int:
        """The embedding dimension: the language model's hidden size (4096 for E5-V)."""
        if not self._loaded:
            from mmrag.embedders.catalogue import _BY_NAME

            if self.model in _BY_NAME:
                return _BY_NAME[self.model].dim
            self.load()
        return int(self._model.config.text_config.hidden_size)

    # -- prompts ----------------------------------------------------------------------------------

    def _render(self, prompt: str, text: str | None = None) -> str:
        rendered = self.template.format(prompt).replace(_IMAGE_SLOT, self.image_token)
        return rendered if text is None else rendered.replace(_TEXT_SLOT, text)

    def query_prompt(self, text: str | None = None, *, with_image: bool = False) -> str:
        """The exact string fed to the processor for a query."""
        if text is None:
            if not with_image:
                raise ValueError("a query needs text, an image, or both")
            return self.document_prompt()
        return self._render(self.image_text_prompt if with_image else self.text_prompt, text)

    def document_prompt(self) -> str:
        """The exact string fed to the processor with every page image."""
        return self._render(self.image_prompt)

    # -- loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        from transformers import AutoConfig, AutoProcessor, LlavaNextForConditionalGeneration

        kwargs = self._from_pretrained_kwargs()
        config = AutoConfig.from_pretrained(self.model, **kwargs)
        found = getattr(config, "model_type", None)
        if found not in E5V.model_types:
            raise ConfigError(
                f"{self.model!r} is a {found!r} checkpoint; the e5v embedder needs a LLaVA-NeXT "
                f"checkpoint (model_type {E5V.model_types_text()})"
            )
        model, info = LlavaNextForConditionalGeneration.from_pretrained(
            self.model, config=config, dtype=self._torch_dtype(), output_loading_info=True, **kwargs
        )
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            raise ConfigError(
                f"{self.model!r}: {len(missing)} LLaVA-NeXT weights are missing from the "
                f"checkpoint (e.g. {missing[0]!r}); it would run with random weights"
            )
        self._model = model.to(self.resolved_device).eval()
        processor = _complete_legacy_processor(
            AutoProcessor.from_pretrained(self.model, **kwargs), config
        )
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"  # E5-V pools position -1; not kept by save_pretrained
        if tokenizer.pad_token is None:  # as E5-V's retrieval.py: pad with the eos token
            tokenizer.pad_token = tokenizer.eos_token
        self._processor = processor
        self.image_token = str(getattr(processor, "image_token", _IMAGE_SLOT))
        logger.info(
            "loaded %s (LLaVA-NeXT) on %s as %s",
            self.model,
            self.resolved_device,
            self.resolved_dtype,
        )

    # -- embedding --------------------------------------------------------------------------------

    def _encode(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> Any:
        """Tokenise a batch (left-padded) with the images in prompt order."""
        kwargs: dict[str, Any] = {"text": list(prompts), "padding": True, "return_tensors": "pt"}
        if images:
            kwargs["images"] = [image.convert("RGB") for image in images]
        return self._processor(**kwargs)

    def _forward(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> list[Embedding]:
        import numpy as np
        import torch.nn.functional as F

        from mmrag.types import Embedding

        batch = self._encode(prompts, images)
        device = self.resolved_device
        mask = batch["attention_mask"].to(device)
        inputs: dict[str, Any] = {
            "input_ids": batch["input_ids"].to(device),
            "attention_mask": mask,
            "position_ids": positions_from_mask(mask),
            "use_cache": False,
        }
        if "pixel_values" in batch:
            inputs["pixel_values"] = batch["pixel_values"].to(device, self._model.dtype)
            inputs["image_sizes"] = batch["image_sizes"].to(device)
        hidden = self._model.model(**inputs).last_hidden_state  # (batch, tokens, dim), normed
        vectors = F.normalize(last_token(hidden, mask).float(), dim=-1).cpu().numpy()
        return [Embedding(dense=np.ascontiguousarray(v, dtype=np.float32)) for v in vectors]

    def _embed_images(self, images: Sequence[Image.Image]) -> list[Embedding]:
        return self._forward([self.document_prompt()] * len(images), images)

    def _embed_queries(self, queries: Sequence[Query]) -> list[Embedding]:
        prompts = [self.query_prompt(q.text, with_image=q.has_image) for q in queries]
        images = [q.image for q in queries if q.image is not None]
        return self._forward(prompts, images)
