"""Exact MaxSim reranking over each hit's full multi-vector.

A pooled retrieval plan (``global@200 -> rows@50``) approximates late interaction; this reranker
reads each candidate's stored ``full`` token vectors and scores them exactly with
:func:`mmrag.scoring.maxsim` (the one MaxSim of the project), so a plan can end in Python instead
of in the engine (``rows@50`` then MaxSim), or a non-Qdrant candidate list can be scored.

Example:
    >>> from mmrag.rerankers.maxsim import MaxSimReranker
    >>> MaxSimReranker(top_n=5).to_dict()
    {'type': 'maxsim', 'init_parameters': {'vector': 'full', 'top_n': 5}}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.errors import ConfigError
from mmrag.rerankers.base import RerankContext, rescore

if TYPE_CHECKING:
    from mmrag.embedders.base import Query
    from mmrag.types import Hit

__all__ = ["MaxSimReranker"]


class MaxSimReranker:
    """Rescore hits with exact MaxSim between the query tokens and the page's stored tokens.

    Needs a multi-vector embedder's query embedding and the store (both passed by the pipeline
    in :class:`~mmrag.rerankers.base.RerankContext`).

    Example:
        >>> from mmrag.rerankers.maxsim import MaxSimReranker
        >>> reranker = MaxSimReranker()
        >>> reranker.stage
        'maxsim'
    """

    type_name = "maxsim"
    stage = "maxsim"

    def __init__(self, *, vector: str = "full", top_n: int | None = None) -> None:
        self.vector = vector
        self.top_n = top_n

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "maxsim", "init_parameters": {...}}``."""
        params = {"vector": self.vector, "top_n": self.top_n}
        return {"type": self.type_name, "init_parameters": params}

    def rerank(
        self,
        query: Query,
        hits: Sequence[Hit],
        *,
        top_n: int | None = None,
        context: RerankContext | None = None,
    ) -> list[Hit]:
        """``hits`` rescored by exact MaxSim, best first."""
        from mmrag.scoring import maxsim

        if not hits:
            return []
        context = context or RerankContext()
        embedding = context.query_embedding
        if embedding is None or embedding.kind != "multi" or context.store is None:
            raise ConfigError(
                "the maxsim reranker needs a multi-vector embedder (ColPali family) and the "
                "store the hits came from; use the monoqwen or score_head reranker with "
                "single-vector embedders"
            )
        records = context.store.retrieve([hit.id for hit in hits], with_vectors=True)
        vectors = {r.id: r.vectors.get(self.vector) for r in records}
        missing = [hit.item.citation() for hit in hits if vectors.get(hit.id) is None]
        if missing:
            raise ConfigError(
                f"no {self.vector!r} vectors stored for {', '.join(missing)}; the collection's "
                f"vectors are {', '.join(context.store.schema.vector_names)}"
            )
        documents = [np.asarray(vectors[hit.id], dtype=np.float32) for hit in hits]  # (n_i, dim)
        tokens = embedding.multi  # every token the query has (an image query's too)
        query_tokens = np.asarray(tokens, dtype=np.float32)  # (q, dim)
        scores = maxsim([query_tokens], documents)[0]  # (n_hits,)
        return rescore(hits, scores.tolist(), stage=self.stage, top_n=top_n or self.top_n)
