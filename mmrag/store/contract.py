"""The vector-store contract: constants, errors, and the ``VectorStore`` protocol.

Two backends implement it (``mmrag.store.embedded.EmbeddedStore``: Qdrant's engine
in-process, in a folder; ``mmrag.store.server.ServerStore``: a Qdrant server through
qdrant-client). Everything here is plain Python and NumPy, so it can be imported without either
Qdrant library.

A collection holds one named vector per view of a page (the table is in
:mod:`mmrag.store.schema`).

The values a store takes and returns live in :mod:`mmrag.store.records`, the collection layout
in :mod:`mmrag.store.schema`; a third-party backend implements :class:`VectorStore` and runs the
conformance suite in :mod:`mmrag.testing.conformance.store`.

Example:
    >>> from mmrag.store.contract import PENDING_FIELD, VectorStore
    >>> PENDING_FIELD
    'mmrag_pending'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mmrag.errors import ConfigError, MmragError

if TYPE_CHECKING:
    from mmrag.store.plan import Plan
    from mmrag.store.records import Point, QueryVector, Record, ScoredRecord, SearchFilter
    from mmrag.store.schema import CollectionSchema

__all__ = [
    "FILTER_FIELDS",
    "METADATA_FIELD",
    "PENDING_FIELD",
    "RRF_K",
    "SCHEMA_VERSION",
    "TENANT_FIELD",
    "CollectionInfo",
    "CollectionMismatchError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "StoreVersionError",
    "VectorStore",
    "metadata_index_type",
]

#: Bumped when the layout of stored collections changes incompatibly. 2: point ids of
#: (tenant, canonical source, content, locator, embedder); canonical sources; user metadata
#: under ``metadata``, the reader's facts under ``details``.
SCHEMA_VERSION = 2

#: The k of reciprocal-rank fusion, 1 / (k + rank), on every backend (the usual 60).
RRF_K = 60

#: HNSW graph of the pooled multivector views (``rows``, ``tiles`` …): Qdrant's defaults.
#: m=32 / ef_construct=200 gained recall@64 on plans that *start* with such a view (0.93 ->
#: 0.98 at 5,000 pages) but took twice the index build (measured at 2,000 pages: optimize 76 s
#: vs 41 s); a plan that starts with one of these views can widen its search instead
#: (``retrieval.hnsw_ef``).
MULTI_HNSW_M = 16
MULTI_EF_CONSTRUCT = 100

#: HNSW graph of the ``distinct`` view, where the default plan starts: denser, because a graph
#: over MaxSim between pages navigates poorly. Measured on ``benchmarks/scale.py``'s 10,000
#: page-like pages (200 queries; ``distinct@32 -> full@10``): exact search over ``distinct``
#: keeps the exact top-1 for 1.00 of the queries, the m=16 / ef_construct=100 graph for 0.76
#: (0.96 with ``hnsw_ef`` 1,024), this one for 0.985 (0.995 with ``hnsw_ef`` 256).
DISTINCT_HNSW_M = 32
DISTINCT_EF_CONSTRUCT = 200

#: Payload flag (value ``1``) of points an indexing job has written for a document it has not
#: finished yet. Queries never return such points; the job removes the flag
#: (:meth:`VectorStore.publish`) once the document's last item is stored, so a half-indexed
#: document is never visible to search. (An integer, not a bool: Qdrant Edge's ``MatchValue``
#: takes ``True`` for the integer 1.)
PENDING_FIELD = "mmrag_pending"

#: Payload field of a page stored with its ``full`` tokens merged (``full_pool_factor`` > 1):
#: which stored vector each original token went into
#: (:func:`mmrag.store.tokens.pack_assignment`), so region citations still find the patches.
FULL_MERGE_FIELD = "mmrag_full_merge"

#: The payload field of the tenant that owns a point (multi-tenant servers).
TENANT_FIELD = "tenant"

#: The payload field of the user's own fields (``metadata.<key>``: indexed on first use).
METADATA_FIELD = "metadata"

#: Payload fields that get a payload index (and can be filtered on cheaply), with their type;
#: ``tenant`` is a keyword index flagged ``is_tenant`` (Qdrant co-locates a tenant's points).
FILTER_FIELDS: Mapping[str, str] = {
    "source": "keyword",
    "source_sha256": "keyword",
    "content_id": "keyword",
    "modality": "keyword",
    "page": "integer",
    PENDING_FIELD: "integer",
    TENANT_FIELD: "tenant",
}


def metadata_index_type(value: object) -> str | None:
    """The payload index type of a user metadata value (``keyword``, ``integer``, ``float``,
    ``bool``), or ``None`` for values that cannot be indexed (empty lists).

    Example:
        >>> [metadata_index_type(v) for v in ("hr", 2024, 1.5, True, ["a", "b"])]
        ['keyword', 'integer', 'float', 'bool', 'keyword']
    """
    if isinstance(value, list | tuple):
        return metadata_index_type(value[0]) if value else None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "keyword"


class StoreError(MmragError):
    """A vector-store operation failed; the message names the collection and what to do."""


class StoreLockedError(StoreError):
    """The embedded store's folder is already open (by another process or another store)."""


class StoreUnavailableError(StoreError):
    """The store's server could not be reached, even after retrying with backoff."""


class CollectionMismatchError(StoreError, ConfigError):
    """An existing collection was built with another embedder or other pooling settings."""


class StoreCorruptError(StoreError):
    """The store's files are damaged (unreadable, truncated, or fewer points than were stored).

    The message names the folder or file, what is wrong, and how to recover (restore a backup,
    or rebuild with ``mmrag index PATHS --recreate``).
    """


class StoreVersionError(StoreError):
    """The collection was written with another layout version of mmrag (its point ids or
    payloads differ); it has to be rebuilt.

    Example:
        >>> from mmrag.store.contract import SCHEMA_VERSION, StoreVersionError
        >>> StoreVersionError.check({"version": SCHEMA_VERSION}, "/idx/docs")  # current: fine
        >>> try:
        ...     StoreVersionError.check({"version": 0}, "/idx/docs")
        ... except StoreVersionError as exc:
        ...     print(str(exc).split(":")[0])
        /idx/docs was built by an older mmrag (layout version 0; this is 2)
    """

    @classmethod
    def check(
        cls, stored: Mapping[str, Any], where: str, *, remove: str = "delete the folder"
    ) -> None:
        """Raise unless the stored schema dict ``stored`` has this mmrag's layout version
        (a missing ``version`` counts as current); ``where`` names the collection, ``remove``
        how to delete it by hand."""
        version = stored.get("version", SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool):
            raise StoreCorruptError(
                f"{where}: the stored layout version {version!r} is not a number; rebuild the "
                f"collection: `mmrag index PATHS --recreate`, or {remove}"
            )
        if version < SCHEMA_VERSION:
            raise cls(
                f"{where} was built by an older mmrag (layout version {version}; this is "
                f"{SCHEMA_VERSION}): its point ids cannot be reused. Rebuild it: `mmrag index "
                f"PATHS --recreate` (deletes the collection and indexes again), or {remove}."
            )
        if version > SCHEMA_VERSION:
            raise cls(
                f"{where} was built by a newer mmrag (layout version {version}; this is "
                f"{SCHEMA_VERSION}): upgrade mmrag to open it (`pip install -U mmrag`), or "
                f"rebuild it with this one: `mmrag index PATHS --recreate`."
            )


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
    #: Vectors in the collection's token index (``None``: it keeps none).
    token_vectors: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        data = dataclasses.asdict(self)
        data["schema"] = self.schema.to_dict()
        return data


# -- the protocol --------------------------------------------------------------------------------


@runtime_checkable
class VectorStore(Protocol):
    """What every store backend provides.

    Writes are safe from several threads of one process. ``query`` runs a whole retrieval
    plan as one engine query (nested prefetch); ``score`` gives exact scores of chosen points
    on chosen vectors (used to record every stage's score of the final hits). Neither returns
    points flagged :data:`PENDING_FIELD` (documents an indexing job has not finished).

    Example:
        >>> from mmrag.store import open_store           # doctest: +SKIP
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

    def delete_source(self, source: str, *, tenant: str | None = None) -> int:
        """Delete every point of ``source`` (of ``tenant`` only, when given); returns how many
        were deleted."""
        ...

    def publish(self, source: str, *, tenant: str | None = None) -> int:
        """Make the pending points of ``source`` (see :data:`PENDING_FIELD`; of ``tenant``
        only, when given) visible to search; returns how many were pending."""
        ...

    def sources(self, filter: SearchFilter | None = None) -> list[str]:
        """The distinct sources in the collection (those matching ``filter``), sorted."""
        ...

    def source_counts(self, filter: SearchFilter | None = None) -> dict[str, int]:
        """Each source (matching ``filter``) and how many points it has."""
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

    def bulk(self) -> AbstractContextManager[None]:
        """A block of writes with index building deferred to its end (then :meth:`optimize`)."""
        ...

    def info(self) -> CollectionInfo:
        """Counts and schema."""
        ...

    def close(self) -> None:
        """Flush and release the store (the embedded folder's lock included)."""
        ...
