"""The indexing job: Items → embeddings → pooled views → store (+ page images to the asset store).

Idempotent: each item's point id is deterministic (source sha256 + locator + embedder id), so
items already stored are skipped and a re-run finishes what is missing. A file whose content
changed gets new ids; its old points are removed before the new ones are written. A page that
cannot be rendered or embedded is reported in the :class:`~mmrag.types.IndexReport` with its
reason, and the job carries on.

Example:
    >>> from mmrag.pipeline.indexing import index_items                     # doctest: +SKIP
    >>> report = index_items(items, embedder=embedder, store=store)         # doctest: +SKIP
    >>> report.summary()                                                    # doctest: +SKIP
    '12 indexed, 0 skipped (already present), 1 failed'
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mmrag.embedders.batching import iter_batches
from mmrag.errors import MmragError
from mmrag.types import Embedding, Failure, IndexReport, Item

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.connectors.assets import AssetStore
    from mmrag.connectors.store import VectorStore
    from mmrag.embedders.base import ModelEmbedder
    from mmrag.embedders.pooling import Pooler

__all__ = ["index_items", "with_views"]

logger = logging.getLogger(__name__)


def with_views(embedding: Embedding, pooler: Pooler | None, views: Sequence[str]) -> Embedding:
    """``embedding`` with the pooled ``views`` it lacks computed from its visual tokens."""
    missing = [v for v in views if v not in embedding.pooled]
    if embedding.kind != "multi" or not missing or pooler is None:
        return embedding
    tokens = embedding.visual()
    pooled = dict(embedding.pooled)
    for view in missing:
        pooled[view] = pooler.view(view, tokens, embedding.grid)
    return dataclasses.replace(embedding, pooled=pooled)


def _fail(report: IndexReport, item: Item, error: BaseException, what: str) -> None:
    failure = Failure.from_exception(item.source, error)
    report.failed.append(dataclasses.replace(failure, reason=f"{item.locator}: {failure.reason}"))
    logger.warning("cannot %s %s: %s", what, item.citation(), error)


def _stored_sha(store: VectorStore, source: str) -> str | None:
    from mmrag.connectors.store import SearchFilter

    records, _ = store.scroll(SearchFilter.build(source=source), limit=1)
    return records[0].payload.get("source_sha256") if records else None


def _drop_stale_versions(items: Iterable[Item], store: VectorStore) -> Iterator[Item]:
    """Pass items through; before the first item of a source, delete the points of an older
    version of that source (same path, different content hash)."""
    seen: set[str] = set()
    for item in items:
        if item.source not in seen:
            seen.add(item.source)
            stored = _stored_sha(store, item.source)
            if stored is not None and stored != item.source_sha256:
                removed = store.delete_source(item.source)
                logger.info(
                    "%s changed: removed %d points of its old version", item.source, removed
                )
        yield item


def index_items(
    items: Iterable[Item],
    *,
    embedder: ModelEmbedder,
    store: VectorStore,
    pooler: Pooler | None = None,
    assets: AssetStore | None = None,
    report: IndexReport | None = None,
    force: bool = False,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> IndexReport:
    """Embed and store ``items`` (streamed; a batch at a time), skipping those already stored.

    ``force`` re-embeds and overwrites stored items. ``assets`` also keeps each page image,
    keyed by point id, for rerankers, generators and the web page. ``on_progress(n)`` is called
    with the number of items handled after each batch.
    """
    started = time.perf_counter()
    report = report if report is not None else IndexReport()
    schema = store.schema
    views = schema.views
    size = batch_size or getattr(embedder, "batch_size", 8)
    text_channel = schema.text
    bound = (item.with_embedder(embedder.id) for item in _drop_stale_versions(items, store))

    for batch in iter_batches(bound, size):
        todo = batch if force else _missing(batch, store)
        report.skipped += len(batch) - len(todo)
        loaded = [_load(item) for item in todo]
        good: list[tuple[Item, Image.Image]] = []
        for item, result in zip(todo, loaded, strict=True):
            if isinstance(result, BaseException):
                _fail(report, item, result, "read")
            else:
                good.append((item, result))
        done = _embed(good, embedder, pooler, views, report)  # (item, embedding, image)
        if done:
            if assets is not None:  # images first: a stored point always has its page image
                for item, _, image in done:
                    assets.put(item.id, image)
            pairs = [(item, embedding) for item, embedding, _ in done]
            if text_channel:
                _upsert_with_text(store, pairs, embedder.id)
            else:
                store.upsert(pairs)
            report.indexed += len(pairs)
        if on_progress is not None:
            on_progress(len(batch))
    if report.indexed:
        store.optimize()
    report.duration_s += time.perf_counter() - started
    return report


def _load(item: Item) -> Any:
    try:
        return item.load_image()
    except (MmragError, OSError, ValueError) as error:
        return error


def _missing(batch: list[Item], store: VectorStore) -> list[Item]:
    present = store.existing([item.id for item in batch])
    return [item for item in batch if item.id not in present]


def _embed(
    good: list[tuple[Item, Any]],
    embedder: ModelEmbedder,
    pooler: Pooler | None,
    views: Sequence[str],
    report: IndexReport,
) -> list[tuple[Item, Embedding, Any]]:
    """Embed a batch; if the batch fails, retry page by page so one bad page is reported alone."""
    if not good:
        return []
    try:
        embeddings = embedder.embed_images([image for _, image in good])
        return [
            (item, with_views(e, pooler, views), image)
            for (item, image), e in zip(good, embeddings, strict=True)
        ]
    except (MmragError, ValueError, RuntimeError) as error:
        if len(good) == 1:
            _fail(report, good[0][0], error, "embed")
            return []
        logger.warning("a batch of %d pages failed (%s); retrying one by one", len(good), error)
        done: list[tuple[Item, Embedding, Any]] = []
        for pair in good:
            done.extend(_embed([pair], embedder, pooler, views, report))
        return done


def _upsert_with_text(store: VectorStore, pairs: list[tuple[Item, Embedding]], eid: str) -> None:
    from mmrag.connectors.store import Point
    from mmrag.connectors.text import bm25_document

    store.upsert(
        Point.from_item(item, emb, eid, text_vector=bm25_document(item.text or ""))
        for item, emb in pairs
    )
