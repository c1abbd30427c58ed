"""The stages of the Ray engine; each runs in Ray workers and calls the indexing steps
(:mod:`mmrag.pipeline.indexing.steps`), nothing else.

Example:
    >>> from mmrag.integrations.ray.stages import render_pages             # doctest: +SKIP
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.errors import ConfigError
from mmrag.integrations.ray.rows import (
    EMBEDDED,
    FAILED_FILE,
    FAILED_ITEM,
    ITEM,
    LISTED,
    PAGE,
    SKIPPED,
    WRITTEN,
    StoredIds,
    batch,
    failures,
    record,
    row,
    split,
)
from mmrag.pipeline.indexing import steps
from mmrag.types import IndexReport, Item

if TYPE_CHECKING:
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.indexing.labels import Labels
    from mmrag.pipeline.ingest.options import IngestConfig
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore

__all__ = ["EmbedPages", "WritePages", "list_source", "render_pages"]


# -- the stages (each runs in Ray workers) -------------------------------------------------------


def list_source(
    row_: dict[str, Any],
    *,
    ingest: IngestConfig,
    embedder_id: str,
    batch_size: int,
    force: bool,
    store: Callable[[], VectorStore] | None = None,
    stored_ids: Any = None,
    labels: Labels | None = None,
) -> Iterator[dict[str, Any]]:
    """Stage 1, one task per file: the file's items, less those already stored.

    ``row_`` holds a discovered :class:`~mmrag.pipeline.ingest.discovery.Source` (by absolute
    path) and the path as the user gave it (what items and the report show). With ``store``
    (a server backend), the task opens its own client, drops the points of an older version of
    the file and skips stored items, as the local engine does; otherwise ``stored_ids`` (a
    :class:`StoredIds`, or a Ray reference to one) is the snapshot to skip against.
    """
    from mmrag.embedders.batching import iter_batches
    from mmrag.pipeline.ingest import iter_items

    source, shown = pickle.loads(row_["data"])
    report = IndexReport()
    if (
        labels is not None
        and source.kind is not None
        and labels.rejects(os.fspath(source.path), report)
    ):  # bad metadata: the file is not even read
        yield from (record(FAILED_FILE, failure) for failure in report.failed)
        return
    opened = store() if store is not None else None
    snapshot = _resolve(stored_ids)
    listed, first, sha = 0, None, None
    try:
        items: Iterable[Item] = steps.bind(
            (
                dataclasses.replace(item, source=shown)
                for item in iter_items([source], ingest, report=report)
            ),
            embedder_id,
            labels,
        )
        for chunk in iter_batches(items, batch_size):
            listed += len(chunk)
            first, sha = first or chunk[0].source, sha or chunk[0].source_sha256
            skipped = report.skipped
            if opened is None and snapshot is None:
                works = [steps.Work(item) for item in chunk]
            else:
                known = snapshot.lookup([i.id for i in chunk]) if snapshot is not None else None
                works = steps.check(chunk, opened, report, force=force, stored=known)
            yield from (record(ITEM, work) for work in works)
            if report.skipped > skipped:
                yield record(SKIPPED, (chunk[0].source, report.skipped - skipped))
    finally:
        if opened is not None:
            opened.close()
    for failure in report.failed:
        failure = dataclasses.replace(failure, source=_shown(failure.source, source, shown))
        yield record(FAILED_FILE, failure)
    if listed:
        yield record(LISTED, (first, listed, sha))


def render_pages(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stage 2, tasks: render / decode the batch's items (a page that fails is reported)."""
    rows, works = split(data, ITEM)
    report = IndexReport()
    rows += [row(PAGE, work) for work in steps.load(works, report)]
    rows += failures(report, FAILED_ITEM)
    return batch(rows)


class EmbedPages:
    """Stage 3, an actor pool: each actor builds the embedder once from its ``{type,
    init_parameters}`` and embeds the rendered pages with the pooled views."""

    def __init__(
        self,
        embedder_class: type,
        embedder_spec: dict[str, Any],
        embedder_id: str,
        pooler: Pooler | None,
        views: Sequence[str],
    ) -> None:
        embedder = embedder_class.from_dict(embedder_spec)
        if embedder.id != embedder_id:
            raise ConfigError(
                f"the embedder rebuilt on a Ray worker is {embedder.id}, not the driver's "
                f"{embedder_id}; its vectors would be stored under the wrong ids. Make "
                "`to_dict()` of the embedder carry every setting that changes its id"
            )
        self.embedder = embedder.load()
        self.pooler = pooler
        self.views = tuple(views)

    def __call__(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, works = split(data, PAGE)
        report = IndexReport()
        done = steps.embed(works, self.embedder, self.pooler, self.views, report)
        rows += [row(EMBEDDED, work) for work in done]
        rows += failures(report, FAILED_ITEM)
        return batch(rows)


class WritePages:
    """Stage 4 (server backend), parallel writers: each opens its own client to the server and
    writes page images, then points (:func:`mmrag.pipeline.indexing.steps.write`)."""

    def __init__(
        self, store: Callable[[], VectorStore], assets: Callable[[], AssetStore] | None
    ) -> None:
        self.store = store()
        self.assets = assets() if assets is not None else None

    def __call__(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows, works = split(data, EMBEDDED)
        if works:
            steps.write(works, self.store, self.assets)
            rows.append(row(WRITTEN, dict(collections.Counter(w.item.source for w in works))))
        return batch(rows)


def _resolve(stored_ids: Any) -> StoredIds | None:
    if stored_ids is None or isinstance(stored_ids, StoredIds):
        return stored_ids
    import ray

    return ray.get(stored_ids)


def _shown(path: str, source: Any, shown: str) -> str:
    return shown if path == os.fspath(source.path) else path
