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

This module holds :class:`ServerStore` (opening the collection, the store's primitives as
client calls); the retry policy and local-mode client are in
:mod:`mmrag.store._server_connection`, and the translation of schemas, filters, query plans
and points into qdrant-client's models in :mod:`mmrag.store._server_query`.

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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mmrag.store._base import BaseStore
from mmrag.store._engine import EngineQuery
from mmrag.store._server_connection import RetryPolicy, describe_client, local_client
from mmrag.store._server_query import QdrantTranslator
from mmrag.store.contract import (
    FILTER_FIELDS,
    PENDING_FIELD,
    StoreError,
    StoreUnavailableError,
    StoreVersionError,
)
from mmrag.store.records import Point, Record, ScoredRecord, SearchFilter
from mmrag.store.schema import CollectionSchema
from mmrag.store.token_index import SERVER_SUFFIX

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from mmrag.auth import Secret
    from mmrag.config import StoreConfig

__all__ = ["RetryPolicy", "ServerStore"]

logger = logging.getLogger(__name__)

METADATA_KEY = "mmrag"

#: Qdrant's default ``optimizers_config.indexing_threshold`` (KB of vectors in a segment before
#: it gets an HNSW graph): what :meth:`ServerStore.bulk` restores when it finds 0 (a bulk block
#: that crashed).
DEFAULT_INDEXING_THRESHOLD_KB = 10_000

T = TypeVar("T")


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
        super().__init__(collection, location or describe_client(client), lock_reads=local)
        self._client = client
        # Cluster layout of a collection this store creates (None: the server's default).
        self._shard_number = shard_number
        self._replication_factor = replication_factor
        self._local = local
        self._owns_client = owns_client
        self._retry = retry if retry is not None else RetryPolicy()
        self._q = QdrantTranslator(local=local, options=self._search_options)
        self._m = self._q.m
        try:
            self._open(schema, recreate)
            self._open_token_index(recreate)
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
            client = local_client(path)
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

    def _token_store(self, schema: CollectionSchema, recreate: bool) -> ServerStore:
        return ServerStore(
            self._client,
            self._name + SERVER_SUFFIX,
            schema,
            recreate=recreate,
            location=self._location,
            retry=self._retry,
            shard_number=self._shard_number,
            replication_factor=self._replication_factor,
        )

    def _stored_schema_or_none(self) -> CollectionSchema | None:
        info = self._call("reading the collection", self._client.get_collection, self._name)
        metadata = info.config.metadata or {}
        data = metadata.get(METADATA_KEY)
        if not data:
            return None
        StoreVersionError.check(data, self._where(), remove="delete the collection")
        return CollectionSchema.from_dict(data)

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
                dense[name] = self._q.vector_params(spec)
        self._client.create_collection(
            self._name,
            vectors_config=dense,
            sparse_vectors_config=sparse or None,
            metadata={METADATA_KEY: schema.to_dict()},
            shard_number=self._shard_number,
            replication_factor=self._replication_factor,
        )
        if not self._local:  # local mode has no payload indexes (and warns about them)
            for field_name, kind in FILTER_FIELDS.items():
                self._create_index(field_name, kind)

    # -- primitives ------------------------------------------------------------------------------

    def _upsert_batch(self, points: list[Point]) -> None:
        structs = [self._q.point(p) for p in points]
        self._call(
            f"upsert of {len(structs)} points", self._client.upsert, self._name, structs, wait=True
        )

    def _delete_ids(self, ids: list[str]) -> None:
        m = self._m
        selector = m.PointIdsList(points=ids)
        self._call(f"delete of {len(ids)} points", self._client.delete, self._name, selector)

    def _delete_filter(self, filter: SearchFilter) -> None:
        selector = self._m.FilterSelector(filter=self._q.filter(filter))
        self._call("delete by filter", self._client.delete, self._name, selector)

    def _count(self, filter: SearchFilter | None) -> int:
        result = self._call(
            "count", self._client.count, self._name, count_filter=self._q.filter(filter), exact=True
        )
        return int(result.count)

    def _payload_indexes(self) -> set[str]:
        if self._local:
            return set()
        info = self._call("reading the collection", self._client.get_collection, self._name)
        return set(info.payload_schema or {})

    def _create_index(self, key: str, kind: str) -> None:
        if self._local:  # local mode has no payload indexes (and warns about them)
            return
        self._call(
            f"indexing payload field {key}",
            self._client.create_payload_index,
            self._name,
            key,
            self._q.index_type(kind),
            wait=True,
        )

    def _count_pending(self, where: SearchFilter) -> int:
        where = self._q.pending_filter(where)
        result = self._call("count", self._client.count, self._name, count_filter=where, exact=True)
        return int(result.count)

    def _clear_pending(self, where: SearchFilter) -> None:
        selector = self._m.FilterSelector(filter=self._q.pending_filter(where))
        self._call(
            f"publishing {', '.join(where.sources)}",
            self._client.delete_payload,
            self._name,
            keys=[PENDING_FIELD],
            points=selector,
            wait=True,
        )

    def _source_counts(self, filter: SearchFilter | None) -> dict[str, int]:
        total = self._count(filter)
        if total == 0:
            return {}
        response = self._call(
            "listing sources",
            self._client.facet,
            self._name,
            key="source",
            facet_filter=self._q.filter(filter),
            limit=total,
            exact=True,
        )
        return {str(hit.value): int(hit.count) for hit in response.hits if hit.count > 0}

    def _retrieve(self, ids: list[str], with_vectors: bool) -> list[Record]:
        raw = self._call(
            f"retrieve of {len(ids)} points",
            self._client.retrieve,
            self._name,
            ids=ids,
            with_payload=True,
            with_vectors=bool(with_vectors),
        )
        return [self._q.record(r) for r in raw]

    def _scroll(
        self, filter: SearchFilter | None, limit: int, offset: str | None, with_vectors: bool
    ) -> tuple[list[Record], str | None]:
        raw, next_offset = self._call(
            "scroll",
            self._client.scroll,
            self._name,
            scroll_filter=self._q.filter(filter),
            limit=limit,
            offset=offset,
            with_payload=True,
            with_vectors=bool(with_vectors),
        )
        return [self._q.record(r) for r in raw], None if next_offset is None else str(next_offset)

    def _run(self, requests: list[EngineQuery]) -> list[list[ScoredRecord]]:
        server_requests = [self._q.request(spec) for spec in requests]
        responses = self._call(
            "query", self._client.query_batch_points, self._name, requests=server_requests
        )
        return [
            [ScoredRecord(str(p.id), float(p.score), dict(p.payload or {})) for p in r.points]
            for r in responses
        ]

    def _defer_indexing(self) -> Callable[[], None] | None:
        """``indexing_threshold`` 0 until the returned call puts the previous value back."""
        if self._local:  # local mode builds no index (and ignores the setting)
            return None
        m = self._m
        try:
            config = self._call("collection info", self._client.get_collection, self._name).config
            before = config.optimizer_config.indexing_threshold
            off = m.OptimizersConfigDiff(indexing_threshold=0)
            self._call(
                "defer indexing", self._client.update_collection, self._name, optimizers_config=off
            )
        except Exception as error:  # e.g. a key that may write points but not change settings
            logger.warning(
                "%s: indexing not deferred during the bulk write (%s)", self._where(), error
            )
            return None
        # A block that crashed leaves 0 behind: then restore the engine's default.
        restore_to = before if before else DEFAULT_INDEXING_THRESHOLD_KB

        def restore() -> None:
            on = m.OptimizersConfigDiff(indexing_threshold=restore_to)
            self._call(
                "resume indexing", self._client.update_collection, self._name, optimizers_config=on
            )

        return restore

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
