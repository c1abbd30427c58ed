"""The reranker contract: ``rerank(query, hits, top_n=, context=) -> hits``, best first.

A reranker gives every hit a new score, records it in ``hit.stage_scores`` under the reranker's
:attr:`Reranker.stage` name (next to the retrieval stages' scores), sorts by it and keeps the
best ``top_n``. Hits are never mutated; new :class:`~mmrag.types.Hit` objects are returned.

Example:
    >>> from mmrag.rerankers.base import rescore
    >>> from mmrag.types import Hit, Item
    >>> item = Item(source="a.pdf", source_sha256="ab" * 32, modality="pdf_page", page=1)
    >>> hits = [Hit(id="x", score=0.9, item=item), Hit(id="y", score=0.8, item=item)]
    >>> [(h.id, h.stage_scores) for h in rescore(hits, [0.1, 0.7], stage="judge")]
    [('y', {'judge': 0.7}), ('x', {'judge': 0.1})]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mmrag.types import Hit

if TYPE_CHECKING:
    from mmrag.embedders.base import Query
    from mmrag.store.contract import VectorStore
    from mmrag.types import Embedding

__all__ = ["RerankContext", "Reranker", "rescore"]


@dataclass(frozen=True)
class RerankContext:
    """What the pipeline already has that a reranker may use: the query's embedding and the
    store the hits came from (MaxSim reads the pages' full multi-vectors from it)."""

    query_embedding: Embedding | None = None
    store: VectorStore | None = None


@runtime_checkable
class Reranker(Protocol):
    """Reorders hits for a query. ``stage`` names the score in ``hit.stage_scores``."""

    stage: str
    top_n: int | None

    def rerank(
        self,
        query: Query,
        hits: Sequence[Hit],
        *,
        top_n: int | None = None,
        context: RerankContext | None = None,
    ) -> list[Hit]:
        """``hits`` rescored, best first, at most ``top_n`` (default: the reranker's)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., "init_parameters": {...}}``."""
        ...


def rescore(
    hits: Sequence[Hit], scores: Sequence[float], *, stage: str, top_n: int | None = None
) -> list[Hit]:
    """New hits carrying ``scores`` (as ``score`` and ``stage_scores[stage]``), best first.

    Ties keep the incoming order (a stable sort), so equal scores never shuffle the retrieval
    ranking.
    """
    if len(scores) != len(hits):
        raise ValueError(f"{len(scores)} scores for {len(hits)} hits")
    rescored = [
        dataclasses.replace(
            hit, score=float(score), stage_scores={**hit.stage_scores, stage: float(score)}
        )
        for hit, score in zip(hits, scores, strict=True)
    ]
    rescored.sort(key=lambda hit: -hit.score)
    return rescored if top_n is None else rescored[:top_n]
