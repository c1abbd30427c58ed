"""The indexing job: Items → embeddings → pooled views → store (+ page images to the asset store).

Three stages overlap, joined by bounded queues, so a job runs at the speed of its slowest stage
and holds a bounded number of pages however large the input::

    ingest thread ──queue──► embed (the calling thread) ──queue──► writer thread
    (discovery, PDF pages      (batches through the model,         (page images to the asset
     rendered by the ingest     pooled views)                       store, points upserted,
     worker processes, skip                                         documents published)
     of stored items)

PyMuPDF is only used from the ingest thread (and its worker processes).

Idempotent and resumable: each item's point id is deterministic (source sha256 + locator +
embedder id), so items already stored are skipped and a re-run finishes what is missing.

Crash safe: the points of a document are written flagged as pending
(:data:`~mmrag.store.contract.PENDING_FIELD`), which queries never return, and published
(the flag cleared) only after the document's last item is stored. A job killed at any point and
run again finishes the pending documents and publishes them; no half-indexed document is ever
visible to search. A file whose content changed gets new ids; its old version stays searchable
until the new one is complete, then the old points (and their page images) are removed.

A page that cannot be rendered or embedded is reported in the :class:`~mmrag.types.IndexReport`
with its reason, and the job carries on. A store that stays unreachable (after the server
backend's retries) stops the job with :class:`IndexStoppedError`: what was written is kept, and
running the job again resumes it.

Example:
    >>> from mmrag.pipeline.indexing import index_sources                    # doctest: +SKIP
    >>> report = index_sources(["docs/"], embedder=embedder, store=store)     # doctest: +SKIP
    >>> report.summary()                                                      # doctest: +SKIP
    '12 indexed, 0 skipped (already present), 1 failed'
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmrag.errors import MmragError
from mmrag.types import Embedding, Failure, IndexReport, Item

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.embedders.base import ModelEmbedder
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.ingest import IngestConfig
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore
    from mmrag.store.records import Point

__all__ = [
    "IndexJob",
    "IndexProgress",
    "IndexStoppedError",
    "drop_stale_versions",
    "embed_images",
    "index_items",
    "index_sources",
    "load_images",
    "make_point",
    "skip_stored",
    "with_views",
    "write_embedded",
]

logger = logging.getLogger(__name__)

#: How often (seconds) a waiting stage wakes up to check whether the job was stopped.
_POLL_S = 0.1


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


class IndexStoppedError(MmragError):
    """The job stopped before the end (e.g. the store stayed unreachable). Everything written
    so far is kept; running the same job again resumes it. ``report`` is the partial report."""

    def __init__(self, message: str, report: IndexReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class IndexProgress:
    """A snapshot of a running job, for progress bars and job status pages.

    ``pages`` are items of any kind (PDF pages, images, video frames); ``pages_done`` counts
    those indexed, skipped (already stored) and failed. ``pages_total`` is an estimate: the page
    counts of the files opened so far, plus their average for each file not opened yet
    (``None`` until a file is opened).

    Example:
        >>> from mmrag.pipeline.indexing import IndexProgress
        >>> p = IndexProgress(files_done=1, files_total=4, pages_done=50, pages_total=200,
        ...                   indexed=50, skipped=0, failed=0, elapsed_s=10.0)
        >>> p.pages_per_s, p.eta_s
        (5.0, 30.0)
    """

    files_done: int
    files_total: int | None
    pages_done: int
    pages_total: int | None
    indexed: int
    skipped: int
    failed: int
    elapsed_s: float

    @property
    def pages_per_s(self) -> float:
        """Pages handled per second so far."""
        return self.pages_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Estimated seconds left (``None`` while unknown)."""
        rate = self.pages_per_s
        if self.pages_total is None or rate <= 0:
            return None
        return max(self.pages_total - self.pages_done, 0) / rate

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view (with ``pages_per_s`` and ``eta_s``)."""
        data = dataclasses.asdict(self)
        data.update(pages_per_s=self.pages_per_s, eta_s=self.eta_s)
        return data


# -- what flows between the stages --------------------------------------------------------------


@dataclass
class _Doc:
    """One source's bookkeeping, handed from stage to stage in order."""

    source: str
    sha256: str
    expected: int | None = None  # page count, when the reader knows it (PDFs)
    items: int = 0  # items read (ingest thread)
    kept: int = 0  # items already stored and not rewritten (ingest thread)
    written: int = 0  # items written by this job (writer thread)


@dataclass
class _Work:
    item: Item
    image: Any  # PIL image
    doc: _Doc
    pending: bool  # written with the pending flag (its point was not stored complete)


@dataclass
class _DocEnd:
    doc: _Doc


@dataclass
class _Written:
    works: list[tuple[_Work, Embedding]]


@dataclass
class _Error:
    error: BaseException


_DONE = object()


class _StopSignalError(Exception):
    """Raised inside a stage when another stage stopped the job."""


@dataclass
class _Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    files_total: int | None = None
    files_started: int = 0
    files_done: int = 0
    known_pages: int = 0  # page counts of files opened (or items read, when unknown)
    handled: int = 0  # items indexed + skipped + failed
    item_failures: int = 0


# -- the job -------------------------------------------------------------------------------------


class IndexJob:
    """One indexing run: ingest, embed and store overlapping, with progress and a report.

    ``batch_size`` (default: the embedder's) is the embedding batch; ``queue_batches`` bounds
    how many batches wait between two stages. ``force`` re-embeds and overwrites stored items.
    ``on_progress(n)`` is called with the number of items handled since the last call;
    ``on_status(progress)`` with an :class:`IndexProgress` snapshot; both from the calling
    thread, between batches.

    Example:
        >>> from mmrag.pipeline.indexing import IndexJob                          # doctest: +SKIP
        >>> job = IndexJob(embedder=embedder, store=store, assets=assets,
        ...                on_status=lambda p: print(p.pages_done, p.eta_s))       # doctest: +SKIP
        >>> report = job.run_sources(["docs/", "talks/*.mp4"])                     # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        embedder: ModelEmbedder,
        store: VectorStore,
        pooler: Pooler | None = None,
        assets: AssetStore | None = None,
        ingest: IngestConfig | None = None,
        force: bool = False,
        batch_size: int | None = None,
        queue_batches: int = 2,
        on_progress: Callable[[int], None] | None = None,
        on_status: Callable[[IndexProgress], None] | None = None,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.pooler = pooler
        self.assets = assets
        self.ingest = ingest
        self.force = force
        self.batch_size = batch_size or int(getattr(embedder, "batch_size", 8) or 8)
        if self.batch_size < 1 or queue_batches < 1:
            raise ValueError(
                f"batch_size and queue_batches must be >= 1, got {self.batch_size} and "
                f"{queue_batches}"
            )
        self.queue_batches = queue_batches
        self.on_progress = on_progress
        self.on_status = on_status
        self.report = IndexReport()
        self._counters = _Counters()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._started = 0.0
        self._reported = 0
        self._last_status = 0.0
        self._sources: set[str] = set()

    # -- entry points ----------------------------------------------------------------------------

    def run_sources(self, sources: Iterable[str | os.PathLike[str]]) -> IndexReport:
        """Index files, directories and globs (discovered in the ingest thread)."""
        inputs = list(sources)
        config = self.ingest

        def stream() -> Iterator[Item]:
            from mmrag.pipeline.ingest import iter_items

            found = self._discover(inputs, config)
            yield from iter_items(found, config, report=self.report, skip=self._stored_whole)

        report = self.run(stream())
        report.sources = len(self._sources | {f.source for f in report.failed})
        return report

    def _stored_whole(self, source: Any) -> bool:
        """Whether ``source`` is a PDF whose every page is stored for its current content; then
        it is skipped without rendering a page (pending leftovers of a crash are published).

        Anything short of that (a changed file, a failed or blank-skipped page, a force run, a
        non-PDF) goes the normal way: pages rendered, stored ones skipped one by one.
        """
        from mmrag.pipeline.ingest._files import file_sha256
        from mmrag.pipeline.ingest.discovery import SourceKind
        from mmrag.store.records import SearchFilter

        if self.force or source.kind is not SourceKind.PDF:
            return False
        path = os.fspath(source.path)
        where = SearchFilter.build(source=path)
        records, _ = self.store.scroll(where, limit=1)
        pages = (records[0].payload.get("metadata") or {}).get("page_count") if records else None
        if not isinstance(pages, int) or self.store.count(where) != pages:
            return False
        try:
            sha = file_sha256(path)
        except OSError:
            return False  # the normal path reports the unreadable file
        # every stored point is of this version (no half-replaced older one), one per page
        found = {
            r.payload.get("page")
            for r in self.store.iter_records(where)
            if r.payload.get("source_sha256") == sha
        }
        if found != set(range(1, pages + 1)):
            return False
        published = self.store.publish(path)
        logger.info(
            "%s unchanged: all %d pages stored, skipped without rendering%s",
            path,
            pages,
            f" ({published} published)" if published else "",
        )
        self._sources.add(path)
        self.report.skipped += pages
        with self._counters.lock:
            self._counters.files_started += 1
            self._counters.files_done += 1
            self._counters.known_pages += pages
        self._count(handled=pages)
        return True

    def run(self, items: Iterable[Item]) -> IndexReport:
        """Index a stream of Items (advanced only from the ingest thread)."""
        _passive_openmp()
        self._started = time.perf_counter()
        depth = self.queue_batches * self.batch_size
        to_embed: queue.Queue[Any] = queue.Queue(maxsize=depth)
        to_write: queue.Queue[Any] = queue.Queue(maxsize=self.queue_batches)
        producer = threading.Thread(
            target=self._produce, args=(items, to_embed), name="mmrag-ingest", daemon=True
        )
        writer = threading.Thread(
            target=self._write, args=(to_write,), name="mmrag-writer", daemon=True
        )
        producer.start()
        writer.start()
        try:
            self._embed_stage(to_embed, to_write)
            while writer.is_alive():
                writer.join(_POLL_S)
                self._emit()
            if self._failure is not None:
                raise self._failure
            if self.report.indexed:
                self.store.optimize()
        except BaseException as error:
            self._stop.set()
            producer.join()
            writer.join()
            stopped = self._stopped(error)
            if stopped is error:
                raise
            raise stopped from (self._failure or error)
        finally:
            self._stop.set()
            producer.join()
            writer.join()
            self.report.duration_s += time.perf_counter() - self._started
        self._emit(final=True)
        logger.info("indexing done: %s", self.report.summary())
        return self.report

    def _stopped(self, error: BaseException) -> BaseException:
        from mmrag.store.contract import StoreError

        if isinstance(error, _StopSignalError) and self._failure is not None:
            error = self._failure
        if not isinstance(error, StoreError | OSError):  # a bug, an interrupt: as it is
            return error
        self.report.duration_s = time.perf_counter() - self._started
        return IndexStoppedError(
            f"the indexing job stopped: {error}. {self.report.indexed} items were stored before "
            "it stopped and are kept; run the same job again to resume it (stored items are "
            "skipped).",
            self.report,
        )

    # -- ingest thread ---------------------------------------------------------------------------

    def _discover(self, inputs: list[Any], config: IngestConfig | None) -> list[Any]:
        from mmrag.errors import IngestError
        from mmrag.pipeline.ingest.discovery import as_inputs, expand

        found: list[Any] = []
        for entry in as_inputs(inputs):
            try:
                found.extend(expand(entry))
            except IngestError as err:
                self.report.add_failure(str(err.source), err)
                logger.warning("Skipping %s: %s", err.source, err.reason)
        skip_unsupported = config is not None and config.skip_unsupported
        total = sum(
            1
            for s in found
            if not (s.kind is None and s.size > 0 and not s.explicit and skip_unsupported)
        )
        with self._counters.lock:
            self._counters.files_total = total
        return found

    def _produce(self, items: Iterable[Item], out: queue.Queue[Any]) -> None:
        iterator = iter(items)
        try:
            doc: _Doc | None = None
            chunk: list[Item] = []
            eid = self.embedder.id
            for raw in iterator:
                if self._stop.is_set():
                    return
                item = raw.with_embedder(eid)
                if doc is None or (item.source, item.source_sha256) != (doc.source, doc.sha256):
                    self._check(chunk, doc, out)
                    chunk = []
                    if doc is not None:
                        self._put(out, _DocEnd(doc))
                    doc = self._start_doc(item)
                doc.items += 1
                if doc.expected is None:
                    with self._counters.lock:
                        self._counters.known_pages += 1
                chunk.append(item)
                if len(chunk) >= self.batch_size:
                    self._check(chunk, doc, out)
                    chunk = []
            self._check(chunk, doc, out)
            if doc is not None:
                self._put(out, _DocEnd(doc))
            self._put(out, _DONE)
        except _StopSignalError:
            return
        except BaseException as error:
            self._stop_with(error)
            with contextlib.suppress(queue.Full):  # else the embed stage sees the stop flag
                out.put_nowait(_Error(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # here: a reader's PyMuPDF objects are closed by the thread that used them

    def _start_doc(self, item: Item) -> _Doc:
        expected = item.metadata.get("page_count") if item.metadata else None
        doc = _Doc(item.source, item.source_sha256, expected if isinstance(expected, int) else None)
        self._sources.add(item.source)
        with self._counters.lock:
            self._counters.files_started += 1
            if doc.expected is not None:
                self._counters.known_pages += doc.expected
        return doc

    def _check(self, chunk: list[Item], doc: _Doc | None, out: queue.Queue[Any]) -> None:
        """Skip the items of ``chunk`` already stored; load the others' images and pass them on."""
        if not chunk or doc is None:
            return
        from mmrag.store.contract import PENDING_FIELD

        stored = {
            r.id: bool(r.payload.get(PENDING_FIELD))
            for r in self.store.retrieve([item.id for item in chunk])
        }
        for item in chunk:
            pending = stored.get(item.id)
            if pending is not None and not self.force:
                doc.kept += 1
                self.report.skipped += 1
                self._count(handled=1)
                continue
            try:
                image = item.load_image()
            except (MmragError, OSError, ValueError) as error:
                self._fail_item(item, error, "read")
                continue
            # A point stored complete and rewritten (force) stays visible: same content, same id.
            self._put(out, _Work(item, image, doc, pending=pending is not False))

    # -- embed stage (the calling thread) --------------------------------------------------------

    def _embed_stage(self, inbox: queue.Queue[Any], out: queue.Queue[Any]) -> None:
        entries: list[_Work | _DocEnd] = []
        works = 0
        while True:
            entry = self._get(inbox)
            if entry is None:
                continue
            if entry is _DONE:
                self._flush(entries, out)
                self._put(out, _DONE)
                return
            if isinstance(entry, _Error):
                raise entry.error
            entries.append(entry)
            if isinstance(entry, _Work):
                works += 1
            # A finished document goes on at once when no page waits for a fuller batch.
            if works >= self.batch_size or (isinstance(entry, _DocEnd) and works == 0):
                self._flush(entries, out)
                entries, works = [], 0

    def _flush(self, entries: list[_Work | _DocEnd], out: queue.Queue[Any]) -> None:
        works = [e for e in entries if isinstance(e, _Work)]
        embedded = dict(self._embed(works))  # id(work) -> embedding, failures left out
        batch: list[tuple[_Work, Embedding]] = []
        for entry in entries:
            if isinstance(entry, _Work):
                embedding = embedded.get(id(entry))
                if embedding is not None:
                    batch.append((entry, embedding))
                continue
            if batch:
                self._put(out, _Written(batch))
                batch = []
            self._put(out, entry)
        if batch:
            self._put(out, _Written(batch))
        self._emit()

    def _embed(self, works: list[_Work]) -> list[tuple[int, Embedding]]:
        """``(id(work), embedding)`` of each work embedded; failures are reported."""
        if not works:
            return []
        failures = IndexReport()  # the ingest thread adds to self.report at the same time
        done = embed_images(
            [(w.item, w.image) for w in works],
            self.embedder,
            self.pooler,
            self.store.schema.views,
            failures,
        )
        if failures.failed:
            self.report.failed.extend(failures.failed)
            self._count(handled=len(failures.failed), failures=len(failures.failed))
        by_item = {id(item): embedding for item, embedding, _ in done}
        return [(id(w), by_item[id(w.item)]) for w in works if id(w.item) in by_item]

    # -- writer thread ---------------------------------------------------------------------------

    def _write(self, inbox: queue.Queue[Any]) -> None:
        try:
            while True:
                entry = self._get(inbox)
                if entry is None:
                    continue
                if entry is _DONE:
                    return
                if isinstance(entry, _Written):
                    self._store(entry.works)
                else:
                    self._finish(entry.doc)
        except _StopSignalError:
            return
        except BaseException as error:
            self._stop_with(error)

    def _store(self, works: list[tuple[_Work, Embedding]]) -> None:
        if self.assets is not None:  # images first: a stored point always has its page image
            for work, _ in works:
                self.assets.put(work.item.id, work.image)
        self.store.upsert([self._point(work, embedding) for work, embedding in works])
        for work, _ in works:
            work.doc.written += 1
            work.image = None  # the pixels are no longer needed
        self.report.indexed += len(works)
        self._count(handled=len(works))
        logger.debug("stored %d items of %s", len(works), works[-1][0].item.source)

    def _point(self, work: _Work, embedding: Embedding) -> Point:
        return make_point(work.item, embedding, self.store, self.embedder.id, pending=work.pending)

    def _finish(self, doc: _Doc) -> None:
        """The document's items are all handled: drop older versions of it, then publish it."""
        from mmrag.store.records import SearchFilter

        where = SearchFilter.build(source=doc.source)
        current = doc.kept + doc.written  # this version's points stored now
        if self.store.count(where) > current:
            stale = [
                r.id
                for r in self.store.iter_records(where)
                if r.payload.get("source_sha256") != doc.sha256
            ]
            if stale:
                self.store.delete(stale)
                if self.assets is not None:
                    self.assets.delete(stale)
                logger.info(
                    "%s changed: removed %d points of its old version", doc.source, len(stale)
                )
        published = self.store.publish(doc.source)
        if published:
            logger.info("published %s (%d new items)", doc.source, published)
        with self._counters.lock:
            self._counters.files_done += 1

    # -- plumbing --------------------------------------------------------------------------------

    def _put(self, out: queue.Queue[Any], entry: Any) -> None:
        while True:
            if self._stop.is_set():
                raise _StopSignalError
            try:
                out.put(entry, timeout=_POLL_S)
                return
            except queue.Full:
                if threading.current_thread() is threading.main_thread():
                    self._emit()

    def _get(self, inbox: queue.Queue[Any]) -> Any:
        """The next entry, or ``None`` after a quiet poll interval; raises if the job stopped."""
        try:
            entry = inbox.get(timeout=_POLL_S)
        except queue.Empty:
            entry = None
        if isinstance(entry, _Error):
            return entry
        if self._stop.is_set():
            raise _StopSignalError
        if entry is None and threading.current_thread() is threading.main_thread():
            self._emit()
        return entry

    def _stop_with(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self._stop.set()

    def _fail_item(self, item: Item, error: BaseException, what: str) -> None:
        _report_item(self.report, item, error, what)
        self._count(handled=1, failures=1)

    def _count(self, handled: int, failures: int = 0) -> None:
        with self._counters.lock:
            self._counters.handled += handled
            self._counters.item_failures += failures

    def progress(self) -> IndexProgress:
        """A snapshot of the job's progress (safe from any thread)."""
        c = self._counters
        with c.lock:
            failed_files = len({f.source for f in self.report.failed} - self._sources)
            started = c.files_started
            total = c.files_total
            pages_total: int | None = None
            if started:
                pages_total = c.known_pages
                if total is not None:
                    remaining = max(total - started - failed_files, 0)
                    pages_total += round(c.known_pages / started * remaining)
            return IndexProgress(
                files_done=c.files_done + failed_files,
                files_total=total,
                pages_done=c.handled,
                pages_total=max(pages_total, c.handled) if pages_total is not None else None,
                indexed=self.report.indexed,
                skipped=self.report.skipped,
                failed=c.item_failures + failed_files,
                elapsed_s=time.perf_counter() - self._started,
            )

    def _emit(self, final: bool = False) -> None:
        """Call the progress callbacks (from the calling thread only)."""
        if self.on_progress is not None:
            with self._counters.lock:
                handled = self._counters.handled
            if handled > self._reported:
                self.on_progress(handled - self._reported)
                self._reported = handled
        if self.on_status is not None:
            now = time.perf_counter()
            if final or now - self._last_status >= 0.2:
                self._last_status = now
                self.on_status(self.progress())


def _passive_openmp() -> None:
    """Make OpenMP threads sleep when idle, if it is not too late (torch not imported yet).

    torch's OpenMP threads spin-wait between operations by default; next to the job's ingest
    and writer threads they then take the CPU those need (measured: 5x slower on 2 cores).
    """
    import sys

    if "torch" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        logger.debug("OMP_WAIT_POLICY=PASSIVE (OpenMP threads sleep when idle)")


# -- steps of the job, one at a time (the Ray engine runs them in its own stages) ---------------


def drop_stale_versions(items: Iterable[Item], store: VectorStore) -> Iterator[Item]:
    """Pass items through; before the first item of a source, delete the points of an older
    version of that source (same path, different content hash)."""
    from mmrag.store.records import SearchFilter

    seen: set[str] = set()
    for item in items:
        if item.source not in seen:
            seen.add(item.source)
            records, _ = store.scroll(SearchFilter.build(source=item.source), limit=1)
            stored = records[0].payload.get("source_sha256") if records else None
            if stored is not None and stored != item.source_sha256:
                removed = store.delete_source(item.source)
                logger.info(
                    "%s changed: removed %d points of its old version", item.source, removed
                )
        yield item


def skip_stored(batch: list[Item], store: VectorStore, report: IndexReport) -> list[Item]:
    """The items of ``batch`` not stored yet (counting the others in ``report.skipped``).

    A point left pending by an interrupted job counts as not stored, so it is written again
    (complete) rather than left invisible.
    """
    from mmrag.store.contract import PENDING_FIELD

    records = store.retrieve([item.id for item in batch])
    present = {r.id for r in records if not r.payload.get(PENDING_FIELD)}
    report.skipped += sum(1 for item in batch if item.id in present)
    return [item for item in batch if item.id not in present]


def load_images(items: Iterable[Item], report: IndexReport) -> list[tuple[Item, Image.Image]]:
    """``(item, image)`` for each item whose image loads; the others are reported."""
    pages = []
    for item in items:
        try:
            pages.append((item, item.load_image()))
        except (MmragError, OSError, ValueError) as error:
            _report_item(report, item, error, "read")
    return pages


def embed_images(
    pages: Sequence[tuple[Item, Image.Image]],
    embedder: ModelEmbedder,
    pooler: Pooler | None,
    views: Sequence[str],
    report: IndexReport,
) -> list[tuple[Item, Embedding, Image.Image]]:
    """Embed a batch of ``(item, image)`` with the pooled ``views``; if the batch fails, retry
    page by page so one bad page is reported alone."""
    if not pages:
        return []
    try:
        embeddings = embedder.embed_images([image for _, image in pages])
        return [
            (item, with_views(e, pooler, views), image)
            for (item, image), e in zip(pages, embeddings, strict=True)
        ]
    except (MmragError, ValueError, RuntimeError) as error:
        if len(pages) == 1:
            _report_item(report, pages[0][0], error, "embed")
            return []
        logger.warning("a batch of %d pages failed (%s); retrying one by one", len(pages), error)
        done: list[tuple[Item, Embedding, Image.Image]] = []
        for page in pages:
            done.extend(embed_images([page], embedder, pooler, views, report))
        return done


def make_point(
    item: Item, embedding: Embedding, store: VectorStore, embedder_id: str, *, pending: bool
) -> Point:
    """The point of ``item`` (with the BM25 text vector when the collection has the text
    channel), flagged :data:`~mmrag.store.contract.PENDING_FIELD` when ``pending``."""
    from mmrag.store.contract import PENDING_FIELD
    from mmrag.store.records import Point

    text_vector = None
    if store.schema.text and item.text:
        from mmrag.store.text import bm25_document

        text_vector = bm25_document(item.text)
    point = Point.from_item(item, embedding, embedder_id, text_vector=text_vector)
    if pending:
        point = dataclasses.replace(point, payload={**point.payload, PENDING_FIELD: 1})
    return point


def write_embedded(
    done: Sequence[tuple[Item, Embedding, Image.Image]],
    store: VectorStore,
    assets: AssetStore | None,
    embedder_id: str,
    *,
    pending: bool = False,
) -> int:
    """Store page images (first: a stored point always has its image), then the points
    (visible at once, or flagged ``pending`` until their document is published); returns how
    many were written."""
    if assets is not None:
        for item, _, image in done:
            assets.put(item.id, image)
    store.upsert([make_point(i, e, store, embedder_id, pending=pending) for i, e, _ in done])
    return len(done)


def _report_item(report: IndexReport, item: Item, error: BaseException, what: str) -> None:
    failure = Failure.from_exception(item.source, error)
    report.failed.append(dataclasses.replace(failure, reason=f"{item.locator}: {failure.reason}"))
    logger.warning("cannot %s %s: %s", what, item.citation(), error)


# -- functions -----------------------------------------------------------------------------------


def index_sources(
    sources: Iterable[str | os.PathLike[str]],
    *,
    embedder: ModelEmbedder,
    store: VectorStore,
    pooler: Pooler | None = None,
    assets: AssetStore | None = None,
    ingest: IngestConfig | None = None,
    force: bool = False,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_status: Callable[[IndexProgress], None] | None = None,
) -> IndexReport:
    """Index files, directories and globs as one overlapped job (see :class:`IndexJob`)."""
    job = IndexJob(
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
    embedder: ModelEmbedder,
    store: VectorStore,
    pooler: Pooler | None = None,
    assets: AssetStore | None = None,
    report: IndexReport | None = None,
    force: bool = False,
    batch_size: int | None = None,
    on_progress: Callable[[int], None] | None = None,
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
    )
    if report is not None:
        job.report = report
    return job.run(items)
