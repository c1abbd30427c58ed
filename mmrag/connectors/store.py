"""The vector-store contract: collection schema, points, filters, and the ``VectorStore`` protocol.

Two backends implement it (``qdrant_edge.EmbeddedStore``: Qdrant's engine in-process, in a
folder; ``qdrant.ServerStore``: a Qdrant server through qdrant-client). Everything here is plain
Python and NumPy, so it can be imported without either Qdrant library.

A collection holds one named vector per view of a page (see DESIGN.md, "Store"):

==========  =====================================================  ==========================
name        what                                                   index
==========  =====================================================  ==========================
``dense``   single-vector embedders                                HNSW
``global``  mean of the page's tokens, a 1-vector multivector      HNSW, MaxSim
``rows`` …  other pooled views (multivectors)                      HNSW, MaxSim
``muvera``  MUVERA fixed-dimensional encoding (plain vector, dot)  HNSW
``full``    every visual token of the page                         none (m=0), float16, disk
``text``    BM25 sparse vector of the page's text layer            sparse, IDF
==========  =====================================================  ==========================

Example:
    >>> from mmrag.connectors.store import CollectionSchema, SearchFilter
    >>> schema = CollectionSchema(embedder_id="colqwen2@v1", kind="multi", dim=128,
    ...                           views=("global", "rows"))
    >>> sorted(schema.vectors())
    ['full', 'global', 'rows']
    >>> [name for name, spec in schema.vectors().items() if spec.hnsw]
    ['global', 'rows']
    >>> SearchFilter(sources=("a.pdf",), page_range=(1, 5)).is_empty
    False
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from mmrag.errors import ConfigError, MmragError

if TYPE_CHECKING:
    from mmrag.config import PoolingConfig
    from mmrag.pipeline.plan import Plan, Stage
    from mmrag.types import Embedding, Item

__all__ = [
    "FILTER_FIELDS",
    "PENDING_FIELD",
    "SCHEMA_VERSION",
    "CollectionInfo",
    "CollectionMismatchError",
    "CollectionSchema",
    "Point",
    "QueryNode",
    "QueryVector",
    "Record",
    "ScoredRecord",
    "SearchFilter",
    "SparseVector",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "VectorSpec",
    "VectorStore",
    "plan_tree",
]

#: Bumped when the layout of stored collections changes incompatibly.
SCHEMA_VERSION = 1

#: The k of reciprocal-rank fusion, 1 / (k + rank), on every backend (the usual 60).
RRF_K = 60

#: HNSW graph of the pooled multivector views (``rows``, ``tiles`` …): denser than the default.
MULTI_HNSW_M = 32
MULTI_EF_CONSTRUCT = 200

#: Payload flag (value ``1``) of points an indexing job has written for a document it has not
#: finished yet. Queries never return such points; the job removes the flag
#: (:meth:`VectorStore.publish`) once the document's last item is stored, so a half-indexed
#: document is never visible to search. (An integer, not a bool: Qdrant Edge's ``MatchValue``
#: takes ``True`` for the integer 1.)
PENDING_FIELD = "mmrag_pending"

#: Payload fields that get a payload index (and can be filtered on cheaply), with their type.
FILTER_FIELDS: Mapping[str, str] = {
    "source": "keyword",
    "source_sha256": "keyword",
    "modality": "keyword",
    "page": "integer",
    PENDING_FIELD: "integer",
}

#: Pooling parameters that change each view's vectors (the rest are irrelevant to it).
_VIEW_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "tiles": ("tile_size",),
    "smooth_rows": ("window",),
    "hier": ("pool_factor",),
    "muvera": ("muvera",),
}


class StoreError(MmragError):
    """A vector-store operation failed; the message names the collection and what to do."""


class StoreLockedError(StoreError):
    """The embedded store's folder is already open (by another process or another store)."""


class StoreUnavailableError(StoreError):
    """The store's server could not be reached, even after retrying with backoff."""


class CollectionMismatchError(StoreError, ConfigError):
    """An existing collection was built with another embedder or other pooling settings."""


# -- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparseVector:
    """A sparse vector (the BM25 ``text`` channel): parallel ``indices`` and ``values``."""

    indices: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.indices) != len(self.values):
            raise ValueError(
                f"a sparse vector needs as many values as indices; got {len(self.indices)} "
                f"indices and {len(self.values)} values"
            )


#: What a query searches one named vector with.
QueryVector = np.ndarray | SparseVector


@dataclass(frozen=True)
class VectorSpec:
    """How one named vector is stored and indexed.

    ``hnsw_m`` / ``ef_construct`` override the engine's HNSW defaults (16 / 100) for this
    vector; ``None`` keeps them.
    """

    name: str
    dim: int
    multivector: bool = False
    distance: Literal["cosine", "dot"] = "cosine"
    hnsw: bool = True
    datatype: Literal["float32", "float16"] = "float32"
    on_disk: bool = False
    sparse: bool = False
    hnsw_m: int | None = None
    ef_construct: int | None = None


@dataclass(frozen=True)
class CollectionSchema:
    """What a collection stores, recorded with it and checked whenever it is opened.

    ``kind="single"`` stores one ``dense`` vector per item. ``kind="multi"`` stores ``full``
    (every visual token, exact MaxSim only) plus one named vector per pooled view. ``text=True``
    adds a BM25 sparse channel over the items' text layer (for hybrid RRF retrieval).

    Example:
        >>> from mmrag.config import PoolingConfig
        >>> from mmrag.connectors.store import CollectionSchema
        >>> s = CollectionSchema.for_embedder("colqwen2@v1", "multi", 128,
        ...                                   PoolingConfig(views=["global", "muvera"]))
        >>> s.vectors()["muvera"].dim, s.vectors()["muvera"].multivector
        (10240, False)
        >>> CollectionSchema.from_dict(s.to_dict()) == s
        True
    """

    embedder_id: str
    kind: Literal["single", "multi"]
    dim: int
    views: tuple[str, ...] = ()
    pooling: Mapping[str, Any] = field(default_factory=dict)
    text: bool = False
    muvera_dim: int | None = None
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.embedder_id:
            raise ConfigError("a collection schema needs the embedder id")
        if self.kind not in ("single", "multi"):
            raise ConfigError(f"schema kind must be 'single' or 'multi', got {self.kind!r}")
        if self.dim < 1:
            raise ConfigError(f"schema dim must be >= 1, got {self.dim}")
        object.__setattr__(self, "views", tuple(self.views))
        if self.kind == "single" and self.views:
            raise ConfigError(
                f"pooled views {list(self.views)} apply to multi-vector embedders only; "
                f"{self.embedder_id} is single-vector (set pooling.views = [])"
            )
        reserved = {"full", "dense", "text"} & set(self.views)
        if reserved:
            raise ConfigError(f"{sorted(reserved)} are not pooled views; remove them from views")
        if "muvera" in self.views and not self.muvera_dim:
            m = dict(self.pooling.get("muvera") or {})
            k_sim, dim_proj, r_reps = m.get("k_sim", 5), m.get("dim_proj", 16), m.get("r_reps", 20)
            object.__setattr__(self, "muvera_dim", int(r_reps * 2**k_sim * dim_proj))

    @classmethod
    def for_embedder(
        cls,
        embedder_id: str,
        kind: Literal["single", "multi"],
        dim: int,
        pooling: PoolingConfig | None = None,
        *,
        text: bool = False,
    ) -> CollectionSchema:
        """The schema for an embedder (its ``id``, ``kind``, ``dim``) and pooling settings."""
        if kind == "single" or pooling is None:
            return cls(embedder_id=embedder_id, kind=kind, dim=dim, text=text)
        settings = pooling.model_dump(mode="json")
        return cls(
            embedder_id=embedder_id,
            kind=kind,
            dim=dim,
            views=tuple(pooling.views),
            pooling=_relevant_pooling(tuple(pooling.views), settings),
            text=text,
        )

    @classmethod
    def for_embedder_object(
        cls, embedder: Any, pooling: PoolingConfig | None = None, *, text: bool = False
    ) -> CollectionSchema:
        """The schema for an :class:`~mmrag.embedders.base.Embedder` instance."""
        return cls.for_embedder(embedder.id, embedder.kind, embedder.dim, pooling, text=text)

    def vectors(self) -> dict[str, VectorSpec]:
        """Every named vector of the collection, with how it is stored and indexed."""
        specs: dict[str, VectorSpec] = {}
        if self.kind == "single":
            specs["dense"] = VectorSpec("dense", self.dim)
        else:
            for view in self.views:
                if view == "muvera":
                    assert self.muvera_dim is not None
                    specs[view] = VectorSpec(view, self.muvera_dim, distance="dot")
                elif view == "global":
                    specs[view] = VectorSpec(view, self.dim, multivector=True)
                else:
                    # A graph over pages compared by MaxSim of their pooled vectors navigates
                    # poorly with the default m=16 / ef_construct=100 (measured: recall@64 0.93
                    # vs exact at 5,000 pages); a denser graph fixes it for a longer build.
                    specs[view] = VectorSpec(
                        view,
                        self.dim,
                        multivector=True,
                        hnsw_m=MULTI_HNSW_M,
                        ef_construct=MULTI_EF_CONSTRUCT,
                    )
            specs["full"] = VectorSpec(
                "full", self.dim, multivector=True, hnsw=False, datatype="float16", on_disk=True
            )
        if self.text:
            specs["text"] = VectorSpec("text", 0, sparse=True, hnsw=False)
        return specs

    @property
    def vector_names(self) -> tuple[str, ...]:
        """The named vectors a plan can use."""
        return tuple(self.vectors())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (stored with the collection)."""
        data = dataclasses.asdict(self)
        data["views"] = list(self.views)
        data["pooling"] = dict(self.pooling)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CollectionSchema:
        """Read back :meth:`to_dict`'s output."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["views"] = tuple(kwargs.get("views", ()))
        return cls(**kwargs)

    def differences(self, other: CollectionSchema) -> list[str]:
        """Human-readable differences ``field: self vs other`` (empty when compatible)."""
        out = []
        for name in ("version", "embedder_id", "kind", "dim", "views", "pooling", "text"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "views":
                mine, theirs = list(mine), list(theirs)
            if name == "pooling":
                mine, theirs = dict(mine), dict(theirs)
            if mine != theirs:
                out.append(f"{name}: {mine!r} vs {theirs!r}")
        return out

    def check_compatible(self, requested: CollectionSchema, where: str) -> None:
        """Raise :class:`CollectionMismatchError` unless ``requested`` matches this schema."""
        diffs = self.differences(requested)
        if diffs:
            raise CollectionMismatchError(
                f"{where} was built with another embedder or pooling (stored vs requested): "
                + "; ".join(diffs)
                + ". Use a new collection name (store.collection), the embedder and pooling it "
                "was built with, or pass recreate=True to delete it and build it again."
            )

    def validate_point(self, point: Point) -> None:
        """Check a point's vectors against the schema; the error names the item and the fix."""
        specs = self.vectors()
        missing = [n for n, s in specs.items() if n not in point.vectors and not s.sparse]
        if missing:
            raise ConfigError(
                f"point {point.id} ({point.payload.get('source', '?')}) has no {missing} "
                f"vector(s); this collection stores {list(specs)} — compute the pooled views "
                "(mmrag.embedders.pooling.Pooler) before upserting"
            )
        for name, vector in point.vectors.items():
            spec = specs.get(name)
            if spec is None:
                raise ConfigError(
                    f"point {point.id}: vector {name!r} is not in this collection "
                    f"(it stores {list(specs)})"
                )
            if spec.sparse:
                if not isinstance(vector, SparseVector):
                    raise ConfigError(f"point {point.id}: {name!r} must be a SparseVector")
                continue
            array = np.asarray(vector)
            want_ndim = 2 if spec.multivector else 1
            if array.ndim != want_ndim or array.shape[-1] != spec.dim or array.shape[0] == 0:
                shape = f"(n, {spec.dim})" if spec.multivector else f"({spec.dim},)"
                raise ConfigError(
                    f"point {point.id}: vector {name!r} must have shape {shape}, got "
                    f"{array.shape}; the collection was created for {self.embedder_id}"
                )


def _relevant_pooling(views: tuple[str, ...], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The pooling settings that change the stored views (so unrelated edits don't mismatch)."""
    out: dict[str, Any] = {}
    for view in views:
        for key in _VIEW_SETTINGS.get(view, ()):
            if key in settings:
                out[key] = settings[key]
    return out


@dataclass(frozen=True)
class CollectionInfo:
    """What :meth:`VectorStore.info` reports."""

    name: str
    backend: str
    location: str
    schema: CollectionSchema
    points: int
    sources: int
    hnsw_vectors_per_point: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        data = dataclasses.asdict(self)
        data["schema"] = self.schema.to_dict()
        return data


@dataclass(frozen=True)
class Point:
    """One point to upsert: its id, a vector per name, and the payload.

    Example:
        >>> import numpy as np
        >>> from mmrag.connectors.store import Point
        >>> from mmrag.types import Embedding, Item
        >>> item = Item(source="a.png", source_sha256="0" * 64, modality="image")
        >>> p = Point.from_item(item, Embedding(dense=np.ones(4, np.float32)), "clip@1")
        >>> sorted(p.vectors), p.payload["source"]
        (['dense'], 'a.png')
    """

    id: str
    vectors: Mapping[str, QueryVector]
    payload: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_item(
        cls,
        item: Item,
        embedding: Embedding,
        embedder_id: str,
        *,
        text_vector: SparseVector | None = None,
    ) -> Point:
        """A point for ``item`` embedded by ``embedder_id``: deterministic id, payload, vectors.

        ``embedding.pooled`` supplies the pooled views; ``visual()`` the ``full`` multi-vector.
        """
        vectors: dict[str, QueryVector] = {}
        if embedding.kind == "single":
            assert embedding.dense is not None
            vectors["dense"] = embedding.dense
        else:
            vectors["full"] = embedding.visual()
            vectors.update(embedding.pooled)
        if text_vector is not None:
            vectors["text"] = text_vector
        bound = item if item.embedder_id == embedder_id else item.with_embedder(embedder_id)
        return cls(id=bound.id, vectors=vectors, payload=bound.to_payload())


@dataclass(frozen=True)
class Record:
    """A stored point read back: id, payload and (when asked for) vectors."""

    id: str
    payload: Mapping[str, Any]
    vectors: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoredRecord:
    """A query result: id, score and payload."""

    id: str
    score: float
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchFilter:
    """A payload filter, applied at every retrieval stage.

    Conditions combine with AND; each tuple matches any of its values. ``page_range`` is
    inclusive at both ends (either end may be ``None``). ``metadata`` matches items whose
    user metadata has exactly these key/value pairs.

    Example:
        >>> from mmrag.connectors.store import SearchFilter
        >>> f = SearchFilter.build(source="a.pdf", modality=["pdf_page", "image"], pages=(2, None))
        >>> f.sources, f.modalities, f.page_range
        (('a.pdf',), ('pdf_page', 'image'), (2, None))
    """

    sources: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    page_range: tuple[int | None, int | None] | None = None
    metadata: Mapping[str, str | int | bool] = field(default_factory=dict)
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "modalities", tuple(str(m) for m in self.modalities))
        object.__setattr__(self, "ids", tuple(str(i) for i in self.ids))
        if self.page_range is not None:
            lo, hi = self.page_range
            if lo is None and hi is None:
                object.__setattr__(self, "page_range", None)
            elif lo is not None and hi is not None and lo > hi:
                raise ConfigError(f"page range ({lo}, {hi}): the start is after the end")
            else:
                object.__setattr__(self, "page_range", (lo, hi))
        for key, value in self.metadata.items():
            if not isinstance(value, str | int | bool):
                raise ConfigError(
                    f"metadata filter {key!r}: only str, int and bool values can be matched, "
                    f"got {type(value).__name__}"
                )

    @classmethod
    def build(
        cls,
        *,
        source: str | Iterable[str] | None = None,
        modality: str | Iterable[str] | None = None,
        pages: tuple[int | None, int | None] | None = None,
        metadata: Mapping[str, str | int | bool] | None = None,
    ) -> SearchFilter:
        """Build a filter from single values or lists."""
        return cls(
            sources=_as_tuple(source),
            modalities=_as_tuple(modality),
            page_range=pages,
            metadata=dict(metadata or {}),
        )

    @property
    def is_empty(self) -> bool:
        """True when the filter matches every point."""
        return not (self.sources or self.modalities or self.page_range or self.metadata or self.ids)

    def with_ids(self, ids: Iterable[str]) -> SearchFilter:
        """This filter further restricted to the given point ids."""
        return dataclasses.replace(self, ids=tuple(ids))


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


# -- plans as engine queries ---------------------------------------------------------------------


@dataclass(frozen=True)
class QueryNode:
    """One node of a nested-prefetch query: search ``using`` (or fuse ``children`` with RRF)
    over the candidates of ``children`` (none: the whole collection), keeping ``limit``."""

    using: str | None
    limit: int
    children: tuple[QueryNode, ...] = ()

    @property
    def is_fusion(self) -> bool:
        """True for an RRF fusion of the children."""
        return self.using is None


def plan_tree(plan: Plan) -> QueryNode:
    """The nested-prefetch tree of a plan: the last stage at the root, the first at the leaves.

    Each stage rescoring the previous stage's candidates is a node whose child is the previous
    stage. A fused stage ``(a@50 + b@50)`` is an RRF node whose children are ``a`` and ``b``,
    each over the previous stage's candidates.

    Example:
        >>> from mmrag.pipeline.plan import parse_plan
        >>> from mmrag.connectors.store import plan_tree
        >>> root = plan_tree(parse_plan("global@200 -> rows@50 -> full@10"))
        >>> root.using, root.children[0].using, root.children[0].children[0].limit
        ('full', 'rows', 200)
    """
    node: QueryNode | None = None
    for stage in plan.stages:
        node = _stage_node(stage, node)
    assert node is not None
    return node


def _stage_node(stage: Stage, below: QueryNode | None) -> QueryNode:
    children = () if below is None else (below,)
    if stage.fuse:
        members = tuple(_stage_node(member, below) for member in stage.fuse)
        return QueryNode(using=None, limit=stage.limit, children=members)
    return QueryNode(using=stage.using, limit=stage.limit, children=children)


# -- the protocol --------------------------------------------------------------------------------


@runtime_checkable
class VectorStore(Protocol):
    """What every store backend provides.

    Writes are safe from several threads of one process. ``query`` runs a whole retrieval
    plan as one engine query (nested prefetch); ``score`` gives exact scores of chosen points
    on chosen vectors (used to record every stage's score of the final hits). Neither returns
    points flagged :data:`PENDING_FIELD` (documents an indexing job has not finished).

    Example:
        >>> from mmrag.connectors import open_store           # doctest: +SKIP
        >>> store = open_store(config.store, schema)          # doctest: +SKIP
        >>> store.upsert(points); store.optimize()            # doctest: +SKIP
        >>> store.count(SearchFilter.build(source="a.pdf"))   # doctest: +SKIP
        12
    """

    @property
    def name(self) -> str:
        """The collection name."""
        ...

    @property
    def schema(self) -> CollectionSchema:
        """The collection's schema (as stored with it)."""
        ...

    def upsert(self, points: Iterable[Point], *, batch_size: int = 64) -> int:
        """Insert or overwrite points by id (idempotent); returns how many were written."""
        ...

    def delete(self, ids: Iterable[str]) -> None:
        """Delete points by id (missing ids are ignored)."""
        ...

    def delete_source(self, source: str) -> int:
        """Delete every point of ``source``; returns how many were deleted."""
        ...

    def publish(self, source: str) -> int:
        """Make the pending points of ``source`` (see :data:`PENDING_FIELD`) visible to search;
        returns how many were pending."""
        ...

    def sources(self) -> list[str]:
        """The distinct sources in the collection, sorted."""
        ...

    def count(self, filter: SearchFilter | None = None) -> int:
        """How many points match ``filter`` (all points when ``None``)."""
        ...

    def existing(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored (for resumable indexing)."""
        ...

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        """The stored records of ``ids`` (in the given order, missing ids left out)."""
        ...

    def scroll(
        self,
        filter: SearchFilter | None = None,
        *,
        limit: int = 256,
        offset: str | None = None,
        with_vectors: bool = False,
    ) -> tuple[list[Record], str | None]:
        """One page of records and the offset of the next page (``None`` at the end)."""
        ...

    def iter_records(
        self, filter: SearchFilter | None = None, *, batch_size: int = 256
    ) -> Iterator[Record]:
        """Every record matching ``filter``, page by page."""
        ...

    def query(
        self,
        plan: Plan,
        vectors: Mapping[str, QueryVector],
        filter: SearchFilter | None = None,
        *,
        with_payload: bool = True,
        hnsw_ef: int | None = None,
    ) -> list[ScoredRecord]:
        """Run ``plan`` as one nested-prefetch query; ``vectors`` maps vector name to query.

        ``hnsw_ef``: the HNSW candidate list of HNSW stages (at least the stage's limit).
        """
        ...

    def query_batch(
        self,
        plan: Plan,
        batch: Sequence[Mapping[str, QueryVector]],
        filter: SearchFilter | None = None,
        *,
        with_payload: bool = True,
        hnsw_ef: int | None = None,
    ) -> list[list[ScoredRecord]]:
        """Run ``plan`` for several queries at once."""
        ...

    def score(
        self,
        ids: Sequence[str],
        vectors: Mapping[str, QueryVector],
    ) -> dict[str, dict[str, float]]:
        """Exact scores of points ``ids`` on each named vector: ``{name: {id: score}}``."""
        ...

    def optimize(self) -> None:
        """Build the indexes (HNSW) of what was written; call after a large upsert."""
        ...

    def info(self) -> CollectionInfo:
        """Counts and schema."""
        ...

    def close(self) -> None:
        """Flush and release the store (the embedded folder's lock included)."""
        ...
