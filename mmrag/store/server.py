"""The server store: a Qdrant server (URL, API key, optional gRPC) through qdrant-client.

The same class runs on qdrant-client's local mode (``QdrantClient(":memory:")`` or
``path=...``), which is how the conformance tests exercise this code path without a server.
The collection schema (embedder id, pooling settings) lives in the collection's own metadata
(Qdrant 1.16 or newer). Writes are serialised with a lock (harmless on a server; required by
local mode, which loses points under concurrent writes); in local mode reads take the lock too.

A call that fails because the server cannot be reached (connection refused or reset, timeout,
HTTP 408 / 429 / 502 / 503 / 504, gRPC UNAVAILABLE) is retried with exponential backoff
(:class:`RetryPolicy`; ``store.retries`` and ``store.retry_backoff_s`` in the config). Every
call retried is idempotent (upserts and deletes by deterministic id). When the retries run out,
:class:`~mmrag.store.contract.StoreUnavailableError` names the URL, the operation and the
last error.

Example:
    >>> import numpy as np
    >>> from mmrag.store.server import ServerStore
    >>> from mmrag.store import CollectionSchema, Point
    >>> schema = CollectionSchema(embedder_id="toy", kind="single", dim=4)
    >>> store = ServerStore.connect(location=":memory:", collection="docs", schema=schema)
    >>> _ = store.upsert([Point("6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59",
    ...                         {"dense": np.ones(4, np.float32)}, {"source": "a.png"})])
    >>> store.count(), store.sources()
    (1, ['a.png'])
    >>> store.close()
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mmrag.errors import MissingDependencyError
from mmrag.store._base import BaseStore, EngineQuery
from mmrag.store.contract import (
    FILTER_FIELDS,
    PENDING_FIELD,
    RRF_K,
    StoreError,
    StoreUnavailableError,
)
from mmrag.store.plan import QueryNode
from mmrag.store.records import Point, QueryVector, Record, ScoredRecord, SearchFilter, SparseVector
from mmrag.store.schema import CollectionSchema, VectorSpec

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from mmrag.auth import Secret
    from mmrag.config import StoreConfig

__all__ = ["RetryPolicy", "ServerStore"]

logger = logging.getLogger(__name__)

METADATA_KEY = "mmrag"

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


def _models() -> Any:
    try:
        from qdrant_client import models
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingDependencyError(
            "the server store needs qdrant-client: pip install qdrant-client"
        ) from exc
    return models


class ServerStore(BaseStore):
    """A collection on a Qdrant server (or in qdrant-client's local mode).

    Use :meth:`connect` (URL / API key / gRPC, or ``location=":memory:"`` / ``path=`` for local
    mode) or :meth:`from_config`, or pass your own ``QdrantClient``.

    Example:
        >>> from mmrag.store.server import ServerStore
        >>> key = Secret.from_env_var("QDRANT_API_KEY")                   # doctest: +SKIP
        >>> store = ServerStore.connect("http://localhost:6333", collection="docs",
        ...                             schema=schema, api_key=key)       # doctest: +SKIP
    """

    backend = "server"

    def __init__(
        self,
        client: QdrantClient,
        collection: str = "mmrag",
        schema: CollectionSchema | None = None,
        *,
        recreate: bool = False,
        location: str | None = None,
        owns_client: bool = False,
        retry: RetryPolicy | None = None,
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ) -> None:
        local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        super().__init__(collection, location or _describe(client), lock_reads=local)
        self._client = client
        # Cluster layout of a collection this store creates (None: the server's default).
        self._shard_number = shard_number
        self._replication_factor = replication_factor
        self._local = local
        self._owns_client = owns_client
        self._retry = retry if retry is not None else RetryPolicy()
        self._m = _models()
        try:
            self._open(schema, recreate)
        except BaseException:
            if owns_client:
                client.close()
            raise

    @classmethod
    def connect(
        cls,
        url: str | None = None,
        *,
        collection: str = "mmrag",
        schema: CollectionSchema | None = None,
        api_key: Secret | str | None = None,
        prefer_grpc: bool = False,
        timeout_s: float = 30.0,
        location: str | None = None,
        path: str | None = None,
        recreate: bool = False,
        retries: int = 5,
        retry_backoff_s: float = 0.5,
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ) -> ServerStore:
        """Connect to ``url`` (or local mode: ``location=":memory:"`` or ``path=folder``).

        ``shard_number`` and ``replication_factor`` lay out a collection created on a Qdrant
        cluster (``None``: the server's defaults); an existing collection keeps its layout.

        A call that cannot reach the server is retried ``retries`` times with exponential
        backoff starting at ``retry_backoff_s`` (see :class:`RetryPolicy`).
        """
        from qdrant_client import QdrantClient

        key = api_key.resolve_value() if hasattr(api_key, "resolve_value") else api_key
        if url is not None:
            client = QdrantClient(
                url=url, api_key=key, prefer_grpc=prefer_grpc, timeout=int(max(timeout_s, 1))
            )
            where = url
        elif path is not None:
            client = _local_client(path)
            where = f"{path} (qdrant-client local mode)"
        else:
            client = QdrantClient(location=location or ":memory:")
            where = f"{location or ':memory:'} (qdrant-client local mode)"
        return cls(
            client,
            collection,
            schema,
            recreate=recreate,
            location=where,
            owns_client=True,
            retry=RetryPolicy(retries, retry_backoff_s),
            shard_number=shard_number,
            replication_factor=replication_factor,
        )

    @classmethod
    def from_config(
        cls, config: StoreConfig, schema: CollectionSchema | None = None, *, recreate: bool = False
    ) -> ServerStore:
        """Connect as ``[store]`` says (``url``, ``api_key``, ``prefer_grpc``, ``timeout_s``,
        ``retries``, ``retry_backoff_s``)."""
        if not config.url:
            raise StoreError(
                "store.backend = 'server' needs store.url, e.g. http://localhost:6333 "
                "(start one with `docker compose up qdrant`)"
            )
        api_key = config.api_key.resolve_value() if config.api_key is not None else None
        return cls.connect(
            config.url,
            collection=config.collection,
            schema=schema,
            api_key=api_key,
            prefer_grpc=config.prefer_grpc,
            timeout_s=config.timeout_s,
            recreate=recreate,
            retries=config.retries,
            retry_backoff_s=config.retry_backoff_s,
            shard_number=config.shard_number,
            replication_factor=config.replication_factor,
        )

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with this store's retry policy."""
        return self._retry.call(what, fn, *args, where=self._location, **kwargs)

    # -- opening ---------------------------------------------------------------------------------

    def _open(self, schema: CollectionSchema | None, recreate: bool) -> None:
        client = self._client
        try:
            exists = self._call("opening the collection", client.collection_exists, self._name)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot reach Qdrant at {self._location}: {exc}") from exc
        if exists and recreate:
            client.delete_collection(self._name)
            logger.info("deleted %s (recreate=True)", self._where())
            exists = False
        if exists:
            stored = self._stored_schema()
            if schema is not None:
                stored.check_compatible(schema, self._where())
            self._schema = stored
            return
        if schema is None:
            raise StoreError(
                f"there is no {self._where()}; index documents first (the collection is created "
                "with the embedder's schema on the first write)"
            )
        self._create(schema)
        self._schema = schema
        if self._stored_schema_or_none() is None:
            client.delete_collection(self._name)
            raise StoreError(
                f"the Qdrant server at {self._location} does not keep collection metadata, where "
                "mmrag records the embedder; use Qdrant 1.16 or newer"
            )
        logger.info("created %s for %s", self._where(), schema.embedder_id)

    def _stored_schema_or_none(self) -> CollectionSchema | None:
        info = self._call("reading the collection", self._client.get_collection, self._name)
        metadata = info.config.metadata or {}
        data = metadata.get(METADATA_KEY)
        return CollectionSchema.from_dict(data) if data else None

    def _stored_schema(self) -> CollectionSchema:
        stored = self._stored_schema_or_none()
        if stored is None:
            raise StoreError(
                f"{self._where()} exists but was not created by mmrag (it has no "
                f"{METADATA_KEY!r} metadata naming its embedder); use another collection name"
            )
        return stored

    def _create(self, schema: CollectionSchema) -> None:
        m = self._m
        dense, sparse = {}, {}
        for name, spec in schema.vectors().items():
            if spec.sparse:
                sparse[name] = m.SparseVectorParams(modifier=m.Modifier.IDF)
            else:
                dense[name] = self._vector_params(spec)
        self._client.create_collection(
            self._name,
            vectors_config=dense,
            sparse_vectors_config=sparse or None,
            metadata={METADATA_KEY: schema.to_dict()},
            shard_number=self._shard_number,
            replication_factor=self._replication_factor,
        )
        if not self._local:  # local mode has no payload indexes (and warns about them)
            types = {"keyword": m.PayloadSchemaType.KEYWORD, "integer": m.PayloadSchemaType.INTEGER}
            for field_name, kind in FILTER_FIELDS.items():
                self._client.create_payload_index(self._name, field_name, types[kind], wait=True)

    def _vector_params(self, spec: VectorSpec) -> Any:
        m = self._m
        return m.VectorParams(
            size=spec.dim,
            distance=m.Distance.COSINE if spec.distance == "cosine" else m.Distance.DOT,
            multivector_config=(
                m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM)
                if spec.multivector
                else None
            ),
            hnsw_config=(
                m.HnswConfigDiff(m=0)
                if not spec.hnsw
                else m.HnswConfigDiff(m=spec.hnsw_m, ef_construct=spec.ef_construct)
                if spec.hnsw_m or spec.ef_construct
                else None
            ),
            datatype=m.Datatype.FLOAT16 if spec.datatype == "float16" else None,
            on_disk=True if spec.on_disk else None,
        )

    # -- translation -------------------------------------------------------------------------------

    def _filter(self, filter: SearchFilter | None, *, searchable: bool = False) -> Any:
        """The client filter; ``searchable`` also leaves out pending points (for queries)."""
        m = self._m
        hidden = [m.FieldCondition(key=PENDING_FIELD, match=m.MatchValue(value=1))]
        if filter is None or filter.is_empty:
            return m.Filter(must_not=hidden) if searchable else None
        must: list[Any] = []
        for key, values in (("source", filter.sources), ("modality", filter.modalities)):
            if len(values) == 1:
                must.append(m.FieldCondition(key=key, match=m.MatchValue(value=values[0])))
            elif values:
                must.append(m.FieldCondition(key=key, match=m.MatchAny(any=list(values))))
        if filter.page_range is not None:
            lo, hi = filter.page_range
            must.append(m.FieldCondition(key="page", range=m.Range(gte=lo, lte=hi)))
        for key, value in filter.metadata.items():
            must.append(m.FieldCondition(key=f"metadata.{key}", match=m.MatchValue(value=value)))
        if filter.ids:
            must.append(m.HasIdCondition(has_id=list(filter.ids)))
        return m.Filter(must=must, must_not=hidden if searchable else None)

    def _vector(self, value: QueryVector) -> Any:
        if isinstance(value, SparseVector):
            return self._m.SparseVector(indices=list(value.indices), values=list(value.values))
        return np.asarray(value, dtype=np.float32).tolist()

    def _params(self, node: QueryNode, request: EngineQuery) -> Any:
        if self._local or node.is_fusion:  # local mode is always exact (and warns on params)
            return None
        if request.exact:
            return self._m.SearchParams(exact=True)
        if request.hnsw_ef is not None and self._uses_hnsw(node.using):
            return self._m.SearchParams(hnsw_ef=max(request.hnsw_ef, node.limit))
        return None

    def _prefetch(self, node: QueryNode, request: EngineQuery, filter: Any) -> Any:
        m = self._m
        children = [self._prefetch(c, request, filter) for c in node.children]
        if node.is_fusion:
            return m.Prefetch(
                prefetch=children,
                query=m.RrfQuery(rrf=m.Rrf(k=RRF_K)),
                limit=node.limit,
                filter=filter,
            )
        assert node.using is not None
        return m.Prefetch(
            prefetch=children or None,
            query=self._vector(request.vectors[node.using]),
            using=node.using,
            limit=node.limit,
            filter=filter,
            params=self._params(node, request),
        )

    def _request(self, request: EngineQuery) -> Any:
        m = self._m
        root = request.root
        server_filter = self._filter(request.filter, searchable=True)
        children = [self._prefetch(c, request, server_filter) for c in root.children]
        if root.is_fusion:
            query, using = m.RrfQuery(rrf=m.Rrf(k=RRF_K)), None
        else:
            assert root.using is not None
            query, using = self._vector(request.vectors[root.using]), root.using
        return m.QueryRequest(
            prefetch=children or None,
            query=query,
            using=using,
            filter=server_filter,
            params=self._params(root, request),
            limit=root.limit,
            with_payload=request.with_payload,
            with_vector=False,
        )

    # -- primitives ------------------------------------------------------------------------------

    def _upsert_batch(self, points: list[Point]) -> None:
        m = self._m
        structs = [
            m.PointStruct(
                id=p.id,
                vector={name: self._vector(v) for name, v in p.vectors.items()},
                payload=dict(p.payload),
            )
            for p in points
        ]
        self._call(
            f"upsert of {len(structs)} points", self._client.upsert, self._name, structs, wait=True
        )

    def _delete_ids(self, ids: list[str]) -> None:
        m = self._m
        selector = m.PointIdsList(points=ids)
        self._call(f"delete of {len(ids)} points", self._client.delete, self._name, selector)

    def _delete_filter(self, filter: SearchFilter) -> None:
        selector = self._m.FilterSelector(filter=self._filter(filter))
        self._call("delete by filter", self._client.delete, self._name, selector)

    def _count(self, filter: SearchFilter | None) -> int:
        result = self._call(
            "count", self._client.count, self._name, count_filter=self._filter(filter), exact=True
        )
        return int(result.count)

    def _pending_filter(self, source: str) -> Any:
        m = self._m
        return m.Filter(
            must=[
                m.FieldCondition(key="source", match=m.MatchValue(value=source)),
                m.FieldCondition(key=PENDING_FIELD, match=m.MatchValue(value=1)),
            ]
        )

    def _count_pending(self, source: str) -> int:
        where = self._pending_filter(source)
        result = self._call("count", self._client.count, self._name, count_filter=where, exact=True)
        return int(result.count)

    def _clear_pending(self, source: str) -> None:
        selector = self._m.FilterSelector(filter=self._pending_filter(source))
        self._call(
            f"publishing {source}",
            self._client.delete_payload,
            self._name,
            keys=[PENDING_FIELD],
            points=selector,
            wait=True,
        )

    def _sources(self) -> list[str]:
        total = self._count(None)
        if total == 0:
            return []
        response = self._call(
            "listing sources", self._client.facet, self._name, key="source", limit=total, exact=True
        )
        return [str(hit.value) for hit in response.hits if hit.count > 0]

    def _record(self, raw: Any) -> Record:
        vectors: dict[str, Any] = {}
        raw_vectors = raw.vector if isinstance(raw.vector, dict) else {}
        for name, value in raw_vectors.items():
            if isinstance(value, list):
                vectors[name] = np.asarray(value, dtype=np.float32)
            else:  # a sparse vector
                vectors[name] = SparseVector(tuple(value.indices), tuple(value.values))
        return Record(id=str(raw.id), payload=dict(raw.payload or {}), vectors=vectors)

    def _retrieve(self, ids: list[str], with_vectors: bool) -> list[Record]:
        raw = self._call(
            f"retrieve of {len(ids)} points",
            self._client.retrieve,
            self._name,
            ids=ids,
            with_payload=True,
            with_vectors=bool(with_vectors),
        )
        return [self._record(r) for r in raw]

    def _scroll(
        self, filter: SearchFilter | None, limit: int, offset: str | None, with_vectors: bool
    ) -> tuple[list[Record], str | None]:
        raw, next_offset = self._call(
            "scroll",
            self._client.scroll,
            self._name,
            scroll_filter=self._filter(filter),
            limit=limit,
            offset=offset,
            with_payload=True,
            with_vectors=bool(with_vectors),
        )
        return [self._record(r) for r in raw], None if next_offset is None else str(next_offset)

    def _run(self, requests: list[EngineQuery]) -> list[list[ScoredRecord]]:
        server_requests = [self._request(spec) for spec in requests]
        responses = self._call(
            "query", self._client.query_batch_points, self._name, requests=server_requests
        )
        return [
            [ScoredRecord(str(p.id), float(p.score), dict(p.payload or {})) for p in r.points]
            for r in responses
        ]

    def _optimize(self) -> None:
        """A server optimizes in the background: wait (up to 10 minutes) until it is done."""
        if self._local:
            return
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            status = self._call("optimize", self._client.get_collection, self._name).status
            if str(getattr(status, "value", status)).lower() == "green":
                return
            time.sleep(0.5)
        logger.warning("%s is still optimizing after 10 minutes", self._where())

    def _close(self) -> None:
        if self._owns_client:
            self._client.close()


def _local_client(path: str) -> QdrantClient:
    from qdrant_client import QdrantClient

    try:
        return QdrantClient(path=path)
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            from mmrag.store.contract import StoreLockedError

            raise StoreLockedError(
                f"the local-mode store {path} is already open by another client; close it, or "
                "run a Qdrant server to share one index between processes"
            ) from exc
        raise


def _describe(client: Any) -> str:
    init = getattr(client, "init_options", {}) or {}
    return str(
        init.get("url") or init.get("host") or init.get("path") or init.get("location") or "qdrant"
    )
