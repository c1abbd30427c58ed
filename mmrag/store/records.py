"""The values a store takes and returns: points, records, sparse vectors, filters.

Example:
    >>> from mmrag.store.records import SearchFilter
    >>> SearchFilter(sources=("a.pdf",), page_range=(1, 5)).is_empty
    False
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.errors import ConfigError
from mmrag.store.contract import FULL_MERGE_FIELD, PENDING_FIELD
from mmrag.store.text import SparseVector, bm25_document

if TYPE_CHECKING:
    from mmrag.store.schema import CollectionSchema
    from mmrag.types import Embedding, Item

__all__ = ["Point", "QueryVector", "Record", "ScoredRecord", "SearchFilter", "SparseVector"]

# -- values ------------------------------------------------------------------------------------


#: What a query searches one named vector with.
QueryVector = np.ndarray | SparseVector


@dataclass(frozen=True)
class Point:
    """One point to upsert: its id, a vector per name, and the payload.

    Example:
        >>> import numpy as np
        >>> from mmrag.store import Point
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
        text: bool = False,
        pending: bool = False,
        full_pool_factor: int = 1,
    ) -> Point:
        """The point of ``item`` embedded by ``embedder_id``: deterministic id, payload, vectors.

        This is the one place a point is built from an item (the store's ``(item, embedding)``
        upserts and every indexing driver come here). ``embedding.pooled`` supplies the pooled
        views; ``multi`` the ``full`` multi-vector (every document token the embedder keeps:
        with ColPali's ``document_tokens="all"`` the prompt's tokens too, after the patches).
        ``text`` adds the BM25 sparse vector of the item's text (collections with the text
        channel); ``pending`` flags the point
        :data:`~mmrag.store.contract.PENDING_FIELD` until its document is published.
        ``full_pool_factor`` > 1 stores ``full`` merged to about ``1 / full_pool_factor`` of
        the tokens (:func:`mmrag.store.tokens.merge_tokens`), with the vector each token went
        into in the payload (:data:`~mmrag.store.contract.FULL_MERGE_FIELD`), from which region
        citations map a match back to its patches.
        """
        vectors: dict[str, QueryVector] = {}
        merge = None
        if embedding.kind == "single":
            assert embedding.dense is not None
            vectors["dense"] = embedding.dense
        else:
            full = embedding.multi  # every token the embedder keeps (the patches first)
            if full_pool_factor > 1:
                from mmrag.store.tokens import merge_tokens, pack_assignment

                full, assignment = merge_tokens(np.asarray(full), full_pool_factor)
                merge = pack_assignment(assignment)
            vectors["full"] = full
            vectors.update(embedding.pooled)
        if text and item.text:
            vectors["text"] = bm25_document(item.text)
        bound = item if item.embedder_id == embedder_id else item.with_embedder(embedder_id)
        payload = bound.to_payload()
        if embedding.kind == "multi" and embedding.grid is not None:
            _set_grid(payload, embedding.grid)
        if merge is not None:
            payload[FULL_MERGE_FIELD] = merge
        if pending:
            payload[PENDING_FIELD] = 1
        return cls(id=bound.id, vectors=vectors, payload=payload)

    @classmethod
    def for_collection(
        cls, item: Item, embedding: Embedding, schema: CollectionSchema, *, pending: bool = False
    ) -> Point:
        """:meth:`from_item` with the collection's embedder id and text channel."""
        return cls.from_item(
            item,
            embedding,
            schema.embedder_id,
            text=schema.text,
            pending=pending,
            full_pool_factor=schema.full_pool_factor,
        )

    @classmethod
    def reusing(
        cls, item: Item, record: Record, schema: CollectionSchema, *, pending: bool = False
    ) -> Point:
        """The point of ``item`` with the vectors of a stored ``record`` of the same content
        (a byte-identical copy at another path, or the item's own point being relabelled):
        nothing is embedded again."""
        vectors = {name: v for name, v in record.vectors.items() if name in schema.vectors()}
        if schema.text and item.text:
            vectors["text"] = bm25_document(item.text)
        bound = (
            item
            if item.embedder_id == schema.embedder_id
            else item.with_embedder(schema.embedder_id)
        )
        payload = bound.to_payload()
        grid = (record.payload.get("details") or {}).get("grid")
        if grid is not None:
            _set_grid(payload, grid)
        if FULL_MERGE_FIELD in record.payload and "full" in vectors:
            payload[FULL_MERGE_FIELD] = record.payload[FULL_MERGE_FIELD]
        if pending:
            payload[PENDING_FIELD] = 1
        return cls(id=bound.id, vectors=vectors, payload=payload)


def _set_grid(payload: dict[str, Any], grid: Iterable[int]) -> None:
    """Record the patch grid ``[rows, cols]`` of the ``full`` vectors in ``details["grid"]``
    (region citations map each stored vector back to its place on the page)."""
    payload["details"] = {**(payload.get("details") or {}), "grid": [int(n) for n in grid]}


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


#: A metadata value a filter can match: a string, an integer or a boolean.
Scalar = str | int | bool


@dataclass(frozen=True)
class SearchFilter:
    """A payload filter, applied at every retrieval stage.

    Conditions combine with AND; each tuple matches any of its values. ``page_range`` is
    inclusive at both ends (either end may be ``None``). ``metadata`` matches the user's own
    fields (``{"dept": "finance"}``; a tuple value matches any of its values; a list-valued
    field matches when any element does); ``ranges`` bounds numeric fields inclusively
    (``{"year": (2020, None)}``). ``tenant`` restricts to one tenant's items (the server sets
    it on every request of a tenant's key); ``content_ids`` selects by content
    (:attr:`mmrag.types.Item.content_id`, the copies of one page).

    Example:
        >>> from mmrag.store import SearchFilter
        >>> f = SearchFilter.build(source="a.pdf", modality=["pdf_page", "image"], pages=(2, None))
        >>> f.sources, f.modalities, f.page_range
        (('a.pdf',), ('pdf_page', 'image'), (2, None))
        >>> SearchFilter.build(metadata={"dept": "hr"}, ranges={"year": (2020, None)}).is_empty
        False
    """

    sources: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    page_range: tuple[int | None, int | None] | None = None
    metadata: Mapping[str, Scalar | tuple[Scalar, ...]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    ids: tuple[str, ...] = ()
    tenant: str | None = None
    content_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        object.__setattr__(self, "modalities", tuple(str(m) for m in self.modalities))
        object.__setattr__(self, "ids", tuple(str(i) for i in self.ids))
        object.__setattr__(self, "content_ids", tuple(str(i) for i in self.content_ids))
        if self.page_range is not None:
            lo, hi = self.page_range
            if lo is None and hi is None:
                object.__setattr__(self, "page_range", None)
            elif lo is not None and hi is not None and lo > hi:
                raise ConfigError(f"page range ({lo}, {hi}): the start is after the end")
            else:
                object.__setattr__(self, "page_range", (lo, hi))
        metadata: dict[str, Scalar | tuple[Scalar, ...]] = {}
        for key, value in self.metadata.items():
            values = tuple(value) if isinstance(value, list | tuple | set) else (value,)
            for v in values:
                if not isinstance(v, str | int | bool):
                    raise ConfigError(
                        f"metadata filter {key!r}: only str, int and bool values can be matched "
                        f"(use ranges for numbers), got {type(v).__name__}"
                    )
            if not values:
                raise ConfigError(f"metadata filter {key!r}: no value to match")
            metadata[key] = values if len(values) > 1 else values[0]
        object.__setattr__(self, "metadata", metadata)
        ranges: dict[str, tuple[float | None, float | None]] = {}
        for key, bounds in self.ranges.items():
            lo, hi = bounds
            if lo is None and hi is None:
                continue
            if lo is not None and hi is not None and lo > hi:
                raise ConfigError(f"range filter {key!r}: the start {lo} is after the end {hi}")
            ranges[key] = (lo, hi)
        object.__setattr__(self, "ranges", ranges)

    @classmethod
    def build(
        cls,
        *,
        source: str | Iterable[str] | None = None,
        modality: str | Iterable[str] | None = None,
        pages: tuple[int | None, int | None] | None = None,
        metadata: Mapping[str, Scalar | Iterable[Scalar]] | None = None,
        ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
        tenant: str | None = None,
    ) -> SearchFilter:
        """Build a filter from single values or lists."""
        return cls(
            sources=_as_tuple(source),
            modalities=_as_tuple(modality),
            page_range=pages,
            metadata=dict(metadata or {}),  # type: ignore[arg-type]
            ranges=dict(ranges or {}),
            tenant=tenant,
        )

    @classmethod
    def parse(cls, expressions: Iterable[str], *, base: SearchFilter | None = None) -> SearchFilter:
        """A filter from ``key=value``, ``key>=value`` and ``key<=value`` expressions on the
        user's metadata (as ``--filter`` takes them); a repeated ``key=`` matches any of its
        values. Values are typed as :func:`mmrag.types.parse_value` types them.

        Example:
            >>> f = SearchFilter.parse(["dept=hr", "dept=legal", "year>=2020"])
            >>> f.metadata, f.ranges
            ({'dept': ('hr', 'legal')}, {'year': (2020, None)})
        """
        import re

        from mmrag.fields import METADATA_KEY, parse_value

        matches: dict[str, list[Scalar]] = {}
        ranges: dict[str, list[float | None]] = {}
        for text in expressions:
            found = re.fullmatch(r"\s*([^<>=\s]+)\s*(>=|<=|=)(.*)", text)
            if found is None or not METADATA_KEY.match(found.group(1)):
                raise ConfigError(
                    f"filter {text!r}: expected key=value, key>=value or key<=value on a "
                    "metadata field (letters, digits, _ and -)"
                )
            key, op, raw = found.groups()
            value = parse_value(raw)
            if op == "=":
                if isinstance(value, float):
                    ranges.setdefault(key, [None, None])[:] = [value, value]
                else:
                    matches.setdefault(key, []).append(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"filter {text!r}: {op} needs a number, got {raw!r}")
            bounds = ranges.setdefault(key, [None, None])
            bounds[0 if op == ">=" else 1] = value
        start = base or cls()
        return dataclasses.replace(
            start,
            metadata={**start.metadata, **{k: tuple(v) for k, v in matches.items()}},
            ranges={**start.ranges, **{k: (lo, hi) for k, (lo, hi) in ranges.items()}},
        )

    @property
    def is_empty(self) -> bool:
        """True when the filter matches every point."""
        return not (
            self.sources
            or self.modalities
            or self.page_range
            or self.metadata
            or self.ranges
            or self.ids
            or self.tenant is not None
            or self.content_ids
        )

    def with_ids(self, ids: Iterable[str]) -> SearchFilter:
        """This filter further restricted to the given point ids."""
        return dataclasses.replace(self, ids=tuple(ids))

    def canonical(self) -> SearchFilter:
        """This filter with its sources made canonical, as the index stores them
        (:func:`mmrag.types.canonical_source`): ``docs/a.pdf``, ``./docs/a.pdf`` and the
        absolute path select the same source."""
        from mmrag.ids import canonical_source

        if not self.sources:
            return self
        return dataclasses.replace(self, sources=tuple(canonical_source(s) for s in self.sources))

    def for_tenant(self, tenant: str | None) -> SearchFilter:
        """This filter restricted to ``tenant`` (unchanged when ``None``)."""
        return self if tenant is None else dataclasses.replace(self, tenant=tenant)


def _as_tuple(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)
