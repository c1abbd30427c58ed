"""Indexing jobs of the HTTP server (one background thread, one job at a time) and the lock
around the embedded store."""

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmrag.integrations.server.schemas import JobOut, ProgressOut
from mmrag.pipeline.pipeline import Pipeline
from mmrag.types import IndexReport

logger = logging.getLogger(__name__)

# -- the store behind one lock ------------------------------------------------------------------


class _LockedStore:
    """A vector store whose every call holds ``lock``: the embedded store is not shared across
    threads, so a search waits for the batch upsert in flight (never for the whole job)."""

    def __init__(self, store: Any, lock: threading.RLock) -> None:
        self._inner = store
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            value = getattr(self._inner, name)
        if not callable(value):
            return value

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = value(*args, **kwargs)
                if isinstance(result, Iterator):  # drain generators while holding the lock
                    result = iter(list(result))
                return result

        return locked

    def __enter__(self) -> "_LockedStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- indexing jobs ------------------------------------------------------------------------------


class _JobCancelledError(Exception):
    """Raised from the progress callback to stop a job at the next batch."""


@dataclass
class _Job:
    id: str
    inputs: list[str]
    force: bool
    check: Callable[[str], str | None] | None = None  # returns a refusal reason, or None
    tenant: str | None = None  # the owner of what the job indexes (None: the admin's)
    metadata: dict[str, Any] | None = None  # the user fields attached to every file
    hide: Callable[[str], bool] | None = None  # files left out unseen (others' uploads)
    status: str = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    files_total: int = 0
    files_done: int = 0
    pages_done: int = 0
    current: str | None = None
    report: IndexReport | None = None
    error: str | None = None

    def to_out(self) -> JobOut:
        running = (self.finished_at or time.time()) - self.started_at if self.started_at else 0.0
        rate = self.pages_done / running if running > 0 else 0.0
        fraction = self.files_done / self.files_total if self.files_total else 0.0
        if self.status == "succeeded":
            fraction = 1.0
        return JobOut(
            id=self.id,
            status=self.status,  # type: ignore[arg-type]
            inputs=self.inputs,
            progress=ProgressOut(
                files_total=self.files_total,
                files_done=self.files_done,
                pages_done=self.pages_done,
                pages_per_s=round(rate, 3),
                current=self.current,
                fraction=round(fraction, 4),
            ),
            report=self.report.to_dict() if self.report is not None else None,
            error=self.error,
            tenant=self.tenant,
            metadata=self.metadata,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
        )


class JobManager:
    """Runs indexing jobs one at a time, in submission order, in one background thread.

    Each job indexes its files one by one (so progress counts files as well as pages); a
    failing file is recorded in the job's report and the job carries on.

    Example:
        >>> from mmrag.integrations.server import JobManager                       # doctest: +SKIP
        >>> jobs = JobManager(pipeline)                                          # doctest: +SKIP
        >>> job_id = jobs.submit(["docs/"])                                      # doctest: +SKIP
        >>> jobs.get(job_id).status                                              # doctest: +SKIP
        'running'
    """

    def __init__(self, pipeline: Pipeline, *, keep: int = 200) -> None:
        self._pipeline = pipeline
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._keep = keep
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._work, name="mmrag-index", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel the running job at its next batch, drop queued ones, and join the thread."""
        self._stop.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(
        self,
        inputs: Sequence[str],
        *,
        force: bool = False,
        check: Callable[[str], str | None] | None = None,
        tenant: str | None = None,
        metadata: dict[str, Any] | None = None,
        hide: Callable[[str], bool] | None = None,
    ) -> _Job:
        """Queue a job over ``inputs`` (files or directories); returns it (status ``queued``).

        ``check(path)`` returns why a file found may not be indexed (or ``None``); the items
        are ``tenant``'s and carry the user ``metadata`` (see :meth:`Pipeline.index`); files
        for which ``hide(path)`` is true are left out without a word (not even a failure)."""
        job = _Job(uuid.uuid4().hex, list(inputs), force, check, tenant, metadata, hide)
        with self._lock:
            self._jobs[job.id] = job
            finished = [j for j in self._jobs.values() if j.finished_at is not None]
            for old in finished[: max(0, len(self._jobs) - self._keep)]:
                del self._jobs[old.id]
        self.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str, *, tenant: str | None = None) -> _Job | None:
        """The job with this id, or ``None`` (also when ``tenant`` is given and not its owner)."""
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and _visible(job, tenant) else None

    def all(self, *, tenant: str | None = None) -> list[_Job]:
        """Every job still remembered (``tenant``'s only, when given), newest first."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if _visible(j, tenant)]
        return sorted(jobs, key=lambda j: j.created_at, reverse=True)

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if self._stop.is_set():
                break
            if job is not None:
                self._run(job)
        while job is not None or not self._queue.empty():  # stopping: queued jobs never run
            if job is not None:
                job.status, job.error = "cancelled", "the server shut down before the job ran"
                job.finished_at = time.time()
            job = self._queue.get_nowait()

    def _run(self, job: _Job) -> None:
        from mmrag.pipeline.ingest import discover
        from mmrag.pipeline.ingest.errors import IngestError

        job.status, job.started_at = "running", time.time()
        report = IndexReport()
        job.report = report
        started = time.perf_counter()

        def progress(n: int) -> None:
            job.pages_done += n
            if self._stop.is_set():
                raise _JobCancelledError

        try:
            files = []
            for entry in job.inputs:
                try:
                    files.extend(discover([entry]))
                except IngestError as error:
                    report.add_failure(entry, error)
            if job.hide is not None:
                files = [f for f in files if not job.hide(str(f.path))]
            job.files_total = len(files)
            for source in files:
                if self._stop.is_set():
                    raise _JobCancelledError
                refusal = job.check(str(source.path)) if job.check is not None else None
                job.current = str(source.path)
                if refusal is not None:
                    report.add_failure(str(source.path), PermissionError(refusal))
                else:
                    done = self._pipeline.index(
                        [source],
                        metadata=job.metadata,
                        tenant=job.tenant,
                        force=job.force,
                        on_progress=progress,
                    )
                    report.merge(done)
                job.files_done += 1
            job.status = "succeeded"
        except _JobCancelledError:
            job.status, job.error = "cancelled", "the server shut down while the job was running"
        except Exception as error:  # a job never takes the worker thread down with it
            logger.exception("indexing job %s failed", job.id)
            job.status, job.error = "failed", f"{type(error).__name__}: {error}"
        finally:
            report.duration_s = time.perf_counter() - started
            job.current, job.finished_at = None, time.time()


def _visible(job: _Job, tenant: str | None) -> bool:
    """Whether ``tenant`` may see ``job`` (``None``, the admin, sees every job)."""
    return tenant is None or job.tenant == tenant
