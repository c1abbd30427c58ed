"""A text rerank stage: a cross-encoder scores (query, page text), fused with the visual score.

Visual retrieval finds the pages; a text cross-encoder (``BAAI/bge-reranker-v2-m3``, XLM-RoBERTa,
multilingual; or ``cross-encoder/ms-marco-MiniLM-L-6-v2``, BERT, English and fast) reads each
candidate page's text (``hit.item.text``: the PDF text layer, or OCR) next to the query and gives
a relevance score. ViDoRe v3 reports a large gain from exactly this step after visual retrieval.

The text score (``sigmoid`` of a one-logit head, the positive class' probability of a two-label
one) is recorded in ``hit.stage_scores["text_rerank"]``; the hit's ``score`` is then fused with
the incoming (visual) score, ``fusion``:

- ``"replace"``: the text score alone;
- ``"weighted"`` (default): ``weight * text + (1 - weight) * visual``, the visual scores min-max
  normalised over the candidates (text scores already lie in 0..1);
- ``"rrf"``: reciprocal-rank fusion, ``weight / (60 + text rank) + (1 - weight) / (60 + visual
  rank)``.

A page **without text** (an image, a frame, a scanned page with no OCR) has nothing to read: it
is scored by its visual score alone, as if its text score equalled it (its normalised visual
score, or its visual rank for RRF). Among such pages the visual order is kept. Its
``stage_scores`` has no ``text_rerank`` entry.

Put it in the plan as a ``text_rerank@K`` stage (configured by ``[text_reranker]``; it can
then run beside an MLLM ``[reranker]``: ``… -> full@20 -> text_rerank@10 -> rerank@5``), or
configure it as the pipeline's reranker; the plan's last stage decides how many candidates it
reads (e.g. ``… -> full@20``) and ``retrieval.top_k`` how many it keeps::

    [reranker]
    type = "text"
    [reranker.init_parameters]
    model = "BAAI/bge-reranker-v2-m3"
    fusion = "weighted"              # or "replace", "rrf"
    weight = 0.5

Example:
    >>> from mmrag.rerankers.text import TextReranker, fuse
    >>> TextReranker(fusion="replace").stage
    'text_rerank'
    >>> fuse([0.9, None], [1.0, 0.0], fusion="weighted", weight=0.5)
    [0.95, 0.0]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

from mmrag.errors import ConfigError
from mmrag.hf import HFComponent

if TYPE_CHECKING:
    from mmrag.embedders.base import Query
    from mmrag.rerankers.base import RerankContext
    from mmrag.types import Hit

__all__ = ["DEFAULT_TEXT_RERANKER", "FUSIONS", "Fusion", "TextReranker", "fuse"]

#: The default cross-encoder: multilingual, 568M parameters (XLM-RoBERTa large).
DEFAULT_TEXT_RERANKER = "BAAI/bge-reranker-v2-m3"

Fusion = Literal["replace", "weighted", "rrf"]
FUSIONS: tuple[str, ...] = get_args(Fusion)

#: The RRF constant (as in the store's fused stages).
RRF_K = 60


def _ranks(scores: Sequence[float]) -> list[int]:
    """1-based rank of each score, best first; ties keep the incoming order."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    ranks = [0] * len(scores)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank
    return ranks


def fuse(
    text: Sequence[float | None],
    visual: Sequence[float],
    *,
    fusion: Fusion = "weighted",
    weight: float = 0.5,
) -> list[float]:
    """Fused scores of candidates with text scores ``text`` (``None``: no page text) and
    incoming scores ``visual`` (see the module docstring)."""
    if len(text) != len(visual):
        raise ValueError(f"{len(text)} text scores for {len(visual)} candidates")
    if fusion == "rrf":
        visual_ranks = _ranks(visual)
        present = [i for i, score in enumerate(text) if score is not None]
        text_ranks = dict(zip(present, _ranks([text[i] for i in present]), strict=True))  # type: ignore[misc]
        fused = []
        for i, rank in enumerate(visual_ranks):
            text_rank = text_ranks.get(i, rank)
            fused.append(weight / (RRF_K + text_rank) + (1 - weight) / (RRF_K + rank))
        return fused
    low, high = (min(visual), max(visual)) if visual else (0.0, 0.0)
    span = high - low
    normalised = [(v - low) / span if span > 0 else 1.0 for v in visual]
    if fusion == "replace":
        return [n if t is None else t for t, n in zip(text, normalised, strict=True)]
    return [
        n if t is None else weight * t + (1 - weight) * n
        for t, n in zip(text, normalised, strict=True)
    ]


class TextReranker(HFComponent):
    """Cross-encoder reranker over the page text, fused with the visual score.

    ``model`` is a Hugging Face id or local folder of a sequence-classification checkpoint
    (``AutoModelForSequenceClassification`` and its tokenizer); ``max_length`` truncates the
    page text (the query is kept); ``fusion`` / ``weight`` combine the text score with the
    incoming one; ``top_n`` keeps the best (default: the caller's ``k``).

    Example:
        >>> from mmrag.rerankers.text import TextReranker
        >>> reranker = TextReranker("cross-encoder/ms-marco-MiniLM-L-6-v2", weight=0.7)
        >>> reranker.to_dict()["init_parameters"]["fusion"]     # nothing loads yet
        'weighted'
    """

    type_name = "text"
    stage = "text_rerank"

    def __init__(
        self,
        model: str = DEFAULT_TEXT_RERANKER,
        *,
        fusion: Fusion = "weighted",
        weight: float = 0.5,
        max_length: int = 512,
        batch_size: int = 16,
        top_n: int | None = None,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
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
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        if not 0.0 <= weight <= 1.0:
            raise ConfigError(f"weight must be within 0..1, got {weight}")
        if batch_size < 1 or max_length < 8:
            raise ConfigError("batch_size must be >= 1 and max_length >= 8")
        self.fusion: Fusion = fusion
        self.weight = weight
        self.max_length = max_length
        self.batch_size = batch_size
        self.top_n = top_n

    def init_parameters(self) -> dict[str, Any]:
        return {
            **super().init_parameters(),
            "fusion": self.fusion,
            "weight": self.weight,
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "top_n": self.top_n,
        }

    def _load(self) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        kwargs = self._hub_kwargs(self.revision)
        self._tokenizer = AutoTokenizer.from_pretrained(self.model, **kwargs)
        model = AutoModelForSequenceClassification.from_pretrained(
            self.model, dtype=self._torch_dtype(), **kwargs
        )
        labels = model.config.num_labels
        if labels not in (1, 2):
            raise ConfigError(
                f"{self.model!r} has {labels} labels; a cross-encoder reranker has 1 (a relevance "
                "logit) or 2 (not relevant / relevant)"
            )
        self._model = model.to(self.resolved_device).eval()

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Relevance of each text to ``query`` in 0..1, in order (batched)."""
        import torch

        if not texts:
            return []
        self.load()
        scores: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self._tokenizer(
                [query] * len(texts[start : start + self.batch_size]),
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation="only_second",
                max_length=min(self.max_length, self._tokenizer.model_max_length),
                return_tensors="pt",
            ).to(self.resolved_device)
            with torch.inference_mode():
                logits = self._model(**batch).logits.float()
            if logits.shape[-1] == 1:
                scores.extend(logits[:, 0].sigmoid().cpu().tolist())
            else:
                scores.extend(logits.softmax(dim=-1)[:, 1].cpu().tolist())
        return scores

    def rerank(
        self,
        query: Query,
        hits: Sequence[Hit],
        *,
        top_n: int | None = None,
        context: RerankContext | None = None,
    ) -> list[Hit]:
        """``hits`` rescored by text relevance fused with their scores, best first."""
        from mmrag.embedders.base import Query

        query = Query.coerce(query)
        if not query.text:
            raise ConfigError(f"the {self.stage} reranker needs a text query")
        if not hits:
            return []
        with_text = [i for i, hit in enumerate(hits) if (hit.item.text or "").strip()]
        text_scores: list[float | None] = [None] * len(hits)
        scored = self.score(query.text, [hits[i].item.text or "" for i in with_text])
        for i, value in zip(with_text, scored, strict=True):
            text_scores[i] = value
        fused = fuse(
            text_scores, [hit.score for hit in hits], fusion=self.fusion, weight=self.weight
        )
        rescored = []
        for hit, text_score, score in zip(hits, text_scores, fused, strict=True):
            stages = dict(hit.stage_scores)
            if text_score is not None:
                stages[self.stage] = float(text_score)
            rescored.append(dataclasses.replace(hit, score=float(score), stage_scores=stages))
        rescored.sort(key=lambda hit: -hit.score)  # stable: ties keep the retrieval order
        keep = top_n or self.top_n
        return rescored if keep is None else rescored[:keep]
