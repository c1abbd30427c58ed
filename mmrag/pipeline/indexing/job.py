"""The local indexing driver: the steps of :mod:`.steps` in three overlapping threads.

Three stages overlap, joined by bounded queues, so a job runs at the speed of its slowest stage
and holds a bounded number of pages however large the input::

    ingest thread ──queue──► embed (the calling thread) ──queue──► writer thread
    (discovery, PDF pages      (batches through the model,         (page images to the asset
     rendered by the ingest     pooled views)                       store, points upserted,
     worker processes, skip                                         documents published)
     of stored items)

PyMuPDF is only used from the ingest thread (and its worker processes).

Idempotent, resumable and crash safe as every driver of the steps is (see :mod:`.steps`):
deterministic point ids, stored items skipped, points written pending and published per
document, a changed file's old version searchable until the new one is complete.

A page that cannot be rendered or embedded is reported in the :class:`~mmrag.types.IndexReport`
with its reason, and the job carries on. A store that stays unreachable (after the server
backend's retries) stops the job with :class:`IndexStoppedError`: what was written is kept, and
running the job again resumes it.

Example:
    >>> from mmrag.pipeline.indexing import IndexJob                          # doctest: +SKIP
    >>> IndexJob(embedder=embedder, store=store).run_sources(["docs/"]).summary()  # doctest: +SKIP
    '12 indexed, 0 skipped (already present), 1 failed'
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmrag.device import passive_openmp
from mmrag.errors import IndexStoppedError
from mmrag.pipeline.indexing import steps
from mmrag.pipeline.indexing.progress import Counters, Emitter, IndexProgress
from mmrag.types import IndexReport, Item

if TYPE_CHECKING:
    from mmrag.embedders.base import Embedder
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.indexing.labels import Labels
    from mmrag.pipeline.ingest import IngestConfig
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore

__all__ = ["IndexJob", "IndexProgress", "IndexStoppedError"]

logger = logging.getLogger(__name__)

#: How often (seconds) a waiting stage wakes up to check whether the job was stopped.
_POLL_S = 0.1


# -- what flows between the stages --------------------------------------------------------------


@dataclass
class _Doc:
    """One source's bookkeeping, handed from stage to stage in order."""

    source: str
    sha256: str
    expected: int | None = None  # page count, when the reader knows it (PDFs)
    tenant: str | None = None  # the owner: old versions are dropped among its points only
    items: int = 0  # items read (ingest thread)
    kept: int = 0  # items already stored and not rewritten (ingest thread)
    written: int = 0  # items written by this job (writer thread)


@dataclass
class _Work:
    work: steps.Work
    doc: _Doc


@dataclass
class _DocEnd:
    doc: _Doc


@dataclass
class _Written:
    works: list[_Work]


@dataclass
class _Error:
    error: BaseException


_DONE = object()


class _StopSignalError(Exception):
    """Raised inside a stage when another stage stopped the job."""


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
        embedder: Embedder,
        store: VectorStore,
        pooler: Pooler | None = None,
        assets: AssetStore | None = None,
        ingest: IngestConfig | None = None,
        force: bool = False,
        batch_size: int | None = None,
        queue_batches: int = 2,
        on_progress: Callable[[int], None] | None = None,
        on_status: Callable[[IndexProgress], None] | None = None,
        labels: Labels | None = None,
    ) -> None:
        self.embedder = embedder
        self.labels = labels
        self.tenant = labels.tenant if labels is not None else None
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
        self.report = IndexReport()
        self._counters = Counters()
        self._emitter = Emitter(self._counters, on_progress, on_status)
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._started = 0.0
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
        from mmrag.pipeline.ingest.discovery import SourceKind

        labels, path = self.labels, os.fspath(source.path)
        if labels is not None and source.kind is not None and labels.rejects(path, self.report):
            return True  # bad metadata: the file is not even read
        if source.kind not in (SourceKind.PDF, SourceKind.DOCUMENT):
            return False
        pages = steps.stored_whole(self.store, path, force=self.force, labels=self.labels)
        if pages is None:
            return False
        published = steps.finish(self.store, self.assets, path, None, tenant=self.tenant)
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
        passive_openmp()
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
            with self.store.bulk():  # a server builds its graphs once, at the end
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
        from mmrag.pipeline.ingest.discovery import as_inputs, expand, is_unsupported

        found: list[Any] = []
        for entry in as_inputs(inputs):
            try:
                found.extend(expand(entry))
            except IngestError as err:
                self.report.add_failure(str(err.source), err)
                logger.warning("Skipping %s: %s", err.source, err.reason)
        strict = config is not None and config.fail_unsupported
        total = sum(1 for s in found if s.explicit or strict or not is_unsupported(s))
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
                if self.labels is not None and self.labels.rejects(raw.source, self.report):
                    continue
                item = next(iter(steps.bind([raw], eid, self.labels)))
                if doc is None or (item.source, item.source_sha256, item.tenant) != (
                    doc.source,
                    doc.sha256,
                    doc.tenant,
                ):
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
        expected = item.details.get("page_count") if item.details else None
        expected = expected if isinstance(expected, int) else None
        doc = _Doc(item.source, item.source_sha256, expected, item.tenant)
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
        skipped = self.report.skipped
        works = steps.check(chunk, self.store, self.report, force=self.force)
        if not self.force:
            steps.reuse(works, self.store)
        kept = self.report.skipped - skipped
        doc.kept += kept
        self._count(handled=kept)
        for work in works:
            failures = len(self.report.failed)
            if not steps.load([work], self.report):
                self._count(handled=1, failures=len(self.report.failed) - failures)
                continue
            self._put(out, _Work(work, doc))

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
        embedded = {id(w) for w in self._embed(works)}  # failures left out
        batch: list[_Work] = []
        for entry in entries:
            if isinstance(entry, _Work):
                if id(entry.work) in embedded:
                    batch.append(entry)
                continue
            if batch:
                self._put(out, _Written(batch))
                batch = []
            self._put(out, entry)
        if batch:
            self._put(out, _Written(batch))
        self._emit()

    def _embed(self, works: list[_Work]) -> list[steps.Work]:
        """The works embedded; failures are reported."""
        if not works:
            return []
        failures = IndexReport()  # the ingest thread adds to self.report at the same time
        views = self.store.schema.views
        done = steps.embed([w.work for w in works], self.embedder, self.pooler, views, failures)
        if failures.failed:
            self.report.failed.extend(failures.failed)
            self._count(handled=len(failures.failed), failures=len(failures.failed))
        return done

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

    def _store(self, works: list[_Work]) -> None:
        steps.write([w.work for w in works], self.store, self.assets)
        for w in works:
            w.doc.written += 1
        self.report.indexed += len(works)
        self.report.reused += sum(w.work.reused is not None for w in works)
        self._count(handled=len(works))

    def _finish(self, doc: _Doc) -> None:
        """The document's items are all handled: drop older versions of it, then publish it."""
        current = doc.kept + doc.written
        steps.finish(
            self.store, self.assets, doc.source, doc.sha256, current=current, tenant=doc.tenant
        )
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

    def _count(self, handled: int, failures: int = 0) -> None:
        self._counters.count(handled, failures)

    def progress(self) -> IndexProgress:
        """A snapshot of the job's progress (safe from any thread)."""
        return self._counters.snapshot(self.report, self._sources, self._started)

    def _emit(self, final: bool = False) -> None:
        """Call the progress callbacks (from the calling thread only)."""
        self._emitter.emit(self.progress, final=final)
