"""The steps of indexing, each written once; every driver (the local threaded job, the Ray
engine, the evaluation harness) runs these and nothing else.

::

    discover → bind → check (skip stored) → reuse → load → embed (+ pool) → write → finish
    (ingest)   (ids,   Work(pending)          copies   image  embedding      images,  drop stale
               labels)                                                       points   versions,
                                                                             (pending) publish

A :class:`Work` is one item on its way through the steps. A page whose content is stored
already under another source (a byte-identical copy of a file) is not rendered nor embedded:
:func:`reuse` copies the stored vectors and page image to the copy's own point. Points are
written flagged pending (:data:`~mmrag.store.contract.PENDING_FIELD`), which queries never
return, and a source is *finished* only when all its items are handled: then the points of
its older versions (same source, other content hash) are deleted and the new ones published.
So a changed file's old version stays searchable until the new one is complete, on every
engine, and a job killed at any point leaves the last complete version visible.

Example:
    >>> from mmrag.pipeline.indexing import steps                            # doctest: +SKIP
    >>> works = steps.check(items, store, report, force=False)                # doctest: +SKIP
    >>> works = steps.embed(steps.load(works, report), embedder, pooler,
    ...                     store.schema.views, report)                       # doctest: +SKIP
    >>> steps.write(works, store, assets)                                     # doctest: +SKIP
    >>> steps.finish(store, assets, "docs/a.pdf", sha256)                     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmrag.errors import MmragError
from mmrag.types import Embedding, Failure, IndexReport, Item

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.embedders.base import Embedder
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.indexing.labels import Labels
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore
    from mmrag.store.records import Point, Record
    from mmrag.store.schema import CollectionSchema

__all__ = [
    "Work",
    "bind",
    "check",
    "embed",
    "finish",
    "load",
    "make_point",
    "report_item",
    "reuse",
    "stored_whole",
    "with_views",
    "write",
]

logger = logging.getLogger(__name__)


@dataclass
class Work:
    """One item on its way through the steps.

    ``pending``: written flagged pending (its point was not stored complete); a point stored
    complete and rewritten (``force``) stays visible: same content, same id. ``image`` and
    ``embedding`` are filled by :func:`load` and :func:`embed`; :func:`write` drops the image.
    ``reused``: a stored record with this item's content (a copy's, or its own point whose
    labels changed) whose vectors and page image are written instead of embedding again.
    """

    item: Item
    pending: bool = True
    image: Image.Image | None = None
    embedding: Embedding | None = None
    reused: Record | None = None


def bind(items: Iterable[Item], embedder_id: str, labels: Labels | None = None) -> Iterable[Item]:
    """The items with their point ids bound to ``embedder_id`` and, with ``labels``, the
    user's metadata and tenant attached (a file whose metadata is invalid raises
    :class:`~mmrag.pipeline.indexing.labels.MetadataError`)."""
    for item in items:
        yield (labels.apply(item) if labels is not None else item).with_embedder(embedder_id)


def _labels_of(payload: Mapping[str, object]) -> tuple[object, object]:
    return payload.get("metadata") or {}, payload.get("tenant")


def check(
    batch: Sequence[Item],
    store: VectorStore | None,
    report: IndexReport,
    *,
    force: bool = False,
    stored: Mapping[str, bool] | None = None,
) -> list[Work]:
    """The :class:`Work` of each item of ``batch`` to write; the others, stored already
    (complete, or pending from an interrupted job: its document is published when finished),
    are counted in ``report.skipped``. ``force`` writes every item again.

    What is stored is read from ``store``, or given as ``stored`` (point id → pending) by a
    driver that checks against a snapshot (the Ray engine with the embedded store).
    """
    from mmrag.store.contract import PENDING_FIELD

    if not batch:
        return []
    relabel: set[str] = set()
    if stored is None:
        records = store.retrieve([i.id for i in batch]) if store is not None else []
        stored = {r.id: bool(r.payload.get(PENDING_FIELD)) for r in records}
        by_id = {i.id: i for i in batch}
        relabel = {
            r.id
            for r in records
            if _labels_of(r.payload) != (dict(by_id[r.id].metadata), by_id[r.id].tenant)
        }
    works = []
    for item in batch:
        pending = stored.get(item.id)
        if pending is not None and not force and item.id not in relabel:
            report.skipped += 1
            continue
        works.append(Work(item, pending=pending is not False))
    if relabel and store is not None and not force:  # new metadata: rewrite, same vectors
        own = {r.id: r for r in store.retrieve(sorted(relabel), with_vectors=True)}
        for work in works:
            work.reused = own.get(work.item.id)
    return works


def reuse(works: Sequence[Work], store: VectorStore) -> int:
    """Give each work whose content is stored already (under another source: a copy of the
    file, or another tenant's) that record, so its vectors and page image are copied instead
    of rendering and embedding the page again; returns how many found one."""
    from mmrag.store.records import SearchFilter

    wanted = {w.item.content_id: w for w in works if w.reused is None}
    if not wanted:
        return 0
    where = SearchFilter(content_ids=tuple(wanted))
    donors: dict[str, Record] = {}
    offset: str | None = None
    while True:
        records, offset = store.scroll(where, limit=256, offset=offset, with_vectors=True)
        for record in records:
            donors.setdefault(str(record.payload.get("content_id")), record)
        if offset is None:
            break
    found = 0
    for content, work in wanted.items():
        donor = donors.get(content)
        if donor is not None and donor.id != work.item.id and donor.vectors:
            work.reused = donor
            found += 1
    if found:
        logger.info("%s: %d pages copied from identical content", works[0].item.source, found)
    return found


def stored_whole(
    store: VectorStore, path: str, *, force: bool = False, labels: Labels | None = None
) -> int | None:
    """The page count of the PDF at ``path`` when every page is stored for its current
    content (one point per page, no older version left), else ``None``. Lets a driver skip
    an unchanged PDF without rendering it; :func:`finish` it all the same (pending leftovers
    of a crash get published). With ``labels``, the stored metadata must be what they give."""
    from mmrag.pipeline.ingest._files import file_sha256
    from mmrag.store.records import SearchFilter

    if force:
        return None
    tenant = labels.tenant if labels is not None else None
    where = SearchFilter.build(source=path, tenant=tenant)
    records, _ = store.scroll(where, limit=1)
    pages = (records[0].payload.get("details") or {}).get("page_count") if records else None
    if not isinstance(pages, int) or store.count(where) != pages:
        return None
    if labels is not None:
        try:
            wanted = (labels.metadata_of(path), tenant)
        except MmragError:
            return None  # the normal path reports it
        if any(_labels_of(r.payload) != wanted for r in store.iter_records(where)):
            return None
    try:
        sha = file_sha256(path)
    except OSError:
        return None  # the normal path reports the unreadable file
    found = {
        r.payload.get("page")
        for r in store.iter_records(where)
        if r.payload.get("source_sha256") == sha
    }
    return pages if found == set(range(1, pages + 1)) else None


def load(works: Iterable[Work], report: IndexReport) -> list[Work]:
    """The works whose page image loads (rendered, decoded); the others are reported."""
    loaded = []
    for work in works:
        if work.reused is not None:  # copied, not rendered
            loaded.append(work)
            continue
        try:
            work.image = work.item.load_image()
        except (MmragError, OSError, ValueError) as error:
            report_item(report, work.item, error, "read")
            continue
        loaded.append(work)
    return loaded


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


def embed(
    works: Sequence[Work],
    embedder: Embedder,
    pooler: Pooler | None,
    views: Sequence[str],
    report: IndexReport,
) -> list[Work]:
    """Embed a batch of loaded works with the pooled ``views``; if the batch fails, retry work
    by work so one bad page is reported alone. Returns the works embedded."""
    fresh = [w for w in works if w.reused is None]
    if len(fresh) < len(works):
        done = embed(fresh, embedder, pooler, views, report) if fresh else []
        kept = {id(w) for w in done}
        return [w for w in works if w.reused is not None or id(w) in kept]
    if not works:
        return []
    try:
        embeddings = _embed_loaded(embedder, works)
    except (MmragError, ValueError, RuntimeError) as error:
        if len(works) == 1:
            report_item(report, works[0].item, error, "embed")
            return []
        logger.warning("a batch of %d pages failed (%s); retrying one by one", len(works), error)
        done: list[Work] = []
        for work in works:
            done.extend(embed([work], embedder, pooler, views, report))
        return done
    for work, embedding in zip(works, embeddings, strict=True):
        work.embedding = with_views(embedding, pooler, views)
    return list(works)


def _embed_loaded(embedder: Embedder, works: Sequence[Work]) -> list[Embedding]:
    """Embed works whose images are loaded: through ``embed_images`` when the embedder has it
    (every :class:`~mmrag.embedders.base.ModelEmbedder`), else through the protocol's
    ``embed_documents`` with items that hand out the loaded image."""
    embed_images = getattr(embedder, "embed_images", None)
    if embed_images is not None:
        return list(embed_images([work.image for work in works]))
    items = [
        dataclasses.replace(work.item, image_loader=functools.partial(_same, work.image))
        for work in works
    ]
    return list(embedder.embed_documents(items))


def _same(image: Image.Image) -> Image.Image:
    return image


def make_point(work: Work, schema: CollectionSchema) -> Point:
    """The store point of an embedded work (see :meth:`~mmrag.store.records.Point.from_item`)."""
    from mmrag.store.records import Point

    if work.reused is not None:
        return Point.reusing(work.item, work.reused, schema, pending=work.pending)
    assert work.embedding is not None, "embed() the work first"
    return Point.for_collection(work.item, work.embedding, schema, pending=work.pending)


def write(works: Sequence[Work], store: VectorStore, assets: AssetStore | None) -> int:
    """Store page images (first: a stored point always has its image), then the points;
    returns how many were written. The works' images are dropped."""
    if not works:
        return 0
    if assets is not None:
        for work in works:
            if work.reused is None:
                assets.put(work.item.id, work.image)
            elif work.reused.id != work.item.id:
                assets.copy(work.reused.id, work.item.id)
    store.upsert([make_point(work, store.schema) for work in works])
    for work in works:
        work.image = None  # the pixels are no longer needed
    logger.debug("stored %d items of %s", len(works), works[-1].item.source)
    return len(works)


def finish(
    store: VectorStore,
    assets: AssetStore | None,
    source: str,
    sha256: str | None,
    *,
    current: int | None = None,
    tenant: str | None = None,
) -> int:
    """A source's items are all handled: delete the points (and page images) of its other
    versions (``source_sha256`` not ``sha256``), then publish its pending points. Returns how
    many were published. ``current`` (this version's points, when known) skips the scan when
    nothing else is stored for the source."""
    from mmrag.store.records import SearchFilter

    where = SearchFilter.build(source=source, tenant=tenant)
    if sha256 is not None and (current is None or store.count(where) > current):
        stale = [  # this owner's other versions only (no tenant: the untenanted points)
            r.id
            for r in store.iter_records(where)
            if r.payload.get("source_sha256") != sha256 and r.payload.get("tenant") == tenant
        ]
        if stale:
            store.delete(stale)
            if assets is not None:
                assets.delete(stale)
            logger.info("%s changed: removed %d points of its old version", source, len(stale))
    published = store.publish(source, tenant=tenant)
    if published:
        logger.info("published %s (%d new items)", source, published)
    return published


def report_item(report: IndexReport, item: Item, error: BaseException, what: str) -> None:
    """Record that ``what`` (read, embed) failed for ``item`` and log it once."""
    failure = Failure.from_exception(item.source, error)
    report.failed.append(dataclasses.replace(failure, reason=f"{item.locator}: {failure.reason}"))
    logger.warning("cannot %s %s: %s", what, item.citation(), error)
