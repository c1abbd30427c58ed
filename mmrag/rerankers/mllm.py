"""Multimodal LLM rerankers: the machinery shared by the rerankers that look at page images.

A vision-language model judges each page image against the query. Two published kinds, both on a
Qwen2-VL backbone, each in its own module:

- **Pointwise True/False** (:class:`~mmrag.rerankers.monoqwen.MonoQwenReranker`,
  ``lightonai/MonoQwen2-VL-v0.1``): the probability of "True" after a relevance prompt.
- **Score head** (:class:`~mmrag.rerankers.score_head.ScoreHeadReranker`,
  ``jinaai/jina-reranker-m0``): a two-layer MLP on the backbone's last hidden state.

Both are batched (left padding, so the last position is every row's last real token), size
pages as the checkpoint's processor does (its own ``min_pixels`` / ``max_pixels``, as on the model
card) unless ``max_pixels`` caps them (a speed setting: fewer image tokens, less detail; on a text
page it can change the judgement) and keep the best ``top_n``: that shared part is
:class:`ImageReranker`, here.

Example:
    >>> from mmrag.rerankers.mllm import ImageReranker
    >>> from mmrag.rerankers.monoqwen import MonoQwenReranker
    >>> issubclass(MonoQwenReranker, ImageReranker)
    True
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mmrag.errors import ConfigError
from mmrag.hf import HFComponent
from mmrag.rerankers.base import RerankContext, rescore

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.embedders.base import Query
    from mmrag.types import Hit

__all__ = ["MIN_PIXELS", "ImageReranker"]

#: The smallest page a Qwen2-VL processor is asked to keep (4 merged 28 x 28 patches).
MIN_PIXELS = 3136


class ImageReranker(HFComponent):
    """Shared batching, image budget and hit bookkeeping of the MLLM rerankers.

    Subclasses implement ``_load()`` (setting ``self._processor``) and :meth:`_score`, name
    their ``stage`` and may set ``default_max_pixels`` (a budget the model card itself sets on
    top of the processor's); a subclass that takes image queries overrides :meth:`_check_query`.

    ``max_pixels`` / ``min_pixels`` left at ``None`` keep the processor's own settings (read from
    the checkpoint); ``max_pixels`` caps the pixels per page (faster, fewer image tokens).
    """

    stage = ""
    #: The image budget (pixels per page) when ``max_pixels`` is not given; ``None``: the
    #: processor's own setting.
    default_max_pixels: ClassVar[int | None] = None

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 4,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
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
            return self._score(query, [self._rgb(image) for image in images])

    def _page_image(self, hit: Hit) -> Image.Image:
        try:
            image = hit.item.load_image()
        except Exception as error:
            raise ConfigError(
                f"cannot rerank {hit.item.citation()}: its page image is not available ({error}); "
                "index with an asset store so rerankers and generators can see the pages"
            ) from error
        return self._rgb(image)

    def _budget(self) -> int | None:
        return self.max_pixels or self.default_max_pixels

    def _check_query(self, query: Query) -> None:
        if not query.text:
            raise ConfigError(f"the {self.stage} reranker needs a text query")

    def _processor_kwargs(self) -> dict[str, Any]:
        """The processor's ``size`` override: nothing when neither budget is set (the
        processor's own settings apply), else its own size with the set bounds replaced."""
        budget = self._budget()
        if budget is None and self.min_pixels is None:
            return {}
        own = dict(getattr(self._processor.image_processor, "size", None) or {})
        longest = budget or own.get("longest_edge") or own.get("max_pixels")
        shortest = self.min_pixels or own.get("shortest_edge") or own.get("min_pixels")
        shortest = min(shortest or MIN_PIXELS, longest) if longest else shortest
        return {"size": {"shortest_edge": shortest, "longest_edge": longest}}

    def _to_device(self, batch: Any) -> dict[str, Any]:
        return {k: v.to(self.resolved_device) if hasattr(v, "to") else v for k, v in batch.items()}

    @staticmethod
    def _rgb(image: Image.Image) -> Image.Image:
        return image if image.mode == "RGB" else image.convert("RGB")

    @abstractmethod
    def _score(self, query: Query, images: Sequence[Image.Image]) -> list[float]:
        """One batch of page images → one relevance score each (under inference_mode)."""
