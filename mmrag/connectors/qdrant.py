"""The server store: a Qdrant server (URL, API key, optional gRPC) through qdrant-client.

The same class runs on qdrant-client's local mode (``QdrantClient(":memory:")`` or
``path=...``), which is how the conformance tests exercise this code path without a server.
The collection schema (embedder id, pooling settings) lives in the collection's own metadata
(Qdrant 1.16 or newer). Writes are serialised with a lock (harmless on a server; required by
local mode, which loses points under concurrent writes); in local mode reads take the lock too.

Example:
    >>> import numpy as np
    >>> from mmrag.connectors.qdrant import ServerStore
    >>> from mmrag.connectors.store import CollectionSchema, Point
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
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.connectors._base import BaseStore, EngineQuery
from mmrag.connectors.store import (
    FILTER_FIELDS,
    RRF_K,
    CollectionSchema,
    Point,
    QueryNode,
    QueryVector,
    Record,
    ScoredRecord,
    SearchFilter,
    SparseVector,
    StoreError,
    VectorSpec,
)
from mmrag.errors import MissingDependencyError

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from mmrag.auth import Secret
    from mmrag.config import StoreConfig

__all__ = ["ServerStore"]

logger = logging.getLogger(__name__)

METADATA_KEY = "mmrag"


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
        >>> from mmrag.connectors.qdrant import ServerStore
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
    ) -> None:
        local = type(getattr(client, "_client", None)).__name__ == "QdrantLocal"
        super().__init__(collection, location or _describe(client), lock_reads=local)
        self._client = client
        self._local = local
        self._owns_client = owns_client
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
    ) -> ServerStore:
        """Connect to ``url`` (or local mode: ``location=":memory:"`` or ``path=folder``)."""
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
        return cls(client, collection, schema, recreate=recreate, location=where, owns_client=True)

    @classmethod
    def from_config(
        cls, config: StoreConfig, schema: CollectionSchema | None = None, *, recreate: bool = False
    ) -> ServerStore:
        """Connect as ``[store]`` says (``url``, ``api_key``, ``prefer_grpc``, ``timeout_s``)."""
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
        )

    # -- opening ---------------------------------------------------------------------------------

    def _open(self, schema: CollectionSchema | None, recreate: bool) -> None:
        client = self._client
        try:
            exists = client.collection_exists(self._name)
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
        metadata = self._client.get_collection(self._name).config.metadata or {}
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

    def _filter(self, filter: SearchFilter | None) -> Any:
        if filter is None or filter.is_empty:
            return None
        m = self._m
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
        return m.Filter(must=must)

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
        server_filter = self._filter(request.filter)
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
        self._client.upsert(self._name, points=structs, wait=True)

    def _delete_ids(self, ids: list[str]) -> None:
        m = self._m
        self._client.delete(self._name, points_selector=m.PointIdsList(points=ids), wait=True)

    def _delete_filter(self, filter: SearchFilter) -> None:
        selector = self._m.FilterSelector(filter=self._filter(filter))
        self._client.delete(self._name, points_selector=selector, wait=True)

    def _count(self, filter: SearchFilter | None) -> int:
        return int(
            self._client.count(self._name, count_filter=self._filter(filter), exact=True).count
        )

    def _sources(self) -> list[str]:
        total = self._count(None)
        if total == 0:
            return []
        response = self._client.facet(self._name, key="source", limit=total, exact=True)
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
        raw = self._client.retrieve(
            self._name, ids=ids, with_payload=True, with_vectors=bool(with_vectors)
        )
        return [self._record(r) for r in raw]

    def _scroll(
        self, filter: SearchFilter | None, limit: int, offset: str | None, with_vectors: bool
    ) -> tuple[list[Record], str | None]:
        raw, next_offset = self._client.scroll(
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
        responses = self._client.query_batch_points(self._name, requests=server_requests)
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
            status = self._client.get_collection(self._name).status
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
            from mmrag.connectors.store import StoreLockedError

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
