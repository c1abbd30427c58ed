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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mmrag.errors import ConfigError, MmragError

if TYPE_CHECKING:
    from mmrag.store.plan import Plan
    from mmrag.store.records import Point, QueryVector, Record, ScoredRecord, SearchFilter
    from mmrag.store.schema import CollectionSchema

__all__ = [
    "FILTER_FIELDS",
    "PENDING_FIELD",
    "RRF_K",
    "SCHEMA_VERSION",
    "CollectionInfo",
    "CollectionMismatchError",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "VectorStore",
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


class StoreError(MmragError):
    """A vector-store operation failed; the message names the collection and what to do."""


class StoreLockedError(StoreError):
    """The embedded store's folder is already open (by another process or another store)."""


class StoreUnavailableError(StoreError):
    """The store's server could not be reached, even after retrying with backoff."""


class CollectionMismatchError(StoreError, ConfigError):
    """An existing collection was built with another embedder or other pooling settings."""


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
