"""Reaching a Qdrant server: which errors are worth retrying, the retry policy (exponential
backoff with jitter), and opening a qdrant-client local-mode folder.

:class:`RetryPolicy` is re-exported by :mod:`mmrag.store.server`; its retries are logged under
that module's name (``mmrag.store.server``), the server store's log.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from mmrag.store.contract import StoreLockedError, StoreUnavailableError

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

__all__ = ["MAX_BACKOFF_S", "RetryPolicy", "describe_client", "is_transient", "local_client"]

# The server store's log: a retry is reported under the store's module, where users look.
logger = logging.getLogger("mmrag.store.server")

#: The longest wait between two retries, in seconds.
MAX_BACKOFF_S = 30.0

#: HTTP statuses that mean "try again later" (timeouts, rate limits, gateway and load errors).
_TRANSIENT_STATUS = frozenset({408, 429, 502, 503, 504})

T = TypeVar("T")


def is_transient(error: BaseException) -> bool:
    """True for errors of reaching the server (worth retrying), False for the server's answer
    to a bad request (retrying would fail the same way)."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(error, UnexpectedResponse):
        return error.status_code in _TRANSIENT_STATUS
    if isinstance(error, ResponseHandlingException | ConnectionError | TimeoutError):
        return True
    try:
        import httpx

        if isinstance(error, httpx.TransportError):
            return True
    except ImportError:  # pragma: no cover - a dependency of qdrant-client
        pass
    code = getattr(error, "code", None)
    if callable(code) and type(error).__module__.startswith("grpc"):
        try:
            name = getattr(code(), "name", "")
        except Exception:  # pragma: no cover - a gRPC error without a status
            return False
        return name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Retry calls that fail to reach the server: ``retries`` more attempts, waiting about
    ``backoff_s``, then twice as long each time (with jitter, at most :data:`MAX_BACKOFF_S`).

    Example:
        >>> from mmrag.store.server import RetryPolicy
        >>> policy = RetryPolicy(retries=2, backoff_s=0.01)
        >>> policy.call("ping", lambda: "pong", where="http://localhost:6333")
        'pong'
    """

    retries: int = 5
    backoff_s: float = 0.5

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): half of the exponential
        step for sure, the other half at random (so many clients do not retry in lockstep)."""
        step = min(self.backoff_s * 2**attempt, MAX_BACKOFF_S)
        return step / 2 + random.uniform(0, step / 2)

    def call(self, what: str, fn: Callable[..., T], *args: Any, where: str, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried on transient errors; ``what`` and ``where`` name
        the operation and the server in the log and in the final error."""
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                if not is_transient(error):
                    raise
                if attempt == self.retries:
                    elapsed = time.monotonic() - started
                    raise StoreUnavailableError(
                        f"Qdrant at {where} is unreachable: {what} failed {attempt + 1} times "
                        f"over {elapsed:.1f} s (last error: {type(error).__name__}: {error}). "
                        "Nothing already written is lost. Check that the server is running "
                        "(e.g. `docker compose up qdrant`) and that store.url is right, then try "
                        "again; an indexing job resumes where it stopped."
                    ) from error
                pause = self.delay(attempt)
                logger.warning(
                    "Qdrant at %s: %s failed (%s: %s); retry %d of %d in %.2f s",
                    where,
                    what,
                    type(error).__name__,
                    error,
                    attempt + 1,
                    self.retries,
                    pause,
                    extra={"url": where, "operation": what, "retry": attempt + 1, "delay_s": pause},
                )
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


def local_client(path: str) -> QdrantClient:
    """A qdrant-client local-mode client on the folder ``path`` (one process at a time)."""
    from qdrant_client import QdrantClient

    try:
        return QdrantClient(path=path)
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise StoreLockedError(
                f"the local-mode store {path} is already open by another client; close it, or "
                "run a Qdrant server to share one index between processes"
            ) from exc
        raise


def describe_client(client: Any) -> str:
    """Where ``client`` points (its URL, host, folder or location), for messages."""
    init = getattr(client, "init_options", {}) or {}
    return str(
        init.get("url") or init.get("host") or init.get("path") or init.get("location") or "qdrant"
    )
