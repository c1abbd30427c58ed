"""What both store backends share: batching, write locking, validation, scoring by id.

A backend subclasses :class:`BaseStore` and implements the ``_``-prefixed primitives in its own
engine's types; everything user-facing (the :class:`~mmrag.store.contract.VectorStore`
methods) is written once here.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError
from mmrag.store import token_index
from mmrag.store._engine import EngineQuery, filter_matches, filter_ranges
from mmrag.store.codecs import SearchOptions, search_options
from mmrag.store.contract import (
    FILTER_FIELDS,
    METADATA_FIELD,
    CollectionInfo,
    StoreError,
    metadata_index_type,
)
from mmrag.store.plan import Plan, QueryNode, plan_tree
from mmrag.store.records import Point, QueryVector, Record, ScoredRecord, SearchFilter
from mmrag.store.schema import CollectionSchema

if TYPE_CHECKING:
    from mmrag.types import Embedding, Item

__all__ = ["BaseStore", "EngineQuery", "filter_matches", "filter_ranges"]

logger = logging.getLogger(__name__)


class BaseStore(abc.ABC):
    """Shared implementation of :class:`~mmrag.store.contract.VectorStore`."""

    backend: str = ""

    def __init__(self, name: str, location: str, *, lock_reads: bool = False) -> None:
        self._name = name
        self._location = location
        self._schema: CollectionSchema | None = None
        self._write_lock = threading.RLock()
        # qdrant-client's local mode is plain Python: reads during a write can see half of it.
        self._read_lock: Any = self._write_lock if lock_reads else contextlib.nullcontext()
        self._closed = False
        self._indexed: set[str] | None = None  # payload keys with an index (read on first write)
        self._tokens: BaseStore | None = None  # the token index (see mmrag.store.token_index)

    # -- identity ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The collection name."""
        return self._name

    @property
    def location(self) -> str:
        """Where the collection lives (folder or URL)."""
        return self._location

    @property
    def schema(self) -> CollectionSchema:
        """The collection's schema, as stored with it."""
        assert self._schema is not None
        return self._schema

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._location!r}, collection={self._name!r})"

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self) -> str:
        return f"collection {self._name!r} at {self._location}"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._where()} is closed; open it again with open_store(...)")

    # -- writes ----------------------------------------------------------------------------------

    def upsert(
        self, points: Iterable[Point | tuple[Item, Embedding]], *, batch_size: int = 64
    ) -> int:
        """Insert or overwrite points by their deterministic ids; returns how many were written.

        Accepts prepared :class:`Point` records or ``(item, embedding)`` pairs (the embedding's
        ``pooled`` views must hold the collection's views). Idempotent: writing the same item
        twice leaves one point.
        """
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self._check_open()
        written = 0
        batch: list[Point] = []
        for entry in points:
            point = entry if isinstance(entry, Point) else Point.for_collection(*entry, self.schema)
            self.schema.validate_point(point)
            batch.append(point)
            if len(batch) >= batch_size:
                written += self._write_batch(batch)
                batch = []
        if batch:
            written += self._write_batch(batch)
        return written

    def _write_batch(self, batch: list[Point]) -> int:
        unique = list({p.id: p for p in batch}.values())  # last write of an id wins
        with self._write_lock:
            self._on_write()
            self._index_metadata(unique)
            if self._tokens is not None:  # first: a crash leaves no page the token search misses
                token_index.write_tokens(self._tokens, unique)
            self._upsert_batch(unique)
        logger.debug("upserted %d points into %s", len(unique), self._where())
        return len(batch)

    def delete(self, ids: Iterable[str]) -> None:
        """Delete points by id (missing ids are ignored)."""
        self._check_open()
        ids = [str(i) for i in ids]
        if ids:
            with self._write_lock:
                self._on_write()
                self._delete_ids(ids)
                if self._tokens is not None:
                    self._tokens.delete(token_index.page_token_ids(ids))

    def _index_metadata(self, points: list[Point]) -> None:
        """Give every user metadata field a payload index the first time it is written (its
        type from the value), so filters on it stay fast at any size."""
        wanted: dict[str, str] = {}
        for point in points:
            for key, value in (point.payload.get(METADATA_FIELD) or {}).items():
                kind = metadata_index_type(value)
                if kind is not None:
                    wanted.setdefault(f"{METADATA_FIELD}.{key}", kind)
        if not wanted:
            return
        if self._indexed is None:
            self._indexed = self._payload_indexes() | set(FILTER_FIELDS)
        for key, kind in wanted.items():
            if key not in self._indexed:
                self._create_index(key, kind)
                self._indexed.add(key)
                logger.info("created a %s payload index on %s in %s", kind, key, self._where())

    def delete_source(self, source: str, *, tenant: str | None = None) -> int:
        """Delete every point of ``source`` (of ``tenant`` only, when given); returns how
        many were deleted."""
        self._check_open()
        selector = SearchFilter(sources=(source,), tenant=tenant)
        with self._write_lock:
            n = self._count(selector)
            if n:
                # Their ids first: their token vectors are deleted after them.
                pages = [] if self._tokens is None else [r.id for r in self.iter_records(selector)]
                self._on_write()
                self._delete_filter(selector)
                if self._tokens is not None:
                    self._tokens.delete(token_index.page_token_ids(pages))
        logger.info("deleted %d points of %s from %s", n, source, self._where())
        return n

    def publish(self, source: str, *, tenant: str | None = None) -> int:
        """Make the pending points of ``source`` (of ``tenant`` only, when given) visible to
        search; returns how many were pending (see :data:`~mmrag.store.contract.PENDING_FIELD`)."""
        self._check_open()
        where = SearchFilter(sources=(source,), tenant=tenant)
        with self._write_lock:
            n = self._count_pending(where)
            if n:
                self._clear_pending(where)
        return n

    def optimize(self) -> None:
        """Build the indexes (HNSW) of what was written; call after a large upsert."""
        self._check_open()
        with self._write_lock:
            self._optimize()
            if self._tokens is not None:
                self._tokens.optimize()

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Write many points with index building deferred until the block ends.

        A server's ``indexing_threshold`` is 0 for the block (new points are found by brute
        force meanwhile) and put back at the end, so its HNSW graphs are built once, not while
        segments fill and merge (:meth:`optimize` waits for them). The embedded store builds
        its graphs in :meth:`optimize` anyway. Indexing jobs use it.

        Example:
            >>> with store.bulk():                                # doctest: +SKIP
            ...     store.upsert(points)
            >>> store.optimize()                                  # doctest: +SKIP
        """
        self._check_open()
        restore = self._defer_indexing()
        try:
            with self._tokens.bulk() if self._tokens is not None else contextlib.nullcontext():
                yield
        finally:
            if restore is not None and not self._closed:
                restore()

    def _defer_indexing(self) -> Callable[[], None] | None:
        """Turn index building off; return what turns it back on (``None``: nothing to do)."""
        return None

    def close(self) -> None:
        """Flush and release the store. Closing twice is harmless."""
        if self._closed:
            return
        with self._write_lock:
            if self._tokens is not None:
                self._tokens.close()
            self._close()
            self._closed = True

    # -- reads -----------------------------------------------------------------------------------

    def count(self, filter: SearchFilter | None = None, *, searchable: bool = False) -> int:
        """How many points match ``filter`` (all points when ``None``); ``searchable`` leaves
        out the pending ones, which queries do not see yet."""
        self._check_open()
        with self._read_lock:
            n = self._count(filter)
            return n - self._count_pending(filter or SearchFilter()) if searchable and n else n

    def sources(self, filter: SearchFilter | None = None) -> list[str]:
        """The distinct sources in the collection (those matching ``filter``), sorted."""
        return sorted(self.source_counts(filter))

    def source_counts(self, filter: SearchFilter | None = None) -> dict[str, int]:
        """Each source (matching ``filter``) and how many points it has, by source."""
        self._check_open()
        with self._read_lock:
            counts = self._source_counts(filter)
        return dict(sorted(counts.items()))

    def existing(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored (looked up 1,000 at a time)."""
        ids = [str(i) for i in ids]
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            found.update(r.id for r in self.retrieve(ids[start : start + 1000]))
        return found

    def retrieve(self, ids: Sequence[str], *, with_vectors: bool = False) -> list[Record]:
        """The stored records of ``ids``, in the given order (missing ids are left out)."""
        self._check_open()
        with self._read_lock:
            found = {r.id: r for r in self._retrieve([str(i) for i in ids], with_vectors)}
        return [found[str(i)] for i in ids if str(i) in found]

    def scroll(
        self,
        filter: SearchFilter | None = None,
        *,
        limit: int = 256,
        offset: str | None = None,
        with_vectors: bool = False,
    ) -> tuple[list[Record], str | None]:
        """One page of records (ordered by id) and the offset of the next page."""
        self._check_open()
        with self._read_lock:
            return self._scroll(filter, limit, offset, with_vectors)

    def iter_records(
        self, filter: SearchFilter | None = None, *, batch_size: int = 256
    ) -> Iterator[Record]:
        """Every record matching ``filter``, fetched ``batch_size`` at a time."""
        offset: str | None = None
        while True:
            records, offset = self.scroll(filter, limit=batch_size, offset=offset)
            yield from records
            if offset is None:
                return

    def query(
        self,
        plan: Plan,
        vectors: Mapping[str, QueryVector],
        filter: SearchFilter | None = None,
        *,
        with_payload: bool = True,
        hnsw_ef: int | None = None,
    ) -> list[ScoredRecord]:
        """Run ``plan`` as one nested-prefetch query (see :func:`plan_tree`).

        ``hnsw_ef`` widens (or narrows) the HNSW search of the plan's HNSW stages; each uses
        at least its own limit. ``None`` keeps the engine's default (the vector's ef_construct).
        """
        return self.query_batch(
            plan, [vectors], filter, with_payload=with_payload, hnsw_ef=hnsw_ef
        )[0]

    def query_batch(
        self,
        plan: Plan,
        batch: Sequence[Mapping[str, QueryVector]],
        filter: SearchFilter | None = None,
        *,
        with_payload: bool = True,
        hnsw_ef: int | None = None,
    ) -> list[list[ScoredRecord]]:
        """Run ``plan`` for several queries in one engine call."""
        self._check_open()
        self.check_plan(plan)
        for vectors in batch:
            missing = [n for n in plan.vectors if n not in vectors]
            if missing:
                raise ConfigError(f"plan {plan} needs query vectors for {missing}")
        if hnsw_ef is not None and hnsw_ef < 1:
            raise ConfigError(f"hnsw_ef must be >= 1, got {hnsw_ef}")
        if plan.stages[0].using == token_index.TOKENS_STAGE:
            requests = token_index.requests(
                self, self._tokens, plan, batch, filter, with_payload=with_payload, hnsw_ef=hnsw_ef
            )
        else:
            root = plan_tree(plan)
            requests = [
                EngineQuery(root, vectors, filter, with_payload=with_payload, hnsw_ef=hnsw_ef)
                for vectors in batch
            ]
        with self._read_lock:
            return self._run(requests)

    def _open_token_index(self, recreate: bool) -> None:
        """Open the token index of a collection that keeps one (:mod:`~mmrag.store.token_index`)."""
        if self.schema.token_index:
            self._tokens = self._token_store(token_index.token_schema(self.schema), recreate)
            token_index.heal(self, self._tokens)

    def _token_store(self, schema: CollectionSchema, recreate: bool) -> BaseStore:
        """Open (or create) the token index with ``schema``, in this backend."""
        raise NotImplementedError(f"the {self.backend} store keeps no token index")

    def score(
        self, ids: Sequence[str], vectors: Mapping[str, QueryVector]
    ) -> dict[str, dict[str, float]]:
        """Exact scores of the points ``ids`` on each named vector: ``{name: {id: score}}``
        (``tokens``: MaxSim over the page's token vectors, i.e. on ``distinct``).

        One exact, id-restricted search per vector name, all sent as one batch. A point with no
        score on a vector (e.g. no text for the BM25 channel) is left out of that name's dict.
        """
        self._check_open()
        ids = [str(i) for i in ids]
        if not ids or not vectors:
            return {name: {} for name in vectors}
        restrict = SearchFilter(ids=tuple(ids))
        names = list(vectors)
        # The token stage's score of a page: MaxSim over its token vectors, its `distinct` view.
        view = {token_index.TOKENS_STAGE: token_index.TOKEN_VIEW}
        engine_vectors = {view.get(name, name): vector for name, vector in vectors.items()}
        requests = [
            EngineQuery(
                QueryNode(using=view.get(name, name), limit=len(ids)),
                engine_vectors,
                restrict,
                with_payload=False,
                exact=True,
            )
            for name in names
        ]
        with self._read_lock:
            results = self._run(requests)
        return {
            name: {r.id: r.score for r in res} for name, res in zip(names, results, strict=True)
        }

    def _uses_hnsw(self, name: str | None) -> bool:
        spec = self.schema.vectors().get(name or "")
        return spec is not None and spec.hnsw and not spec.sparse

    def _codec(self, name: str | None) -> str | None:
        """The codec of the named vector (``None``: sparse, or not a vector of the schema)."""
        spec = self.schema.vectors().get(name or "")
        return None if spec is None or spec.sparse else spec.codec

    def _search_options(self, node: QueryNode, request: EngineQuery) -> SearchOptions | None:
        """The :func:`~mmrag.store.codecs.search_options` of plan node ``node``."""
        codec, hnsw = self._codec(node.using), self._uses_hnsw(node.using)
        limit, exact, ef = node.limit, request.exact, request.hnsw_ef
        return search_options(codec, exact=exact, hnsw_ef=ef, limit=limit, uses_hnsw=hnsw)

    def check_plan(self, plan: Plan) -> None:
        """Raise :class:`ConfigError` if ``plan`` reads a vector this collection lacks."""
        token_index.check_token_plan(plan, self.schema, self._where())
        have = self.schema.vector_names
        missing = [n for n in plan.vectors if n not in have and n != token_index.TOKENS_STAGE]
        if missing:
            hint = (
                "enable the text channel (text=True) when creating the collection"
                if missing == ["text"]
                else "add them to pooling.views and re-index into a new collection"
            )
            raise ConfigError(
                f"plan {plan} reads {missing}, but {self._where()} only has {list(have)}; "
                f"change the plan, or {hint}"
            )

    def info(self) -> CollectionInfo:
        """Counts and schema."""
        specs = self.schema.vectors()
        per_point = 0
        for spec in specs.values():
            if spec.hnsw and not spec.sparse:
                per_point += self._vectors_per_point(spec.name) if spec.multivector else 1
        return CollectionInfo(
            name=self._name,
            backend=self.backend,
            location=self._location,
            schema=self.schema,
            points=self.count(),
            sources=len(self.sources()),
            hnsw_vectors_per_point=per_point,
            token_vectors=self._tokens.count() if self._tokens is not None else None,
        )

    def _vectors_per_point(self, name: str) -> int:
        """Vectors per point of a multivector view, from one stored point (0 when empty)."""
        records, _ = self.scroll(limit=1, with_vectors=True)
        if not records:
            return 0
        vector = records[0].vectors.get(name)
        return len(vector) if vector is not None else 0

    # -- backend primitives ------------------------------------------------------------------

    def _on_write(self) -> None:  # noqa: B027 - an optional hook
        """Called under the write lock before a write that may change the point count (the
        embedded store's bookkeeping of its expected count); nothing by default."""

    @abc.abstractmethod
    def _upsert_batch(self, points: list[Point]) -> None: ...

    @abc.abstractmethod
    def _delete_ids(self, ids: list[str]) -> None: ...

    @abc.abstractmethod
    def _delete_filter(self, filter: SearchFilter) -> None: ...

    @abc.abstractmethod
    def _count(self, filter: SearchFilter | None) -> int: ...

    @abc.abstractmethod
    def _count_pending(self, where: SearchFilter) -> int: ...

    @abc.abstractmethod
    def _clear_pending(self, where: SearchFilter) -> None: ...

    @abc.abstractmethod
    def _source_counts(self, filter: SearchFilter | None) -> dict[str, int]: ...

    @abc.abstractmethod
    def _payload_indexes(self) -> set[str]: ...

    @abc.abstractmethod
    def _create_index(self, key: str, kind: str) -> None: ...

    @abc.abstractmethod
    def _retrieve(self, ids: list[str], with_vectors: bool) -> list[Record]: ...

    @abc.abstractmethod
    def _scroll(
        self, filter: SearchFilter | None, limit: int, offset: str | None, with_vectors: bool
    ) -> tuple[list[Record], str | None]: ...

    @abc.abstractmethod
    def _run(self, requests: list[EngineQuery]) -> list[list[ScoredRecord]]: ...

    @abc.abstractmethod
    def _optimize(self) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...
