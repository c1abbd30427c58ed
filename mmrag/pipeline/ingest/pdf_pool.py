"""Render PDF pages in worker processes, in page order, with a bounded number in flight.

Each worker process has its own pipe; page ``j`` goes to worker ``j % workers``, and since a
worker answers its tasks in order, reading the pipes round-robin yields the pages in order with
no helper threads in the parent (a thread-based executor spends much of its time fighting the
consumer for the GIL). Each in-flight page owns a shared-memory slot: the worker writes the page's
RGB samples there and sends back only its metadata and text, and the parent copies the samples
into a PIL image (the one copy any RGB PIL image needs) before the slot takes the next page. At
most ``in_flight`` pages are rendered ahead of the consumer, so memory stays bounded however long
the PDF is.

Workers start with ``forkserver`` where the platform has it (``spawn`` elsewhere): both are safe
in multi-threaded programs. The fork server starts once per program (about as long as importing
PyMuPDF) and pre-imports the worker module, so later pools start in milliseconds; ``fork`` is
there for programs known to be single-threaded. The worker code is
:mod:`mmrag.pipeline.ingest._pdf_worker`; like any multiprocessing program on spawn/forkserver,
the calling script needs the ``if __name__ == "__main__":`` guard.

Example:
    >>> from mmrag.pipeline.ingest import IngestConfig, iter_items
    >>> items = iter_items(["scans/"], IngestConfig(workers=2))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import weakref
from collections import deque
from collections.abc import Iterator
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any

from PIL import Image

from mmrag.pipeline.ingest._files import FileStamp
from mmrag.pipeline.ingest.errors import CorruptFileError
from mmrag.pipeline.ingest.pdf_render import PageRender, RenderSpec, image_from_samples

__all__ = ["PdfRenderPool", "default_start_method"]

logger = logging.getLogger(__name__)

_WORKER_MODULE = "mmrag.pipeline.ingest._pdf_worker"
_MIN_SLOT_BYTES = 1 << 20
_JOIN_TIMEOUT_S = 5.0


def default_start_method() -> str:
    """``forkserver`` where available (Linux, macOS), else ``spawn`` (Windows)."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def _stop(workers: list[tuple[Any, Connection]], slots: list[shared_memory.SharedMemory]) -> None:
    """Stop the worker processes and free the shared memory (also run at garbage collection)."""
    for _, conn in workers:
        with contextlib.suppress(OSError, ValueError):  # the worker may be gone already
            conn.send(None)
    for process, conn in workers:
        process.join(_JOIN_TIMEOUT_S)
        if process.is_alive():
            process.terminate()
            process.join(_JOIN_TIMEOUT_S)
        conn.close()
    workers.clear()
    for slot in slots:
        slot.close()
        with contextlib.suppress(FileNotFoundError):
            slot.unlink()
    slots.clear()


class PdfRenderPool:
    """Worker processes that render PDF pages for :func:`~mmrag.pipeline.ingest.pdf.pdf_items`.

    One pool serves any number of PDFs one after the other (``iter_items`` keeps one for the
    whole run); workers start on the first :meth:`render`. Close it (or use it as a context
    manager) to stop the workers and free the shared memory; garbage collection does it too.

    Example:
        >>> from mmrag.pipeline.ingest.pdf import RenderSpec
        >>> from mmrag.pipeline.ingest.pdf_pool import PdfRenderPool
        >>> with PdfRenderPool(workers=2, in_flight=8) as pool:  # doctest: +SKIP
        ...     for info, image in pool.render("a.pdf", 3, RenderSpec(), None, None, 6_000_000):
        ...         print(info.index, image.size)
    """

    def __init__(
        self, workers: int, in_flight: int | None = None, start_method: str | None = None
    ) -> None:
        if workers < 1:
            raise ValueError(f"a render pool needs at least one worker, got {workers}")
        self.workers = workers
        # Enough queued pages to keep every worker busy while the parent converts one.
        self.in_flight = max(in_flight or 3 * workers, workers + 1)
        self.start_method = start_method or default_start_method()
        self._procs: list[tuple[Any, Connection]] = []
        self._slots: list[shared_memory.SharedMemory] = []
        self._slot_size = 0
        self._finalizer = weakref.finalize(self, _stop, self._procs, self._slots)

    def __enter__(self) -> PdfRenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if self._procs:
            return
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # Takes effect only if the fork server is not running yet; harmless otherwise.
            context.set_forkserver_preload([_WORKER_MODULE])
        from mmrag.pipeline.ingest import _pdf_worker

        for number in range(self.workers):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(
                target=_pdf_worker.serve,
                args=(child_end,),
                name=f"mmrag-pdf-render-{number}",
                daemon=True,
            )
            process.start()
            child_end.close()
            self._procs.append((process, parent_end))
        logger.debug("started %d PDF render workers (%s)", self.workers, self.start_method)

    def _ensure_slots(self, nbytes: int) -> None:
        if nbytes <= self._slot_size and len(self._slots) == self.in_flight:
            return
        for slot in self._slots:
            slot.close()
            slot.unlink()
        self._slots.clear()
        self._slot_size = max(nbytes, _MIN_SLOT_BYTES)
        for _ in range(self.in_flight):
            self._slots.append(shared_memory.SharedMemory(create=True, size=self._slot_size))

    def _broken(self, path: str, index: int, err: BaseException) -> CorruptFileError:
        _stop(self._procs, [])  # restart the workers on the next render; keep the slots
        return CorruptFileError(
            path,
            f"a render worker process died while rendering page {index + 1} (PyMuPDF crashed "
            f"on this file, or the worker could not start: {type(err).__name__})",
        )

    def render(
        self,
        path: str,
        page_count: int,
        spec: RenderSpec,
        password: str | None,
        stamp: FileStamp | None,
        bytes_per_page: int,
    ) -> Iterator[tuple[PageRender, Image.Image | None]]:
        """Render every page of ``path`` in order: ``(what was found, RGB image or None)``.

        ``bytes_per_page`` sizes the shared-memory slots (a page that turns out bigger comes
        back through the pipe instead). The image is ``None`` for a blank page being skipped.
        Typed errors from the workers are raised here, in page order.
        """
        self._start()
        self._ensure_slots(int(bytes_per_page * 1.25))
        procs, slots = self._procs, self._slots
        pending: deque[tuple[int, Connection, shared_memory.SharedMemory]] = deque()
        next_page = 0

        def submit() -> None:
            nonlocal next_page
            conn = procs[next_page % len(procs)][1]
            slot = slots[next_page % len(slots)]
            conn.send((path, next_page, spec, password, stamp, slot.name, self._slot_size))
            pending.append((next_page, conn, slot))
            next_page += 1

        try:
            while next_page < page_count and len(pending) < len(slots):
                submit()
            while pending:
                index, conn, slot = pending.popleft()
                try:
                    status, payload = conn.recv()
                except (EOFError, OSError) as err:
                    pending.clear()
                    raise self._broken(path, index, err) from err
                if status != "ok":
                    raise payload
                info, inline, in_slot, stride = payload
                image = None
                if in_slot or inline is not None:
                    samples = inline if inline is not None else slot.buf
                    image = image_from_samples(
                        samples, info.full_width, info.full_height, info.box, stride
                    )
                if next_page < page_count:
                    submit()  # reuses the slot just read
                yield info, image
        finally:
            # Wait for pages still in flight: their slots must not be rewritten under the next PDF.
            while pending:
                index, conn, _ = pending.popleft()
                try:
                    conn.recv()
                except (EOFError, OSError) as err:
                    pending.clear()
                    self._broken(path, index, err)

    def close(self) -> None:
        """Stop the workers and free the shared memory (idempotent)."""
        self._finalizer()
