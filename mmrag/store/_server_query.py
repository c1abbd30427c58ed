"""mmrag's store vocabulary in qdrant-client's models, for :mod:`mmrag.store.server`.

:class:`QdrantTranslator` spells a :class:`~mmrag.store.schema.VectorSpec` as collection
vector parameters, a :class:`~mmrag.store.records.SearchFilter` as a client ``Filter`` (queries
also leave out pending points), an engine query (a tree of prefetch stages, fused by RRF or
not) as a ``QueryRequest``, and a :class:`~mmrag.store.records.Point` as a ``PointStruct``; and
reads the client's points back as :class:`~mmrag.store.records.Record` s. It holds no client
and makes no calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mmrag.errors import MissingDependencyError
from mmrag.store._engine import EngineQuery, filter_matches, filter_ranges
from mmrag.store.codecs import SearchOptions, codec_spec, search_params
from mmrag.store.contract import PENDING_FIELD, RRF_K
from mmrag.store.plan import QueryNode
from mmrag.store.records import Point, QueryVector, Record, SearchFilter, SparseVector
from mmrag.store.schema import VectorSpec

__all__ = ["QdrantTranslator", "qdrant_models"]


def qdrant_models() -> Any:
    """``qdrant_client.models`` (imported on first use, with an install hint)."""
    try:
        from qdrant_client import models
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MissingDependencyError(
            "the server store needs qdrant-client: pip install qdrant-client"
        ) from exc
    return models


class QdrantTranslator:
    """Build qdrant-client requests from mmrag's specs, filters, queries and points.

    ``local`` is qdrant-client's local mode (always exact: search parameters are left out);
    ``options(node, request)`` gives a plan node's engine-neutral search options
    (:func:`mmrag.store.codecs.search_options`: the collection's schema decides, so they are
    asked at query time).
    """

    def __init__(
        self,
        *,
        local: bool,
        options: Callable[[QueryNode, EngineQuery], SearchOptions | None],
    ) -> None:
        self.m = qdrant_models()
        self._local = local
        self._options = options

    # -- the collection --------------------------------------------------------------------------

    def vector_params(self, spec: VectorSpec) -> Any:
        """The ``VectorParams`` of a dense (single- or multi-vector) vector: its codec as a
        storage datatype and, for the rescored codecs, a quantization config (a server keeps
        the originals on disk and the quantized copy in RAM)."""
        m = self.m
        codec = codec_spec(spec.codec)
        datatypes = {
            "float16": m.Datatype.FLOAT16,
            "turbo8": m.Datatype.TURBO8,
            "turbo4": m.Datatype.TURBO4,
        }
        quantization = None
        if codec.quantization == "int8":
            quantization = m.ScalarQuantization(
                scalar=m.ScalarQuantizationConfig(
                    type=m.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        elif codec.quantization is not None:
            encodings = {
                "binary1": m.BinaryQuantizationEncoding.ONE_BIT,
                "binary1.5": m.BinaryQuantizationEncoding.ONE_AND_HALF_BITS,
                "binary2": m.BinaryQuantizationEncoding.TWO_BITS,
            }
            quantization = m.BinaryQuantization(
                binary=m.BinaryQuantizationConfig(
                    always_ram=True, encoding=encodings[codec.quantization]
                )
            )
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
            datatype=datatypes.get(codec.storage),
            quantization_config=quantization,
            on_disk=True if spec.on_disk else None,
        )

    # -- filters and vectors -----------------------------------------------------------------------

    def filter(self, filter: SearchFilter | None, *, searchable: bool = False) -> Any:
        """The client filter; ``searchable`` also leaves out pending points (for queries)."""
        m = self.m
        hidden = [m.FieldCondition(key=PENDING_FIELD, match=m.MatchValue(value=1))]
        if filter is None or filter.is_empty:
            return m.Filter(must_not=hidden) if searchable else None
        return m.Filter(must=self.must(filter), must_not=hidden if searchable else None)

    def must(self, filter: SearchFilter) -> list[Any]:
        """The conditions of ``filter`` (all must hold)."""
        m = self.m
        must: list[Any] = []
        for key, values in filter_matches(filter):
            if len(values) == 1:
                must.append(m.FieldCondition(key=key, match=m.MatchValue(value=values[0])))
            else:
                must.append(m.FieldCondition(key=key, match=m.MatchAny(any=list(values))))
        for key, (lo, hi) in filter_ranges(filter):
            must.append(m.FieldCondition(key=key, range=m.Range(gte=lo, lte=hi)))
        if filter.ids:
            must.append(m.HasIdCondition(has_id=list(filter.ids)))
        return must

    def pending_filter(self, where: SearchFilter) -> Any:
        """The points ``where`` selects that are still pending (written, not yet published)."""
        m = self.m
        pending = m.FieldCondition(key=PENDING_FIELD, match=m.MatchValue(value=1))
        return m.Filter(must=[*self.must(where), pending])

    def index_type(self, kind: str) -> Any:
        """The payload index schema of a :data:`~mmrag.store.contract.FILTER_FIELDS` kind."""
        m = self.m
        if kind == "tenant":
            return m.KeywordIndexParams(type=m.KeywordIndexType.KEYWORD, is_tenant=True)
        return {
            "keyword": m.PayloadSchemaType.KEYWORD,
            "integer": m.PayloadSchemaType.INTEGER,
            "float": m.PayloadSchemaType.FLOAT,
            "bool": m.PayloadSchemaType.BOOL,
        }[kind]

    def vector(self, value: QueryVector) -> Any:
        """A vector as the client takes it: a ``SparseVector`` or nested lists of floats."""
        if isinstance(value, SparseVector):
            return self.m.SparseVector(indices=list(value.indices), values=list(value.values))
        return np.asarray(value, dtype=np.float32).tolist()

    # -- queries ---------------------------------------------------------------------------------

    def request(self, request: EngineQuery) -> Any:
        """The ``QueryRequest`` of an engine query: its root stage over its prefetch tree."""
        m = self.m
        root = request.root
        server_filter = self.filter(request.filter, searchable=True)
        children = [self._prefetch(c, request, server_filter) for c in root.children]
        if root.is_fusion:
            query, using = m.RrfQuery(rrf=m.Rrf(k=RRF_K)), None
        else:
            assert root.using is not None
            query, using = self.vector(request.vectors[root.using]), root.using
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

    def _params(self, node: QueryNode, request: EngineQuery) -> Any:
        if self._local or node.is_fusion:  # local mode is always exact (and warns on params)
            return None
        options = self._options(node, request)
        return None if options is None else search_params(options, self.m)

    def _prefetch(self, node: QueryNode, request: EngineQuery, filter: Any) -> Any:
        m = self.m
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
            query=self.vector(request.vectors[node.using]),
            using=node.using,
            limit=node.limit,
            filter=filter,
            params=self._params(node, request),
        )

    # -- points ----------------------------------------------------------------------------------

    def point(self, point: Point) -> Any:
        """A ``PointStruct``: the point's id, named vectors and payload."""
        return self.m.PointStruct(
            id=point.id,
            vector={name: self.vector(v) for name, v in point.vectors.items()},
            payload=dict(point.payload),
        )

    @staticmethod
    def record(raw: Any) -> Record:
        """A point the client returned (a ``Record``), with numpy / sparse vectors."""
        vectors: dict[str, Any] = {}
        raw_vectors = raw.vector if isinstance(raw.vector, dict) else {}
        for name, value in raw_vectors.items():
            if isinstance(value, list):
                vectors[name] = np.asarray(value, dtype=np.float32)
            else:  # a sparse vector
                vectors[name] = SparseVector(tuple(value.indices), tuple(value.values))
        return Record(id=str(raw.id), payload=dict(raw.payload or {}), vectors=vectors)
