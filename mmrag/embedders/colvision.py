"""The shared machinery of the ColPali-family embedders (:mod:`mmrag.embedders.colpali`).

:class:`ColVisionEmbedder` runs a checkpoint's own transformers retrieval model and processor
(``model(**inputs).embeddings``, every token vector L2-normalised by the model), and stores a
document as the contract of :class:`~mmrag.types.Embedding` asks: ``multi`` holds the document
tokens that are stored and scored, ``mask`` marks the visual tokens among them (``input_ids ==
processor.image_token_id``) and ``grid`` is the patch grid they lie on, so that
``embedding.visual()`` is exactly the page's patch vectors in row-major order (what pooling and
region citations use). Where the visual tokens lie is each family's recipe
(:meth:`ColVisionEmbedder._visual_layout`).

**Document tokens** (``document_tokens``, part of the embedder's :attr:`id`):

* ``"all"`` (default, the published recipe): ``multi`` holds every real (unpadded) token of the
  document prompt, as the model cards and colpali-engine score documents: the visual tokens
  first, in grid order, then the prompt's other tokens (``<bos>Describe the image.\\n`` …) in
  prompt order. MaxSim does not depend on the order of a document's vectors, so scores equal the
  processor's ``score_retrieval`` over the model's output; putting the patches first lets region
  citations read the first ``rows x cols`` stored vectors as the grid.
* ``"visual"``: ``multi`` holds the visual tokens only, in grid order (token hygiene; the layout of
  indexes built before this setting existed, whose embedder id it keeps).

Queries are text or an image, not both: ColPali-family models were trained on text queries
against page images; an image query is embedded exactly like a document page (same prompt, mask
and grid). MaxSim scoring lives in :mod:`mmrag.scoring`.

Example:
    >>> from mmrag.embedders.colpali import ColQwen2Embedder
    >>> from mmrag.embedders.colvision import ColVisionEmbedder
    >>> issubclass(ColQwen2Embedder, ColVisionEmbedder), ColQwen2Embedder.kind
    (True, 'multi')
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from mmrag.embedders.base import ModelEmbedder, Query, QueryLike
from mmrag.errors import ConfigError
from mmrag.types import Embedding

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DOCUMENT_TOKENS", "ColVisionEmbedder", "DocumentTokens"]

logger = logging.getLogger(__name__)

#: Which tokens of a document are stored and scored: every real token of the document prompt
#: (the published recipe), or its visual tokens only.
DocumentTokens = Literal["all", "visual"]
DOCUMENT_TOKENS: tuple[str, ...] = ("all", "visual")


class ColVisionEmbedder(ModelEmbedder):
    """Shared machinery of the processor-built ColPali-family embedders.

    Subclasses name their family spec (whose ``model_types`` the checkpoint's config.json must
    declare) and transformers model class, and say how the visual tokens of one document lie on a
    grid (:meth:`_visual_layout`). Loading reads every special id from the checkpoint's processor /
    config; nothing is hard-coded.

    ``document_tokens`` picks the document tokens that are stored and scored: ``"all"`` (the
    published recipe: every real token, prompt tokens included) or ``"visual"`` (the page's
    patches only); see the module docstring. ``"all"`` enters :attr:`id`, so an index built one
    way is never read the other way.

    Example:
        >>> from mmrag.embedders.colpali import ColPaliEmbedder
        >>> ColPaliEmbedder("vidore/colpali-v1.3-hf").to_dict()["type"]
        'colpali'
        >>> ColPaliEmbedder("vidore/colpali-v1.3-hf", document_tokens="visual").id_settings()
        {}
    """

    #: transformers class that loads the checkpoint (never AutoModel: see model-recipes.md).
    model_class: ClassVar[str] = ""
    #: Published vector dimension, used for :attr:`dim` before the model is loaded.
    default_dim: ClassVar[int] = 128

    _model: Any
    _processor: Any
    _image_token_id: int

    def __init__(
        self, model: str, *, document_tokens: DocumentTokens = "all", **kwargs: Any
    ) -> None:
        super().__init__(model, **kwargs)
        if document_tokens not in DOCUMENT_TOKENS:
            raise ConfigError(
                f"document_tokens must be one of {', '.join(map(repr, DOCUMENT_TOKENS))}, got "
                f"{document_tokens!r}: 'all' stores every token of the document prompt (the "
                "published recipe), 'visual' the page's patch tokens only"
            )
        self.document_tokens: DocumentTokens = document_tokens

    # -- identity ---------------------------------------------------------------------------------

    def init_parameters(self) -> dict[str, Any]:
        """The constructor arguments, including ``document_tokens``."""
        return {**super().init_parameters(), "document_tokens": self.document_tokens}

    def id_settings(self) -> dict[str, Any]:
        """Storing the prompt tokens changes what is stored and scored (``"visual"`` keeps the id
        of indexes built before the setting existed, which stored visual tokens only)."""
        return {"document_tokens": "all"} if self.document_tokens == "all" else {}

    @property
    def dim(self) -> int:
        """The dimension of each token vector (128 for every published checkpoint).

        Known without loading the weights: from the loaded model, else the catalogue, else a
        local checkpoint's ``config.json``, else the family's published dimension.
        """
        if self._loaded:
            return int(self._model.config.embedding_dim)
        from mmrag.embedders.catalogue import SUPPORTED_MODELS

        for entry in SUPPORTED_MODELS:
            if entry.name == self.model:
                return entry.dim
        config = Path(self.model) / "config.json"
        if config.is_file():
            return int(json.loads(config.read_text(encoding="utf-8")).get("embedding_dim", 128))
        return self.default_dim

    # -- loading ----------------------------------------------------------------------------------

    def _load(self) -> None:
        import transformers
        from transformers import AutoConfig, AutoProcessor

        kwargs = self._from_pretrained_kwargs()
        config = AutoConfig.from_pretrained(self.model, **kwargs)
        found = getattr(config, "model_type", None)
        spec = self.spec
        if spec is None or found not in spec.model_types:
            hint = self._wrong_checkpoint_hint(found)
            expected = spec.model_types_text() if spec is not None else "none"
            raise ConfigError(
                f"{self.model!r} is a {found!r} checkpoint, but the {self.family!r} embedder needs "
                f"model_type {expected} ({self.model_class}).{hint}"
            )
        model_cls = getattr(transformers, self.model_class)
        model, info = model_cls.from_pretrained(
            self.model,
            config=config,
            dtype=self._torch_dtype(),
            output_loading_info=True,
            **kwargs,
        )
        missing = sorted(info.get("missing_keys") or [])
        if missing:
            raise ConfigError(
                f"{self.model!r}: {len(missing)} weights of {self.model_class} are missing from "
                f"the checkpoint (e.g. {missing[0]!r}); it would run with random weights. Use a "
                "transformers-native checkpoint of this family."
            )
        self._model = model.to(self.resolved_device).eval()
        self._processor = AutoProcessor.from_pretrained(self.model, **kwargs)
        self._image_token_id = int(self._processor.image_token_id)
        self._configure_processor(self._processor)
        logger.info(
            "loaded %s (%s) on %s as %s",
            self.model,
            self.model_class,
            self.resolved_device,
            self.resolved_dtype,
        )

    def _wrong_checkpoint_hint(self, found: str | None) -> str:
        return f" Load it with family={found!r} if mmrag supports it." if found else ""

    def _configure_processor(self, processor: Any) -> None:
        """Apply family settings (e.g. an image budget) to the loaded processor."""

    # -- model inputs (public for inspection and tests) ---------------------------------------

    def document_inputs(self, images: Sequence[Image.Image]) -> Any:
        """The processor's model inputs for document images (a ``BatchFeature`` on the CPU).

        ``processor.tokenizer.batch_decode(inputs["input_ids"])`` shows the exact prompts.
        """
        self.load()
        return self._processor.process_images(list(images))

    def query_inputs(self, texts: Sequence[str]) -> Any:
        """The processor's model inputs for text queries (a ``BatchFeature`` on the CPU)."""
        self.load()
        return self._processor.process_queries(list(texts))

    # -- embedding --------------------------------------------------------------------------------

    def _forward(self, inputs: Any) -> np.ndarray:
        """Run the model on processor outputs; ``(batch, tokens, dim)`` float32 on the CPU."""
        embeddings = self._model(**inputs.to(self.resolved_device)).embeddings  # (b, n, d)
        return embeddings.float().cpu().numpy()  # one device→host copy per batch

    def _embed_images(self, images: Sequence[Image.Image]) -> list[Embedding]:
        inputs = self.document_inputs(images)
        ids = inputs["input_ids"].numpy()  # (b, n)
        keep = inputs["attention_mask"].numpy().astype(bool)  # (b, n): real (unpadded) tokens
        vectors = self._forward(inputs)  # (b, n, d)
        out = []
        for i in range(len(images)):
            real = vectors[i][keep[i]]  # (t, d): every real token, in prompt order
            tokens = ids[i][keep[i]]  # (t,)
            positions, grid = self._visual_layout(tokens, inputs, i)  # (v,), in grid order
            order = positions
            if self.document_tokens == "all":
                prompt = np.ones(tokens.shape[0], dtype=bool)
                prompt[positions] = False
                order = np.concatenate([positions, np.flatnonzero(prompt)])  # patches first
            multi = real[order]  # (v or t, d), a copy that owns its memory
            mask = np.zeros(multi.shape[0], dtype=bool)
            mask[: positions.size] = True
            out.append(Embedding(multi=multi, mask=mask, grid=grid))
        return out

    def _embed_texts(self, texts: Sequence[str]) -> list[Embedding]:
        inputs = self.query_inputs(texts)
        keep = inputs["attention_mask"].numpy().astype(bool)  # (b, n)
        vectors = self._forward(inputs)  # (b, n, d)
        return [Embedding(multi=vectors[i][keep[i]]) for i in range(len(texts))]

    def _embed_queries(self, queries: Sequence[Query]) -> list[Embedding]:
        results: list[Embedding | None] = [None] * len(queries)
        text_at = [i for i, q in enumerate(queries) if q.image is None]
        image_at = [i for i, q in enumerate(queries) if q.image is not None]
        if text_at:
            texts = [queries[i].text or "" for i in text_at]
            for i, embedding in zip(text_at, self._embed_texts(texts), strict=True):
                results[i] = embedding
        if image_at:
            images = [queries[i].image for i in image_at]
            for i, embedding in zip(image_at, self._embed_images(images), strict=True):
                results[i] = embedding
        return [e for e in results if e is not None]

    def embed_queries(self, queries: Sequence[QueryLike]) -> list[Embedding]:
        """Embed text queries (or image queries, embedded as pages), in order.

        A query with both text and an image is an error: these models were trained on text
        queries against page images and have no joint text+image query prompt.
        """
        coerced = [Query.coerce(q) for q in queries]
        for index, query in enumerate(coerced):
            if query.text is not None and query.image is not None:
                raise ValueError(
                    f"query {index}: {self.family} embeds a text query or an image query, not "
                    "both; pass the text and the image as two queries (and fuse their results), "
                    "or use a single-vector embedder that takes interleaved queries (vlm2vec, e5v)"
                )
        return list(self._run(self._embed_queries, coerced))

    @abstractmethod
    def _visual_layout(
        self, tokens: np.ndarray, inputs: Any, index: int
    ) -> tuple[np.ndarray, tuple[int, int] | None]:
        """Positions (in ``tokens``) of the stored visual tokens, in grid order, and the grid.

        ``tokens`` are the real (unpadded) ids of document ``index`` of the batch ``inputs``.
        """

    def _image_positions(self, tokens: np.ndarray) -> np.ndarray:
        positions = np.flatnonzero(tokens == self._image_token_id)
        if positions.size == 0:
            raise RuntimeError(
                f"{self.model}: the document prompt has no image tokens (id {self._image_token_id})"
            )
        return positions
