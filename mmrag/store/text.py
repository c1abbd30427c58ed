"""The BM25 text channel: sparse vectors of a page's text layer and of a query's text.

Both backends use the same tokenizer (Qdrant Edge's ``Bm25``, run in-process, no model
download), so an index built on either scores text identically. Documents get BM25
term-frequency weights; queries get weight 1 per unique term; the collection's sparse vector
applies IDF (``Modifier.IDF``), so the engine computes full BM25.

Example:
    >>> from mmrag.store.text import bm25_document, bm25_query
    >>> doc = bm25_document("Revenue grew in 2024; revenue fell in 2023.")
    >>> query = bm25_query("revenue 2024")
    >>> set(query.indices) <= set(doc.indices)
    True
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["SparseVector", "bm25_document", "bm25_query"]

_lock = threading.Lock()


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


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    from qdrant_edge import Bm25

    return Bm25()


def _convert(vector: Any) -> SparseVector:
    return SparseVector(
        indices=tuple(int(i) for i in vector.indices),
        values=tuple(float(v) for v in vector.values),
    )


def bm25_document(text: str) -> SparseVector:
    """The BM25 document vector of ``text`` (term-frequency weights)."""
    with _lock:
        return _convert(_model().embed_document(text))


def bm25_query(text: str) -> SparseVector:
    """The BM25 query vector of ``text`` (weight 1 per unique term)."""
    with _lock:
        return _convert(_model().embed_query(text))
