"""The pipeline: one object that indexes sources and searches them, as the config describes.

The Python API, the ``mmrag`` CLI and the HTTP server all go through this class, so they share
one code path. Components are built lazily: constructing a Pipeline loads no model and opens no
store.

Example:
    >>> from mmrag.pipeline.pipeline import Pipeline                          # doctest: +SKIP
    >>> pipe = Pipeline.from_config("mmrag.toml")                             # doctest: +SKIP
    >>> pipe.index(["docs/", "talks/*.mp4"]).summary()                        # doctest: +SKIP
    '42 indexed, 0 skipped (already present), 0 failed'
    >>> for hit in pipe.search("revenue growth in 2024", k=3):               # doctest: +SKIP
    ...     print(f"{hit.score:.2f}", hit.citation())
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.config import PipelineConfig
from mmrag.types import Hit, IndexReport

if TYPE_CHECKING:
    from mmrag.connectors.assets import AssetStore
    from mmrag.connectors.store import CollectionSchema, SearchFilter, VectorStore
    from mmrag.embedders.base import ModelEmbedder, QueryLike
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.evaluate import EvalReport
    from mmrag.pipeline.plan import Plan

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)


class Pipeline:
    """Index PDFs, images and videos, and search them with a multi-stage retrieval plan.

    Example:
        >>> from mmrag.config import PipelineConfig
        >>> from mmrag.pipeline.pipeline import Pipeline
        >>> pipe = Pipeline(PipelineConfig.from_dict({"store": {"path": "/tmp/idx"}}))
        >>> pipe.config.store.path       # nothing is loaded or opened yet
        '/tmp/idx'
    """

    def __init__(
        self,
        config: PipelineConfig | None = None,
        *,
        embedder: ModelEmbedder | None = None,
    ) -> None:
        self.config = config if config is not None else PipelineConfig()
        self._embedder = embedder
        self._store: VectorStore | None = None
        self._assets: AssetStore | None = None
        self._pooler: Pooler | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig | str | os.PathLike[str]) -> Pipeline:
        """A pipeline from a config object or a TOML / JSON file."""
        if not isinstance(config, PipelineConfig):
            config = PipelineConfig.load(Path(config))
        return cls(config)

    # -- components (lazy) -----------------------------------------------------------------------

    @property
    def embedder(self) -> ModelEmbedder:
        """The configured embedder (constructed on first use; its model loads on first embed)."""
        if self._embedder is None:
            self._embedder = self.config.embedder.build()
        return self._embedder

    @property
    def pooler(self) -> Pooler | None:
        """The pooler of multi-vector embedders (``None`` for single-vector ones)."""
        if self._pooler is None and self.embedder.kind == "multi":
            from mmrag.embedders.pooling import Pooler

            self._pooler = Pooler(self.config.pooling)
        return self._pooler

    def schema(self) -> CollectionSchema:
        """The collection schema this pipeline's embedder and pooling settings need."""
        from mmrag.connectors.store import CollectionSchema

        pooling = self.config.pooling if self.embedder.kind == "multi" else None
        return CollectionSchema.for_embedder_object(
            self.embedder, pooling, text=self.config.retrieval.hybrid
        )

    @property
    def store(self) -> VectorStore:
        """The vector store (opened, or created with :meth:`schema`, on first use)."""
        if self._store is None:
            from mmrag.connectors import open_store

            self._store = open_store(self.config.store, self.schema())
        return self._store

    @property
    def assets(self) -> AssetStore:
        """The page-image asset store."""
        if self._assets is None:
            from mmrag.connectors import open_assets

            self._assets = open_assets(self.config.store)
        return self._assets

    def plan(self, plan: str | None = None) -> Plan:
        """The retrieval plan in use: ``plan``, else the config's; a single-vector embedder
        with the (multi-vector) default plan searches ``dense`` instead."""
        from mmrag.pipeline.plan import parse_plan
        from mmrag.pipeline.retrieval import hybrid_plan

        retrieval = self.config.retrieval
        if plan is None:
            plan = retrieval.plan
            if self.embedder.kind == "single" and "plan" not in retrieval.model_fields_set:
                plan = f"dense@{max(retrieval.top_k, 10)}"
        parsed = parse_plan(plan)
        return hybrid_plan(parsed) if retrieval.hybrid and "text" not in parsed.vectors else parsed

    # -- jobs ------------------------------------------------------------------------------------

    def index(
        self,
        sources: Iterable[str | os.PathLike[str]],
        *,
        force: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Index files, directories and globs; returns what was indexed, skipped and failed."""
        from mmrag.pipeline.indexing import index_items
        from mmrag.pipeline.ingest import iter_items

        report = IndexReport()
        seen: set[str] = set()

        def counted() -> Iterable[Any]:
            for item in iter_items(list(sources), self.config.ingest, report=report):
                seen.add(item.source)
                yield item

        index_items(
            counted(),
            embedder=self.embedder,
            store=self.store,
            pooler=self.pooler,
            assets=self.assets,
            report=report,
            force=force,
            on_progress=on_progress,
        )
        report.sources = len(seen | {f.source for f in report.failed})
        return report

    def search(
        self,
        query: QueryLike,
        *,
        k: int | None = None,
        plan: str | None = None,
        filter: SearchFilter | None = None,
    ) -> list[Hit]:
        """The best ``k`` pages / frames for a query (text, an image, or both)."""
        from mmrag.embedders.base import Query
        from mmrag.pipeline.retrieval import Retriever

        coerced = Query.coerce(query)
        (embedding,) = self.embedder.embed_queries([coerced])
        retriever = Retriever(
            self.store,
            self.plan(plan),
            top_k=k or self.config.retrieval.top_k,
            pooler=self.pooler,
            assets=self.assets,
            hnsw_ef=self.config.retrieval.hnsw_ef,
        )
        return retriever.search(embedding, text=coerced.text, filter=filter)

    def evaluate(
        self,
        dataset: str | os.PathLike[str],
        *,
        plans: Iterable[str] | None = None,
        ks: Iterable[int] = (5, 10),
        max_queries: int | None = None,
    ) -> EvalReport:
        """Index a BEIR-layout dataset into its own collection and compare retrieval plans.

        Default plans: the configured one and, for multi-vector embedders, exact MaxSim over
        ``full`` (so the table shows what pooling costs and saves).
        """
        from mmrag.connectors import open_store
        from mmrag.pipeline.evaluate import evaluate, load_beir

        data = load_beir(Path(dataset))
        ks = tuple(ks)
        if plans is None:
            plans = [str(self.plan())]
            if self.embedder.kind == "multi":
                plans.append(f"full@{max(*ks, 10)}")
        name = re.sub(r"[^A-Za-z0-9_-]", "_", Path(dataset).resolve().name)[:64]
        store_config = self.config.store.model_copy(
            update={"collection": f"{self.config.store.collection}-eval-{name}"}
        )
        store = open_store(store_config, self.schema())
        try:
            return evaluate(
                data,
                self.embedder,
                store,
                list(plans),
                ks,
                pooler=self.pooler,
                max_queries=max_queries,
            )
        finally:
            store.close()

    def delete(self, source: str) -> int:
        """Remove every item of ``source`` and its page images; returns how many were removed."""
        from mmrag.connectors.store import SearchFilter

        ids = [r.id for r in self.store.iter_records(SearchFilter.build(source=source))]
        removed = self.store.delete_source(source)
        self.assets.delete(ids)
        return removed

    def sources(self) -> list[str]:
        """The sources in the index."""
        return self.store.sources()

    def close(self) -> None:
        """Close the store (releases the embedded folder's lock)."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Pipeline(embedder={self.config.embedder.type!r}, "
            f"store={self.config.store.backend!r}, plan={self.config.retrieval.plan!r})"
        )
