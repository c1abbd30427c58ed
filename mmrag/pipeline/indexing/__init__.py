"""Indexing: the steps (:mod:`.steps`, written once) and the local driver that overlaps them
(:mod:`.job`). The Ray driver (:mod:`mmrag.integrations.ray`) and the evaluation harness
(:mod:`mmrag.pipeline.evaluate`) run the same steps.

==============  ==========================================================================
module          what
==============  ==========================================================================
``steps``       bind → check (skip stored) → reuse (copies) → load → embed (+ pool) →
                write → finish (drop stale versions, publish): the one implementation
                every driver runs
``labels``      :class:`Labels`: the user's metadata (call, function, sidecar) and tenant
``job``         :class:`IndexJob`: ingest, embed and write in three threads, bounded queues
``progress``    :class:`IndexProgress` snapshots and the job's counters
==============  ==========================================================================

Example:
    >>> from mmrag.pipeline.indexing import index_sources                    # doctest: +SKIP
    >>> report = index_sources(["docs/"], embedder=embedder, store=store)     # doctest: +SKIP
    >>> report.summary()                                                      # doctest: +SKIP
    '12 indexed, 0 skipped (already present), 1 failed'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from mmrag.errors import IndexStoppedError
from mmrag.pipeline.indexing.job import IndexJob
from mmrag.pipeline.indexing.labels import Labels, MetadataArg
from mmrag.pipeline.indexing.progress import IndexProgress
from mmrag.types import IndexReport, Item

if TYPE_CHECKING:
    from mmrag.embedders.base import Embedder
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.ingest import IngestConfig
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore

__all__ = [
    "IndexJob",
    "IndexProgress",
    "IndexStoppedError",
    "Labels",
    "MetadataArg",
    "index_items",
    "index_sources",
]


def index_sources(
    sources: Iterable[str | os.PathLike[str]],
    *,
    embedder: Embedder,
    store: VectorStore,
    pooler: Pooler | None = None,
    assets: AssetStore | None = None,
    ingest: IngestConfig | None = None,
    force: bool = False,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_status: Callable[[IndexProgress], None] | None = None,
    labels: Labels | None = None,
) -> IndexReport:
    """Index files, directories and globs as one overlapped job (see :class:`IndexJob`);
    ``labels`` attach the user's metadata and tenant (:class:`Labels`)."""
    job = IndexJob(
        labels=labels,
        embedder=embedder,
        store=store,
        pooler=pooler,
        assets=assets,
        ingest=ingest,
        force=force,
        batch_size=batch_size,
        on_progress=on_progress,
        on_status=on_status,
    )
    return job.run_sources(sources)


def index_items(
    items: Iterable[Item],
    *,
    embedder: Embedder,
    store: VectorStore,
    pooler: Pooler | None = None,
    assets: AssetStore | None = None,
    report: IndexReport | None = None,
    force: bool = False,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    labels: Labels | None = None,
) -> IndexReport:
    """Embed and store a stream of ``items``, skipping those already stored.

    ``force`` re-embeds and overwrites stored items. ``assets`` also keeps each page image,
    keyed by point id, for rerankers, generators and the web page. ``on_progress(n)`` is called
    with the number of items handled since its last call. The items are consumed from one
    background thread; results go into ``report`` when given.
    """
    job = IndexJob(
        embedder=embedder,
        store=store,
        pooler=pooler,
        assets=assets,
        force=force,
        batch_size=batch_size,
        on_progress=on_progress,
        labels=labels,
    )
    if report is not None:
        job.report = report
    return job.run(items)
