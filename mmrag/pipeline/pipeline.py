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
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mmrag.config import PipelineConfig, RerankerSpec
from mmrag.types import Answer, Hit, IndexReport, canonical_source

if TYPE_CHECKING:
    from mmrag.embedders.base import ModelEmbedder, QueryLike
    from mmrag.embedders.pooling import Pooler
    from mmrag.generators.base import Generator
    from mmrag.pipeline.evaluate import BeirDataset, EvalReport
    from mmrag.pipeline.indexing import IndexProgress, MetadataArg
    from mmrag.rerankers.base import Reranker
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore
    from mmrag.store.plan import Plan
    from mmrag.store.records import SearchFilter
    from mmrag.store.schema import CollectionSchema

__all__ = ["Pipeline"]

T = TypeVar("T")

logger = logging.getLogger(__name__)


class Pipeline:
    """Index PDFs, images and videos, and search them with a multi-stage retrieval plan.

    Example:
        >>> from mmrag.config import PipelineConfig, RerankerSpec
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
        reranker: Reranker | None = None,
        generator: Generator | None = None,
        text_reranker: Reranker | None = None,
    ) -> None:
        self.config = config if config is not None else PipelineConfig()
        self._embedder, self._text_reranker = embedder, text_reranker
        self._reranker = reranker
        self._generator = generator
        self._store: VectorStore | None = None
        self._assets: AssetStore | None = None
        self._pooler: Pooler | None = None

    @classmethod
    def from_config(cls, config: PipelineConfig | str | os.PathLike[str]) -> Pipeline:
        """A pipeline from a config object or a TOML / JSON file."""
        if not isinstance(config, PipelineConfig):
            config = PipelineConfig.load(Path(config))
        return cls(config)

    @classmethod
    def from_pretrained(
        cls,
        model: str,
        *,
        index: str | os.PathLike[str] = "mmrag_index",
        collection: str | None = None,
        device: str = "auto",
        **config_overrides: Any,
    ) -> Pipeline:
        """A pipeline for one embedder ``model`` (its family read from the checkpoint) indexing
        into the folder ``index``; see :func:`mmrag.pipeline.startup.config_for_model`.

        Example:
            >>> Pipeline.from_pretrained("vidore/colqwen2-v1.0-hf", index="my_i").config.store.path
            'my_i'
        """
        from mmrag.pipeline.startup import config_for_model

        return cls(config_for_model(model, str(index), collection, device, config_overrides))

    # -- components (lazy) -----------------------------------------------------------------------

    @property
    def embedder(self) -> ModelEmbedder:
        """The configured embedder (constructed on first use; its model loads on first embed)."""
        if self._embedder is None:
            self._embedder = self.config.embedder.build()
        return self._embedder

    @property
    def reranker(self) -> Reranker | None:
        """The configured reranker, or ``None`` (constructed on first use; loads lazily)."""
        if self._reranker is None and self.config.reranker is not None:
            self._reranker = self.config.reranker.build()
        return self._reranker

    @property
    def text_reranker(self) -> Reranker:
        """The cross-encoder of a plan's ``text_rerank@K`` stage: ``[text_reranker]``, else a
        ``[reranker]`` of type ``text``, else the default ``TextReranker`` (loads lazily)."""
        if self._text_reranker is None:
            cfg = self.config
            own = cfg.reranker if cfg.reranker is not None and cfg.reranker.type == "text" else None
            self._text_reranker = (cfg.text_reranker or own or RerankerSpec(type="text")).build()
        return self._text_reranker

    @property
    def generator(self) -> Generator | None:
        """The configured answer generator, or ``None`` (constructed on first use)."""
        if self._generator is None and self.config.generator is not None:
            self._generator = self.config.generator.build()
        return self._generator

    @property
    def pooler(self) -> Pooler | None:
        """The pooler of multi-vector embedders (``None`` for single-vector ones)."""
        if self._pooler is None and self.embedder.kind == "multi":
            from mmrag.embedders.pooling import Pooler

            self._pooler = Pooler(self.config.pooling)
        return self._pooler

    def schema(self) -> CollectionSchema:
        """The collection schema this pipeline's embedder and pooling settings need (it may
        load the embedder's model, for its dimension)."""
        from mmrag.store.schema import CollectionSchema

        pooling = self.config.pooling if self.embedder.kind == "multi" else None
        return CollectionSchema.for_embedder_object(
            self.embedder, pooling, text=self.config.retrieval.hybrid
        )

    @property
    def store(self) -> VectorStore:
        """The vector store, opened (or created with :meth:`schema`) on first use. The schema
        is computed once an embedded store's folder is locked, so a store in use elsewhere,
        damaged or of an old layout fails before the embedder's model loads."""
        if self._store is None:
            from mmrag.store import open_store

            self._store = open_store(self.config.store, self.schema)
        return self._store

    def recreate(self) -> VectorStore:
        """Delete the collection and create it empty for this pipeline's embedder and pooling
        (``mmrag index --recreate``: rebuild an index of an older layout or another model).
        Every point of the collection is lost; index the sources again."""
        from mmrag.store import open_store

        self.close()
        self._store = open_store(self.config.store, self.schema, recreate=True)
        return self._store

    def wrap_store(self, wrapper: Callable[[VectorStore], VectorStore]) -> VectorStore:
        """Replace the (opened) store by ``wrapper(store)``, e.g. a lock or a metrics proxy that
        every later call of this pipeline goes through; returns the wrapped store."""
        self._store = wrapper(self.store)
        return self._store

    @property
    def assets(self) -> AssetStore:
        """The page-image asset store."""
        if self._assets is None:
            from mmrag.store import open_assets

            self._assets = open_assets(self.config.store)
        return self._assets

    def plan(self, plan: str | None = None) -> Plan:
        """The retrieval plan in use (:func:`~mmrag.pipeline.retrieval.resolve_plan`)."""
        from mmrag.pipeline.retrieval import resolve_plan

        return resolve_plan(self.config.retrieval, self.embedder.kind, plan)

    # -- jobs ------------------------------------------------------------------------------------

    def index(
        self,
        sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        metadata: MetadataArg = None,
        tenant: str | None = None,
        force: bool = False,
        on_progress: Callable[[int], None] | None = None,
        on_status: Callable[[IndexProgress], None] | None = None,
        engine: str = "local",
    ) -> IndexReport:
        """Index files, directories and globs; returns what was indexed, skipped and failed.

        A resumable job (see :mod:`mmrag.pipeline.indexing`): stored items are skipped, a
        changed file replaces its old points, and ``force`` re-indexes everything. Sources
        are stored canonically (absolute paths), so any spelling of a file finds it later; a
        byte-identical copy at another path is its own source, its embeddings copied.

        ``metadata``: the user's own fields for every file (``{"dept": "hr"}``), or a
        function of the file's path returning them; a ``<file>.meta.json`` sidecar adds its
        fields (and wins). Stored indexed, filterable with ``SearchFilter(metadata=…)``;
        changing them and indexing again rewrites the points without embedding again.
        ``tenant``: the owner of these items (multi-tenant servers).
        ``on_progress(n)`` gets the number of items handled since its last call;
        ``on_status(progress)`` an :class:`~mmrag.pipeline.indexing.IndexProgress` (files,
        pages, pages/s, ETA). ``engine="ray"`` runs the same steps on a Ray cluster
        (:func:`mmrag.integrations.ray.index_with_ray`, found by name in :data:`ENGINES`: the
        pipeline never imports the layer above it). A store that stays unreachable raises
        :class:`~mmrag.errors.IndexStoppedError` (run the job again to resume).
        """
        from mmrag.pipeline.indexing import Labels, index_sources

        if isinstance(sources, str | os.PathLike):
            sources = [sources]
        labels = Labels(metadata, tenant=tenant)
        if engine != "local":
            driver = _engine(engine)
            return driver(
                self,
                sources,
                force=force,
                report=IndexReport(),
                on_progress=on_progress,
                labels=labels,
            )
        from mmrag.pipeline.startup import load_models

        store = self.store  # a locked or mismatched store fails before the model loads
        load_models(self, ["embedder"])  # a step of its own: the job's rate excludes it
        return index_sources(
            sources,
            labels=labels,
            embedder=self.embedder,
            store=store,
            pooler=self.pooler,
            assets=self.assets,
            ingest=self.config.ingest,
            force=force,
            on_progress=on_progress,
            on_status=on_status,
        )

    def search(
        self,
        query: QueryLike,
        *,
        k: int | None = None,
        plan: str | None = None,
        filter: SearchFilter | None = None,
        rerank: bool = True,
        regions: bool | None = None,
    ) -> list[Hit]:
        """The best ``k`` pages / frames for a query (text, an image, or both).

        With a reranker configured (and ``rerank``), the plan's candidates are reranked and the
        best ``k`` kept; each hit's ``stage_scores`` holds every stage's score, its ``regions``
        the page boxes that carry the match (``regions=None``: when ``k`` <= 20).
        """
        from mmrag.pipeline.rag import retrieve

        found = retrieve(self, query, k=k, plan=plan, filter=filter, rerank=rerank, regions=regions)
        return found.hits

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        plan: str | None = None,
        filter: SearchFilter | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Answer ``question`` from the index: retrieve → rerank → generate.

        The answer cites the pages / video seconds it used (``Answer.citations``) and carries
        per-stage ``timings``; ``on_token`` receives the text as it is generated.
        """
        from mmrag.pipeline.rag import answer

        return answer(self, question, k=k, plan=plan, filter=filter, on_token=on_token)

    def evaluate(
        self,
        dataset: str | os.PathLike[str] | BeirDataset,
        *,
        plans: Iterable[str] | None = None,
        ks: Iterable[int] = (5, 10),
        max_queries: int | None = None,
        split: str = "test",
        on_progress: Callable[[int], None] | None = None,
    ) -> EvalReport:
        """Index a dataset (a BEIR folder, a Hugging Face id such as ``vidore/esg_reports_v2``
        or a local copy: ``mmrag eval --help``) into its own collection and compare retrieval
        plans; ``on_progress(n)`` follows the indexing. Default plans: the configured one and,
        for multi-vector embedders, exact MaxSim over ``full`` (what pooling costs and saves).
        """
        from mmrag.pipeline.evaluate import BeirDataset, evaluate, open_dataset
        from mmrag.store import open_store

        data = dataset if isinstance(dataset, BeirDataset) else open_dataset(dataset, split)
        ks = tuple(ks)
        if plans is None:
            plans = [str(self.plan())]
            if self.embedder.kind == "multi":
                plans.append(f"full@{max(*ks, 10)}")
        name = re.sub(r"[^A-Za-z0-9_-]", "_", data.name)[:64]
        store_config = self.config.store.model_copy(
            update={"collection": f"{self.config.store.collection}-eval-{name}"}
        )
        store = open_store(store_config, self.schema)
        try:
            return evaluate(
                data,
                self.embedder,
                store,
                list(plans),
                ks,
                pooler=self.pooler,
                max_queries=max_queries,
                on_progress=on_progress,
            )
        finally:
            store.close()

    def delete(self, source: str | os.PathLike[str], *, tenant: str | None = None) -> int:
        """Remove every item of ``source`` (any spelling of its path: it is made canonical)
        and its page images; with ``tenant``, only that tenant's. Returns how many were
        removed. A byte-identical copy at another path is another source and stays."""
        from mmrag.pipeline.startup import stored
        from mmrag.store.records import SearchFilter

        where = SearchFilter.build(source=canonical_source(source), tenant=tenant)
        with stored(self._store, self.config.store, self.schema) as store:  # no embedder needed
            ids = [r.id for r in store.iter_records(where)] if store is not None else []
            if ids and store is not None:
                store.delete(ids)
                self.assets.delete(ids)
        return len(ids)

    def sources(self, *, tenant: str | None = None) -> list[str]:
        """The sources in the index (``tenant``'s only, when given)."""
        return list(self.source_counts(tenant=tenant))

    def source_counts(
        self, filter: SearchFilter | None = None, *, tenant: str | None = None
    ) -> dict[str, int]:
        """Each indexed source (matching ``filter``; ``tenant``'s only, when given) and its
        number of pages / images / frames."""
        from mmrag.pipeline.startup import stored
        from mmrag.store.records import SearchFilter

        where = (filter or SearchFilter()).canonical().for_tenant(tenant)
        with stored(self._store, self.config.store, self.schema) as store:  # no embedder needed
            return {} if store is None else store.source_counts(None if where.is_empty else where)

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

    # -- async, and one caller at a time ---------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """This pipeline's lock (re-entrant): the embedder loads lazily and the embedded store
        is one folder, so the async methods and the LangChain integrations hold it for each
        call, and calls through one pipeline run one at a time. Hold it too when calling the
        sync methods from several threads: ``with pipe.lock: pipe.search(...)``."""
        lock = self.__dict__.get("_lock")
        if lock is None:  # dict.setdefault is atomic: two first callers get one lock
            lock = self.__dict__.setdefault("_lock", threading.RLock())
        return lock

    async def _locked_in_thread(self, method: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        import asyncio

        def call() -> T:
            with self.lock:
                return method(*args, **kwargs)

        return await asyncio.to_thread(call)

    async def aindex(
        self, sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], **options: Any
    ) -> IndexReport:
        """:meth:`index` (same keyword arguments) in a worker thread, holding :attr:`lock`;
        ``on_progress`` / ``on_status`` are called from that thread. Cancelling the awaiting
        task does not stop a job that has started (run it again to resume)."""
        return await self._locked_in_thread(self.index, sources, **options)

    async def asearch(self, query: QueryLike, **options: Any) -> list[Hit]:
        """:meth:`search` (same keyword arguments) in a worker thread, holding :attr:`lock`:
        the event loop stays free; concurrent calls on one pipeline run one after another
        (``await asyncio.gather(*(pipe.asearch(q) for q in queries))``)."""
        return await self._locked_in_thread(self.search, query, **options)

    async def aask(self, question: str, **options: Any) -> Answer:
        """:meth:`ask` (same keyword arguments) in a worker thread, holding :attr:`lock`;
        ``on_token`` is called from that thread (use ``loop.call_soon_threadsafe`` to hand
        tokens to the event loop)."""
        return await self._locked_in_thread(self.ask, question, **options)

    def index_data(
        self,
        data: Iterable[Any],
        *,
        metadata: MetadataArg = None,
        tenant: str | None = None,
        force: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> IndexReport:
        """Index in-memory content: ``(name, bytes)``, ``(name, str)`` and ``(name, PIL image)``
        pairs, PIL images and LangChain ``Document``\\ s (see :mod:`mmrag.pipeline.ingest.memory`).

        Each entry is the source ``memory://<name>`` (a Document: its ``id``, else
        ``document-<hash>``), so indexing it again skips it and ``delete("memory://<name>")``
        removes it. ``metadata`` as in :meth:`index`; a Document's own metadata wins.

        Example:
            >>> pipe.index_data([("q1.pdf", pdf), ("memo", "Revenue grew.")])  # doctest: +SKIP
        """
        from mmrag.pipeline.indexing import Labels, index_items
        from mmrag.pipeline.ingest.memory import DataIngest

        with DataIngest(data, self.config.ingest) as ingest:

            def fields(source: str) -> dict[str, Any]:
                given = metadata(source) if callable(metadata) else metadata
                return {**(given or {}), **ingest.metadata_of(source)}

            report = IndexReport()
            index_items(
                ingest.items(report),
                embedder=self.embedder,
                store=self.store,
                pooler=self.pooler,
                assets=self.assets,
                report=report,
                force=force,
                on_progress=on_progress,
                labels=Labels(fields, tenant=tenant, sidecars=False),
            )
        report.sources = len(ingest.sources)
        return report


#: Indexing engines other than the local job: name → "module:function" of a driver taking
#: ``(pipeline, sources, *, force, report, on_progress, labels)``. Resolved by name (a plugin
#: above the pipeline, never imported by it).
ENGINES: dict[str, str] = {"ray": "mmrag.integrations.ray:index_with_ray"}


def _engine(name: str) -> Callable[..., IndexReport]:
    import importlib

    from mmrag.errors import ConfigError

    target = ENGINES.get(name)
    if target is None:
        raise ConfigError(
            f"unknown indexing engine {name!r}; use 'local' or {', '.join(map(repr, ENGINES))}"
        )
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
