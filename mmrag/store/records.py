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
from mmrag.store.contract import PENDING_FIELD
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
    ) -> Point:
        """The point of ``item`` embedded by ``embedder_id``: deterministic id, payload, vectors.

        This is the one place a point is built from an item (the store's ``(item, embedding)``
        upserts and every indexing driver come here). ``embedding.pooled`` supplies the pooled
        views; ``visual()`` the ``full`` multi-vector. ``text`` adds the BM25 sparse vector of
        the item's text (collections with the text channel); ``pending`` flags the point
        :data:`~mmrag.store.contract.PENDING_FIELD` until its document is published.
        """
        vectors: dict[str, QueryVector] = {}
        if embedding.kind == "single":
            assert embedding.dense is not None
            vectors["dense"] = embedding.dense
        else:
            vectors["full"] = embedding.visual()
            vectors.update(embedding.pooled)
        if text and item.text:
            vectors["text"] = bm25_document(item.text)
        bound = item if item.embedder_id == embedder_id else item.with_embedder(embedder_id)
        payload = bound.to_payload()
        if pending:
            payload[PENDING_FIELD] = 1
        return cls(id=bound.id, vectors=vectors, payload=payload)

    @classmethod
    def for_collection(
        cls, item: Item, embedding: Embedding, schema: CollectionSchema, *, pending: bool = False
    ) -> Point:
        """:meth:`from_item` with the collection's embedder id and text channel."""
        return cls.from_item(item, embedding, schema.embedder_id, text=schema.text, pending=pending)


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
        >>> from mmrag.store import SearchFilter
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
