"""Progress of an indexing job: the snapshot callers see, and the counters behind it.

Example:
    >>> from mmrag.pipeline.indexing.progress import IndexProgress
    >>> p = IndexProgress(files_done=1, files_total=4, pages_done=50, pages_total=200,
    ...                   indexed=50, skipped=0, failed=0, elapsed_s=10.0)
    >>> p.pages_per_s, p.eta_s
    (5.0, 30.0)
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmrag.types import IndexReport

__all__ = ["Counters", "Emitter", "IndexProgress"]


@dataclass(frozen=True)
class IndexProgress:
    """A snapshot of a running job, for progress bars and job status pages.

    ``pages`` are items of any kind (PDF pages, images, video frames); ``pages_done`` counts
    those indexed, skipped (already stored) and failed. ``pages_total`` is an estimate: the page
    counts of the files opened so far, plus their average for each file not opened yet
    (``None`` until a file is opened).

    Example:
        >>> from mmrag.pipeline.indexing.progress import IndexProgress
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


@dataclass
class Counters:
    """What the job's threads count, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    files_total: int | None = None
    files_started: int = 0
    files_done: int = 0
    known_pages: int = 0  # page counts of files opened (or items read, when unknown)
    handled: int = 0  # items indexed + skipped + failed
    item_failures: int = 0

    def count(self, handled: int, failures: int = 0) -> None:
        """``handled`` more items, ``failures`` of them failed."""
        with self.lock:
            self.handled += handled
            self.item_failures += failures

    def snapshot(self, report: IndexReport, sources: set[str], started: float) -> IndexProgress:
        """The progress so far (``sources``: the files opened; ``started``: perf_counter)."""
        with self.lock:
            failed_files = len({f.source for f in report.failed} - sources)
            pages_total: int | None = None
            if self.files_started:
                pages_total = self.known_pages
                if self.files_total is not None:
                    remaining = max(self.files_total - self.files_started - failed_files, 0)
                    pages_total += round(self.known_pages / self.files_started * remaining)
            return IndexProgress(
                files_done=self.files_done + failed_files,
                files_total=self.files_total,
                pages_done=self.handled,
                pages_total=max(pages_total, self.handled) if pages_total is not None else None,
                indexed=report.indexed,
                skipped=report.skipped,
                failed=self.item_failures + failed_files,
                elapsed_s=time.perf_counter() - started,
            )


class Emitter:
    """Calls ``on_progress(n)`` (items handled since the last call) and ``on_status(snapshot)``
    (at most every ``every_s`` seconds, and once at the end)."""

    def __init__(
        self,
        counters: Counters,
        on_progress: Callable[[int], None] | None,
        on_status: Callable[[IndexProgress], None] | None,
        every_s: float = 0.2,
    ) -> None:
        self.counters = counters
        self.on_progress = on_progress
        self.on_status = on_status
        self.every_s = every_s
        self._reported = 0
        self._last_status = 0.0

    def emit(self, snapshot: Callable[[], IndexProgress], *, final: bool = False) -> None:
        """Call the callbacks that are due."""
        if self.on_progress is not None:
            with self.counters.lock:
                handled = self.counters.handled
            if handled > self._reported:
                self.on_progress(handled - self._reported)
                self._reported = handled
        if self.on_status is not None:
            now = time.perf_counter()
            if final or now - self._last_status >= self.every_s:
                self._last_status = now
                self.on_status(snapshot())
