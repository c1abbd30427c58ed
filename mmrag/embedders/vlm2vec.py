"""VLM2Vec-style single-vector embedder: a Qwen2-VL backbone, instruction prompts, last token.

The recipe, as VLM2Vec's own code runs it (https://github.com/TIGER-AI-Lab/VLM2Vec):

* **Prompts** (``src/model/processor.py``, ``process_input_text``): raw text, no chat template,
  ``"{image token} {instruction} {text}"``; the image token is a bare ``<|image_pad|>``
  (``VLM_IMAGE_TOKENS``), *without* ``<|vision_start|>`` / ``<|vision_end|>`` around it. The
  document-retrieval instructions are those of the ViDoRe and VisRAG evaluation sets
  (``src/data/eval_dataset/vidore_dataset.py`` and ``visrag_dataset.py``):

  - query: ``"Find a document image that matches the given query: {query}"``
  - document: ``"<|image_pad|> Understand the content of the provided document image."``

  (no trailing ``"\\n"``: only the MMEB image-task evaluations append one). A query with an image
  becomes ``"<|image_pad|> {query instruction} {text}"``; an image-only query is embedded like a
  page (the document prompt), so image→page search compares like with like.
* **Positions.** VLM2Vec's Qwen2-VL backbone (``src/model/vlm_backbone/qwen2_vl/``,
  ``get_rope_index``) finds images only after a ``<|vision_start|>`` token, which its prompts
  never contain, so *every* token, image tokens included, gets plain 1-D positions
  ``0 … n-1`` over the unpadded sequence. Stock transformers 5.x would give image tokens 3-D
  M-RoPE grid positions; we pass the 1-D positions explicitly (``cumsum(mask) - 1``), which
  also makes an embedding independent of how much padding its batch needed.
* **Image budget** (``src/arguments.py``, ``Qwen2_VL_process_fn``): the Qwen2-VL image
  processor with ``min_pixels = 28·28·4`` and ``max_pixels = 28·28·1280``; images with a side
  under 28 px are first resized to 56 x 56.
* **Pooling** (``src/model/model.py``, ``MMEBModel._pooling``): the final (normed) hidden state
  of the last real token, L2-normalised (``--pooling eos --normalize true`` in
  ``experiments/public/eval/*.sh``).
* **Weights.** ``VLM2Vec/VLM2Vec-V2.0`` and ``TIGER-Lab/VLM2Vec-Qwen2VL-2B`` are LoRA (DoRA)
  adapters on ``Qwen/Qwen2-VL-2B-Instruct`` (``MMEBModel.load`` merges them); see
  :mod:`mmrag.embedders._lora` for how they are loaded on transformers 5.x and verified. A local
  folder or Hub id holding a full (merged) Qwen2-VL checkpoint loads directly.

Model cards: https://huggingface.co/VLM2Vec/VLM2Vec-V2.0,
https://huggingface.co/TIGER-Lab/VLM2Vec-Qwen2VL-2B; papers arXiv:2410.05160 (VLM2Vec) and
arXiv:2507.04590 (VLM2Vec-V2).

Example:
    >>> from mmrag.embedders.vlm2vec import VLM2VecEmbedder
    >>> embedder = VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0")       # cheap: nothing loads yet
    >>> embedder.query_prompt("revenue by region")
    'Find a document image that matches the given query: revenue by region'
    >>> embedder.document_prompt()
    '<|image_pad|> Understand the content of the provided document image.'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mmrag.embedders.base import ModelEmbedder, Query
from mmrag.embedders.families.vlm2vec import VLM2VEC
from mmrag.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from mmrag.types import Embedding

__all__ = [
    "DOCUMENT_INSTRUCTION",
    "MAX_PIXELS",
    "MIN_PIXELS",
    "QUERY_INSTRUCTION",
    "VLM2VecEmbedder",
    "last_token",
    "positions_from_mask",
]

logger = logging.getLogger(__name__)

#: VLM2Vec's document-retrieval query instruction (ViDoRe / VisRAG evaluation sets).
QUERY_INSTRUCTION = "Find a document image that matches the given query:"
#: VLM2Vec's document-retrieval candidate instruction (ViDoRe / VisRAG evaluation sets).
DOCUMENT_INSTRUCTION = "Understand the content of the provided document image."
#: VLM2Vec's image budget (``DataArguments.resize_min_pixels`` / ``resize_max_pixels``).
MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 1280
#: Images with a side under this many pixels are resized to ``_TINY_IMAGE_SIZE`` first.
_MIN_SIDE = 28
_TINY_IMAGE_SIZE = (56, 56)
#: VLM2Vec's image token for Qwen2-VL (``VLM_IMAGE_TOKENS[QWEN2_VL]``).
IMAGE_TOKEN = "<|image_pad|>"


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """1-D positions ``0 … n-1`` over each row's real tokens (pads get 0), whatever the padding.

    Example:
        >>> import torch
        >>> positions_from_mask(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])).tolist()
        [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
    """
    mask = attention_mask.long()
    return (mask.cumsum(-1) - 1).clamp_min(0) * mask


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state of each row's last real token, for left or right padding.

    ``hidden`` is ``(batch, tokens, dim)``, ``attention_mask`` ``(batch, tokens)``; returns
    ``(batch, dim)``.

    Example:
        >>> import torch
        >>> hidden = torch.arange(6.0).reshape(2, 3, 1)
        >>> last_token(hidden, torch.tensor([[1, 1, 0], [0, 1, 1]])).flatten().tolist()
        [1.0, 5.0]
    """
    import torch

    tokens = attention_mask.shape[1]
    index = tokens - 1 - attention_mask.long().flip(-1).argmax(-1)  # (batch,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index.to(hidden.device)]


def _vlm2vec_resize(image: Image.Image) -> Image.Image:
    """RGB, and VLM2Vec's upscaling of images with a side under 28 px to 56 x 56."""
    image = image.convert("RGB")
    if image.size[0] < _MIN_SIDE or image.size[1] < _MIN_SIDE:
        image = image.resize(_TINY_IMAGE_SIZE)
    return image


class VLM2VecEmbedder(ModelEmbedder):
    """VLM2Vec on Qwen2-VL: one L2-normalised vector per page, text query, image query or both.

    ``model`` is a catalogue name, a Hugging Face id or a local folder: either a LoRA adapter
    (loaded on ``base_model``: given here, else the catalogue's, else the adapter config's
    ``base_model_name_or_path``) or a full Qwen2-VL checkpoint. ``revision`` pins ``model``;
    ``base_revision`` pins the base model. The instructions and image budget default to
    VLM2Vec's published document-retrieval recipe and are part of :attr:`id`.

    Example:
        >>> from mmrag.embedders.vlm2vec import VLM2VecEmbedder
        >>> commit = "0" * 40                     # main's commit, resolved when not given
        >>> embedder = VLM2VecEmbedder("TIGER-Lab/VLM2Vec-Qwen2VL-2B", revision=commit)
        >>> embedder.kind, embedder.dim
        ('single', 1536)
        >>> embedder.id.startswith(f"vlm2vec:TIGER-Lab/VLM2Vec-Qwen2VL-2B@{commit}#")
        True
    """

    spec = VLM2VEC

    _model: Any
    _processor: Any

    def __init__(
        self,
        model: str,
        *,
        base_model: str | None = None,
        base_revision: str | None = None,
        query_instruction: str = QUERY_INSTRUCTION,
        document_instruction: str = DOCUMENT_INSTRUCTION,
        min_pixels: int = MIN_PIXELS,
        max_pixels: int = MAX_PIXELS,
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
        if not 0 < min_pixels <= max_pixels:
            raise ConfigError(
                f"the image budget needs 0 < min_pixels <= max_pixels; got min_pixels="
                f"{min_pixels}, max_pixels={max_pixels} (VLM2Vec: {MIN_PIXELS}, {MAX_PIXELS})"
            )
        self.base_model = base_model
        self.base_revision = base_revision
        self.query_instruction = query_instruction
        self.document_instruction = document_instruction
        self.min_pixels = int(min_pixels)
        self.max_pixels = int(max_pixels)
        self.image_token = IMAGE_TOKEN

    # -- identity ---------------------------------------------------------------------------------

    def init_parameters(self) -> dict[str, Any]:
        """The constructor arguments (for ``{type, init_parameters}`` serialisation)."""
        return {
            **super().init_parameters(),
            "base_model": self.base_model,
            "base_revision": self.base_revision,
            "query_instruction": self.query_instruction,
            "document_instruction": self.document_instruction,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }

    def id_settings(self) -> dict[str, Any]:
        """Prompts, image budget and base model: everything besides the weights that shapes a
        vector."""
        settings: dict[str, Any] = {
            "query_instruction": self.query_instruction,
            "document_instruction": self.document_instruction,
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
        }
        base = self._base_model_id()
        if base is not None:
            settings["base_model"] = base
        if self.base_revision is not None:
            settings["base_revision"] = self.base_revision
        return settings

    @property
    def dim(self) -> int:
        """The embedding dimension: the backbone's hidden size (1536 for the 2B checkpoints)."""
        if not self._loaded:
            from mmrag.embedders.catalogue import _BY_NAME

            if self.model in _BY_NAME:
                return _BY_NAME[self.model].dim
            self.load()
        return int(self._model.config.text_config.hidden_size)

    def _base_model_id(self) -> str | None:
        if self.base_model is not None:
            return self.base_model
        from mmrag.embedders.catalogue import _BY_NAME

        entry = _BY_NAME.get(self.model)
        return entry.base_model if entry is not None else None

    # -- prompts ----------------------------------------------------------------------------------

    def query_prompt(self, text: str | None = None, *, with_image: bool = False) -> str:
        """The exact string fed to the tokenizer for a query (VLM2Vec ``process_input_text``).

        Example:
            >>> from mmrag.embedders.vlm2vec import VLM2VecEmbedder
            >>> VLM2VecEmbedder("x").query_prompt("chart", with_image=True)
            '<|image_pad|> Find a document image that matches the given query: chart'
        """
        if text is None:
            if not with_image:
                raise ValueError("a query needs text, an image, or both")
            return self.document_prompt()
        prompt = f"{self.query_instruction} {text}"
        return f"{self.image_token} {prompt}" if with_image else prompt

    def document_prompt(self) -> str:
        """The exact string fed to the tokenizer with every page image."""
        return f"{self.image_token} {self.document_instruction}"

    # -- loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        from transformers import AutoProcessor
        from transformers.utils import cached_file

        from mmrag.embedders._lora import find_adapter, load_merged_adapter

        revision = self._load_revision()  # a Hub id loads at the commit its id names
        adapter = find_adapter(
            self.model, revision=revision, local_files_only=self.local_files_only
        )
        if adapter is None:
            model = self._load_backbone(self.model, revision)
            processor_source, processor_revision = self.model, revision
        else:
            base = self._base_model_id() or adapter.read_config().get("base_model_name_or_path")
            if not base:
                raise ConfigError(
                    f"{self.model!r} is a LoRA adapter without a base model: pass "
                    "base_model='Qwen/Qwen2-VL-2B-Instruct' (or the base it was trained on)"
                )
            logger.info("loading base model %s for adapter %s", base, self.model)
            model = load_merged_adapter(
                self._load_backbone(base, self.base_revision), adapter, source=self.model
            )
            # VLM2Vec reads the processor from the adapter's repository when it ships one.
            has_processor = cached_file(
                self.model,
                "preprocessor_config.json",
                revision=revision,
                _raise_exceptions_for_missing_entries=False,
                **self._local_only(),
            )
            if has_processor:
                processor_source, processor_revision = self.model, revision
            else:
                processor_source, processor_revision = base, self.base_revision
        self._model = model.to(self.resolved_device).eval()
        self._processor = AutoProcessor.from_pretrained(
            processor_source, **self._hub_kwargs(processor_revision)
        )
        self._processor.tokenizer.padding_side = "left"
        self.image_token = str(getattr(self._processor, "image_token", IMAGE_TOKEN))
        logger.info(
            "loaded %s (Qwen2-VL) on %s as %s",
            self.model,
            self.resolved_device,
            self.resolved_dtype,
        )

    def _local_only(self) -> dict[str, Any]:
        return {} if self.local_files_only is None else {"local_files_only": self.local_files_only}

    def _hub_kwargs(self, revision: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code, **self._local_only()}
        if revision is not None:
            kwargs["revision"] = revision
        return kwargs

    def _load_backbone(self, source: str, revision: str | None) -> Any:
        from transformers import AutoConfig, Qwen2VLForConditionalGeneration

        kwargs = self._hub_kwargs(revision)
        config = AutoConfig.from_pretrained(source, **kwargs)
        found = getattr(config, "model_type", None)
        if found not in VLM2VEC.model_types:
            raise ConfigError(
                f"{source!r} is a {found!r} checkpoint; the vlm2vec embedder needs a Qwen2-VL "
                f"backbone (model_type {VLM2VEC.model_types_text()}) or a LoRA adapter on one"
            )
        model, info = Qwen2VLForConditionalGeneration.from_pretrained(
            source, config=config, dtype=self._torch_dtype(), output_loading_info=True, **kwargs
        )
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            raise ConfigError(
                f"{source!r}: {len(missing)} Qwen2-VL weights are missing from the checkpoint "
                f"(e.g. {missing[0]!r}); it would run with random weights"
            )
        return model

    # -- embedding --------------------------------------------------------------------------------

    def _encode(self, prompts: Sequence[str], images: Sequence[Image.Image]) -> Any:
        """Tokenise a batch (left-padded) with the images in prompt order."""
        kwargs: dict[str, Any] = {"text": list(prompts), "padding": True, "return_tensors": "pt"}
        if images:
            kwargs["images"] = [_vlm2vec_resize(image) for image in images]
            kwargs["size"] = {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels}
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
            "position_ids": positions_from_mask(mask),  # VLM2Vec: 1-D positions everywhere
            "use_cache": False,
        }
        if "pixel_values" in batch:
            inputs["pixel_values"] = batch["pixel_values"].to(device, self._model.dtype)
            inputs["image_grid_thw"] = batch["image_grid_thw"].to(device)
        hidden = self._model.model(**inputs).last_hidden_state  # (batch, tokens, dim), normed
        vectors = F.normalize(last_token(hidden, mask).float(), dim=-1).cpu().numpy()
        return [Embedding(dense=np.ascontiguousarray(v, dtype=np.float32)) for v in vectors]

    def _embed_images(self, images: Sequence[Image.Image]) -> list[Embedding]:
        return self._forward([self.document_prompt()] * len(images), images)

    def _embed_queries(self, queries: Sequence[Query]) -> list[Embedding]:
        prompts = [self.query_prompt(q.text, with_image=q.has_image) for q in queries]
        images = [q.image for q in queries if q.image is not None]
        return self._forward(prompts, images)
