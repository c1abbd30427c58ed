"""Multimodal LLM rerankers: a vision-language model judges each page image against the query.

Two published kinds, both on a Qwen2-VL backbone:

- **Pointwise True/False** (:class:`MonoQwenReranker`, ``lightonai/MonoQwen2-VL-v0.1``: a LoRA
  adapter on Qwen2-VL-2B-Instruct, MonoT5 objective). The page image and the model card's prompt
  "Assert the relevance of the previous image document to the following query, answer True or
  False. The query is: {query}" go through the Qwen2-VL chat template with the generation prompt;
  the score is the softmax over the ``True`` / ``False`` logits at the last position, i.e. the
  probability of "True".
- **Score head** (:class:`ScoreHeadReranker`, ``jinaai/jina-reranker-m0``): the backbone's last
  hidden state at an appended score token (id 100) goes through a two-layer MLP
  (``score.0`` → ReLU → ``score.2``); the score is ``sigmoid(logit - 2.65)``. The prompt is
  ``"**Document**:\\n<image>\\n**Query**:\\n{query}"``. The head is run natively (backbone through
  transformers, head weights read from the checkpoint); ``trust_remote_code=True`` runs the
  model's own ``compute_score`` instead, only when the user opts in.

Both are batched (left padding, so the last position is every row's last real token), resize
pages to an image budget (``max_pixels``) and keep the best ``top_n``.

Sources: https://huggingface.co/lightonai/MonoQwen2-VL-v0.1 (model card: prompt, token scoring),
https://huggingface.co/jinaai/jina-reranker-m0 (``modeling.py``: prompt, score token, head,
logit bias; vLLM's ``JinaVLForSequenceClassification`` is the same head).

Example:
    >>> from mmrag.rerankers.mllm import MonoQwenReranker, monoqwen_prompt
    >>> monoqwen_prompt("What is ColPali?")
    'Assert the relevance of the previous image document to the following query, answer True or False. The query is: What is ColPali?'
    >>> MonoQwenReranker(top_n=3).stage
    'monoqwen'
"""  # noqa: E501

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError
from mmrag.hf import HFComponent
from mmrag.rerankers.base import RerankContext, rescore

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from mmrag.embedders.base import Query
    from mmrag.types import Hit

__all__ = [
    "JINA_LOGIT_BIAS",
    "JINA_SCORE_TOKEN_ID",
    "MONOQWEN_PROMPT",
    "MonoQwenReranker",
    "ScoreHeadReranker",
    "jina_prompt",
    "monoqwen_prompt",
]

logger = logging.getLogger(__name__)

#: The MonoQwen2-VL model card's prompt, verbatim.
MONOQWEN_PROMPT = (
    "Assert the relevance of the previous image document to the following query, "
    "answer True or False. The query is: {query}"
)
#: jina-reranker-m0's score token and the bias subtracted before the sigmoid (``modeling.py``).
JINA_SCORE_TOKEN_ID = 100
JINA_LOGIT_BIAS = 2.65
_VISION = "<|vision_start|><|image_pad|><|vision_end|>"
#: Qwen2-VL image budgets: colpali-engine's document budget for MonoQwen (768 merged patches of
#: 28 x 28 px), jina-reranker-m0's own processor settings for the score head.
_MONOQWEN_MAX_PIXELS = 768 * 28 * 28
_JINA_MAX_PIXELS = 602112
_MIN_PIXELS = 3136


def monoqwen_prompt(query: str) -> str:
    """The MonoQwen2-VL user prompt for ``query`` (after the image in the chat turn)."""
    return MONOQWEN_PROMPT.format(query=query)


def jina_prompt(query: str | None, *, image_query: bool = False) -> str:
    """jina-reranker-m0's prompt for an image document and a text (or image) query.

    Example:
        >>> print(jina_prompt("slm markdown"))
        **Document**:
        <|vision_start|><|image_pad|><|vision_end|>
        **Query**:
        slm markdown
    """
    query_part = _VISION if image_query else (query or "")
    return f"**Document**:\n{_VISION}\n**Query**:\n{query_part}"


class _ImageReranker(HFComponent):
    """Shared batching, image budget and hit bookkeeping of the MLLM rerankers."""

    stage = ""

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 4,
        max_pixels: int | None = None,
        min_pixels: int = _MIN_PIXELS,
        top_n: int | None = None,
        trust_remote_code: bool = False,
        local_files_only: bool | None = None,
    ) -> None:
        super().__init__(
            model,
            revision=revision,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            local_files_only=local_files_only,
        )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.max_pixels = max_pixels
        self.min_pixels = min_pixels
        self.top_n = top_n
        self._batcher: Any = None

    def init_parameters(self) -> dict[str, Any]:
        return {
            **super().init_parameters(),
            "batch_size": self.batch_size,
            "max_pixels": self.max_pixels,
            "min_pixels": self.min_pixels,
            "top_n": self.top_n,
        }

    def rerank(
        self,
        query: Query,
        hits: Sequence[Hit],
        *,
        top_n: int | None = None,
        context: RerankContext | None = None,
    ) -> list[Hit]:
        """``hits`` rescored by the model (page images loaded one batch at a time), best first."""
        import torch

        from mmrag.embedders.base import Query
        from mmrag.embedders.batching import AdaptiveBatcher

        query = Query.coerce(query)
        self._check_query(query)
        if not hits:
            return []
        self.load()
        if self._batcher is None:
            self._batcher = AdaptiveBatcher(self.batch_size)

        def score_batch(batch: Sequence[Hit]) -> list[float]:
            images = [self._page_image(hit) for hit in batch]
            with torch.inference_mode():
                return self._score(query, images)

        scores = self._batcher.run(score_batch, list(hits))
        return rescore(hits, scores, stage=self.stage, top_n=top_n or self.top_n)

    def score_images(self, query: Query | str, images: Sequence[Image.Image]) -> list[float]:
        """Relevance of each image to ``query`` (no hits needed), in order."""
        import torch

        from mmrag.embedders.base import Query

        query = Query.coerce(query)
        self._check_query(query)
        self.load()
        with torch.inference_mode():
            return self._score(query, [_rgb(image) for image in images])

    def _page_image(self, hit: Hit) -> Image.Image:
        try:
            image = hit.item.load_image()
        except Exception as error:
            raise ConfigError(
                f"cannot rerank {hit.item.citation()}: its page image is not available ({error}); "
                "index with an asset store so rerankers and generators can see the pages"
            ) from error
        return _rgb(image)

    def _budget(self) -> int:
        return self.max_pixels or _MONOQWEN_MAX_PIXELS

    def _check_query(self, query: Query) -> None:
        if not query.text:
            raise ConfigError(f"the {self.stage} reranker needs a text query")

    def _processor_kwargs(self) -> dict[str, Any]:
        return {"size": {"shortest_edge": self.min_pixels, "longest_edge": self._budget()}}

    def _to_device(self, batch: Any) -> dict[str, Any]:
        return {k: v.to(self.resolved_device) if hasattr(v, "to") else v for k, v in batch.items()}

    @abstractmethod
    def _score(self, query: Query, images: Sequence[Image.Image]) -> list[float]:
        """One batch of page images → one relevance score each (under inference_mode)."""


class MonoQwenReranker(_ImageReranker):
    """Pointwise MLLM reranker: P("True") of a Qwen2-VL judging page image vs. query.

    ``model`` is the adapter (default ``lightonai/MonoQwen2-VL-v0.1``) or a merged checkpoint;
    ``base_model`` overrides the adapter config's base (Qwen2-VL-2B-Instruct); ``processor``
    defaults to the base model's, as on the model card.

    Example:
        >>> from mmrag.rerankers.mllm import MonoQwenReranker
        >>> reranker = MonoQwenReranker(batch_size=8, top_n=5)      # cheap: nothing loads yet
        >>> reranker.to_dict()["init_parameters"]["model"]
        'lightonai/MonoQwen2-VL-v0.1'
    """

    type_name = "monoqwen"
    stage = "monoqwen"

    def __init__(
        self,
        model: str = "lightonai/MonoQwen2-VL-v0.1",
        *,
        base_model: str | None = None,
        processor: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.base_model = base_model
        self.processor = processor

    def init_parameters(self) -> dict[str, Any]:
        return {
            **super().init_parameters(),
            "base_model": self.base_model,
            "processor": self.processor,
        }

    def _load(self) -> None:
        from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

        from mmrag.embedders._lora import find_adapter, load_merged_adapter

        kwargs = self._hub_kwargs()
        load = {"dtype": self._torch_dtype(), **kwargs}
        adapter = find_adapter(
            self.model, revision=self.revision, local_files_only=self.local_files_only
        )
        if adapter is None:
            model = Qwen2VLForConditionalGeneration.from_pretrained(
                self.model, **load, **self._revision(self.revision)
            )
            base = self.model
        else:
            base = self.base_model or adapter.read_config().get("base_model_name_or_path")
            if not base:
                raise ConfigError(
                    f"{self.model!r} is a LoRA adapter without a base model: pass "
                    "base_model='Qwen/Qwen2-VL-2B-Instruct'"
                )
            logger.info("loading base model %s for adapter %s", base, self.model)
            model = load_merged_adapter(
                Qwen2VLForConditionalGeneration.from_pretrained(base, **load),
                adapter,
                source=self.model,
            )
        self._model = model.to(self.resolved_device).eval()
        self._processor = AutoProcessor.from_pretrained(self.processor or base, **kwargs)
        self._processor.tokenizer.padding_side = "left"
        tokenizer = self._processor.tokenizer
        self._true_id, self._false_id = (
            tokenizer.convert_tokens_to_ids(token) for token in ("True", "False")
        )
        unknown = tokenizer.unk_token_id
        if None in (self._true_id, self._false_id) or unknown in (self._true_id, self._false_id):
            raise ConfigError(f"{base!r}: 'True' / 'False' are not single tokens of its tokenizer")

    @staticmethod
    def _revision(revision: str | None) -> dict[str, Any]:
        return {} if revision is None else {"revision": revision}

    def chat_text(self, query: str) -> str:
        """The full chat-template text of one (image, query) pair, generation prompt included."""
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image"},
                    {"type": "text", "text": monoqwen_prompt(query)},
                ],
            }
        ]
        return self._processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    def _score(self, query: Query, images: Sequence[Image.Image]) -> list[float]:
        assert query.text is not None
        text = self.chat_text(query.text)
        batch = self._processor(
            text=[text] * len(images),
            images=list(images),
            padding=True,
            return_tensors="pt",
            **self._processor_kwargs(),
        )
        logits = self._model(**self._to_device(batch)).logits[:, -1, :]  # (batch, vocab)
        pair = logits[:, [self._true_id, self._false_id]].float()  # (batch, 2)
        return pair.softmax(dim=-1)[:, 0].cpu().tolist()


class ScoreHeadReranker(_ImageReranker):
    """A VLM with a scoring head (jina-reranker-m0): ``sigmoid(head(h_last) - 2.65)``.

    Runs natively by default: the Qwen2-VL backbone through transformers and the head's weights
    (``score.0`` / ``score.2``) read from the checkpoint, so no remote code runs.
    ``trust_remote_code=True`` uses the checkpoint's own ``compute_score`` instead.

    Example:
        >>> from mmrag.rerankers.mllm import ScoreHeadReranker
        >>> ScoreHeadReranker(top_n=5).to_dict()["init_parameters"]["model"]
        'jinaai/jina-reranker-m0'
    """

    type_name = "score_head"
    stage = "score_head"

    def __init__(
        self,
        model: str = "jinaai/jina-reranker-m0",
        *,
        score_token_id: int = JINA_SCORE_TOKEN_ID,
        logit_bias: float = JINA_LOGIT_BIAS,
        max_length: int = 2048,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.score_token_id = score_token_id
        self.logit_bias = logit_bias
        self.max_length = max_length

    def init_parameters(self) -> dict[str, Any]:
        return {
            **super().init_parameters(),
            "score_token_id": self.score_token_id,
            "logit_bias": self.logit_bias,
            "max_length": self.max_length,
        }

    def _budget(self) -> int:
        return self.max_pixels or _JINA_MAX_PIXELS

    def _check_query(self, query: Query) -> None:
        if not query.text and query.image is None:
            raise ConfigError("the score_head reranker needs a text or image query")
        if query.text and query.image is not None:
            raise ConfigError("the score_head reranker takes a text or an image query, not both")

    def _load(self) -> None:
        from transformers import AutoProcessor

        kwargs = self._hub_kwargs(self.revision)
        if self.trust_remote_code:
            from transformers import AutoModel

            logger.warning("running %s with its own remote code (trust_remote_code)", self.model)
            self._model = AutoModel.from_pretrained(self.model, dtype=self._torch_dtype(), **kwargs)
            self._model = self._model.to(self.resolved_device).eval()
            return
        from transformers import Qwen2VLForConditionalGeneration
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the score.* tensors are "unexpected" to the backbone
        try:
            model, info = Qwen2VLForConditionalGeneration.from_pretrained(
                self.model, dtype=self._torch_dtype(), output_loading_info=True, **kwargs
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        unexpected = [k for k in info.get("unexpected_keys") or [] if not k.startswith("score.")]
        if unexpected:
            raise ConfigError(
                f"{self.model!r}: {len(unexpected)} tensors do not fit a Qwen2-VL backbone "
                f"(e.g. {unexpected[0]!r}); is it a jina-reranker-m0-style checkpoint?"
            )
        missing = [k for k in info.get("missing_keys") or [] if not k.startswith("lm_head")]
        if missing:
            raise ConfigError(
                f"{self.model!r}: {len(missing)} Qwen2-VL weights are missing from the "
                f"checkpoint (e.g. {missing[0]!r}); it would run with random weights"
            )
        self._backbone = model.model.to(self.resolved_device).eval()
        self._head = self._load_head(model.config).to(self.resolved_device).eval()
        self._processor = AutoProcessor.from_pretrained(self.model, **kwargs)
        self._processor.tokenizer.padding_side = "left"

    def _load_head(self, config: Any) -> torch.nn.Module:
        """The two-layer head, with the checkpoint's ``score.0.*`` / ``score.2.*`` tensors."""
        import torch

        hidden = config.get_text_config().hidden_size
        head = torch.nn.Sequential(
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )
        tensors = _read_prefixed(self.model, "score.", self._hub_kwargs(self.revision))
        aliases = {"dense.": "0.", "out_proj.": "2."}  # vLLM's names for the same layers
        state = {}
        for key, value in tensors.items():
            for alias, index in aliases.items():
                key = key.replace(alias, index) if key.startswith(alias) else key
            state[key] = value
        try:
            head.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ConfigError(
                f"{self.model!r} has no usable score head (score.0 / score.2 tensors): {error}"
            ) from error
        return head.to(self._torch_dtype())

    def _score(self, query: Query, images: Sequence[Image.Image]) -> list[float]:
        import torch

        if self.trust_remote_code:
            image_query = query.image is not None
            pairs = [[query.image if image_query else query.text, image] for image in images]
            scores = self._model.compute_score(
                pairs,
                max_length=self.max_length,
                query_type="image" if image_query else "text",
                doc_type="image",
            )
            return [float(s) for s in (scores if isinstance(scores, list) else [scores])]
        image_query = query.image is not None
        prompts = [jina_prompt(query.text, image_query=image_query)] * len(images)
        batch_images: list[Any] = (
            [[image, _rgb(query.image)] for image in images] if image_query else list(images)
        )
        batch = self._processor(
            text=prompts,
            images=batch_images,
            padding=True,
            truncation=True,
            max_length=self.max_length - 1,
            return_tensors="pt",
            **self._processor_kwargs(),
        )
        # Append the score token to every row (padding is on the left, so it is last in each).
        shape = tuple(batch["input_ids"].shape)  # (batch, tokens)
        for key, value in list(batch.items()):
            if not hasattr(value, "shape") or tuple(value.shape) != shape:
                continue
            if key == "input_ids":
                column = torch.full((shape[0], 1), self.score_token_id, dtype=value.dtype)
            elif key == "attention_mask":
                column = torch.ones((shape[0], 1), dtype=value.dtype)
            else:  # token type ids (mm_token_type_ids): the score token is text
                column = torch.zeros((shape[0], 1), dtype=value.dtype)
            batch[key] = torch.cat([value, column], dim=1)
        hidden = self._backbone(**self._to_device(batch)).last_hidden_state  # (b, tokens, h)
        logits = self._head(hidden[:, -1]).squeeze(-1).float()  # (b,)
        return torch.sigmoid(logits - self.logit_bias).cpu().tolist()


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _read_prefixed(model: str, prefix: str, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The tensors of a safetensors checkpoint whose names start with ``prefix`` (prefix cut)."""
    import json
    from pathlib import Path

    from safetensors import safe_open
    from transformers.utils import cached_file

    kwargs = {k: v for k, v in hub_kwargs.items() if k != "trust_remote_code"}
    index = cached_file(
        model, "model.safetensors.index.json", _raise_exceptions_for_missing_entries=False, **kwargs
    )
    if index is not None:
        weight_map = json.loads(Path(index).read_text(encoding="utf-8"))["weight_map"]
        files = sorted({f for name, f in weight_map.items() if name.startswith(prefix)})
    else:
        files = ["model.safetensors"]
    tensors: dict[str, Any] = {}
    for name in files:
        path = cached_file(model, name, **kwargs)
        with safe_open(path, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                if key.startswith(prefix):
                    tensors[key[len(prefix) :]] = handle.get_tensor(key)
    return tensors
