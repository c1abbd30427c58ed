"""The Ray engine's rows (every stage's rows are ``{"kind", "data": pickled value}``), what
the workers open (store, asset store), and the snapshot of stored ids.

Example:
    >>> from mmrag.integrations.ray.rows import StoredIds
    >>> ids = StoredIds(["6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59"])
    >>> ids.lookup(["6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59", "00000000-0000-0000-0000-000000000000"])
    {'6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59': False}
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.types import IndexReport

if TYPE_CHECKING:
    from mmrag.config import StoreConfig
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore
    from mmrag.store.schema import CollectionSchema

__all__ = ["AssetOpener", "StoreOpener", "StoredIds"]

# Row kinds. Every stage's rows are {"kind": str, "data": pickled value}; a stage turns the
# kind it handles into the next and passes the others through to the driver.
ITEM = "item"  # steps.Work (its item bound to the embedder), to render
PAGE = "page"  # steps.Work with its image, to embed
EMBEDDED = "embedded"  # steps.Work with its embedding, to write
WRITTEN = "written"  # {source: points written (pending until the source is finished)}
SKIPPED = "skipped"  # (source, number of its items already stored)
FAILED_FILE = "failed_file"  # Failure of a whole file (nothing of it was listed)
FAILED_ITEM = "failed_item"  # Failure of one page / frame
LISTED = "listed"  # (source, number of items, content sha256): a file was listed


# -- rows ----------------------------------------------------------------------------------------


def row(kind: str, value: Any) -> tuple[str, bytes]:
    """One row as the batch functions pass it on."""
    return kind, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def record(kind: str, value: Any) -> dict[str, Any]:
    """One row as Ray Data's row-wise functions (``from_items``, ``flat_map``) take it."""
    kind, blob = row(kind, value)
    return {"kind": kind, "data": blob}


def batch(rows: Sequence[tuple[str, bytes]]) -> dict[str, np.ndarray]:
    """Rows as a Ray Data numpy batch."""
    kinds = np.empty(len(rows), dtype=object)
    data = np.empty(len(rows), dtype=object)
    for i, (kind, blob) in enumerate(rows):
        kinds[i], data[i] = kind, blob
    return {"kind": kinds, "data": data}


def split(batch: dict[str, np.ndarray], kind: str) -> tuple[list[tuple[str, bytes]], list[Any]]:
    """The rows of ``batch`` of another kind (untouched) and the values of rows of ``kind``."""
    others: list[tuple[str, bytes]] = []
    values: list[Any] = []
    for row_kind, blob in zip(batch["kind"], batch["data"], strict=True):
        if row_kind == kind:
            values.append(pickle.loads(blob))
        else:
            others.append((str(row_kind), bytes(blob)))
    return others, values


def failures(report: IndexReport, kind: str) -> list[tuple[str, bytes]]:
    """A row per failure in ``report``."""
    return [row(kind, failure) for failure in report.failed]


# -- what the stages need to open ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoreOpener:
    """Opens the job's collection in a Ray worker (each listing task and writer its own client).

    The collection exists by then (the driver creates it), so ``schema`` is only checked.
    """

    config: StoreConfig
    schema: CollectionSchema

    def __call__(self) -> VectorStore:
        from mmrag.store import open_store

        return open_store(self.config, self.schema)


@dataclasses.dataclass(frozen=True)
class AssetOpener:
    """Opens the page-image asset store in a Ray worker (by URL, so every node finds it)."""

    url: str
    format: str = "png"
    quality: int = 90

    @classmethod
    def of(cls, assets: AssetStore) -> AssetOpener:
        return cls(assets.root, assets.format, assets.quality)

    def __call__(self) -> AssetStore:
        from mmrag.store.assets import AssetStore

        return AssetStore(self.url, format=self.format, quality=self.quality)  # type: ignore[arg-type]


class StoredIds:
    """A sorted snapshot of the point ids in a store, for listing tasks that cannot open it
    (the embedded store is single-process: only the driver has it open).

    Example:
        >>> ids = StoredIds(["6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59"])
        >>> ids.contains(["6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59",
        ...               "00000000-0000-0000-0000-000000000000"]).tolist()
        [True, False]
    """

    def __init__(self, ids: Iterable[str], pending: Iterable[str] = ()) -> None:
        self._ids = np.sort(self._keys(ids))  # (n,) 16-byte UUIDs
        pending = list(pending)
        self._pending = StoredIds(pending) if pending else None

    @staticmethod
    def _keys(ids: Iterable[str]) -> np.ndarray:
        import uuid

        return np.array([uuid.UUID(str(i)).bytes for i in ids], dtype="S16")

    @classmethod
    def of(cls, store: VectorStore) -> StoredIds:
        """The ids of the points in ``store`` (scrolled 1,000 at a time): complete ones, and
        apart those left pending by an interrupted job."""
        from mmrag.store.contract import PENDING_FIELD

        complete, pending = [], []
        for record in store.iter_records(batch_size=1000):
            (pending if record.payload.get(PENDING_FIELD) else complete).append(record.id)
        return cls(complete, pending)

    def __len__(self) -> int:
        return len(self._ids) + (len(self._pending) if self._pending is not None else 0)

    def contains(self, ids: Sequence[str]) -> np.ndarray:
        """A boolean mask: which of ``ids`` are in the snapshot."""
        keys = self._keys(ids)
        if not len(self._ids) or not len(keys):
            return np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(self._ids, keys), len(self._ids) - 1)
        return self._ids[at] == keys

    def lookup(self, ids: Sequence[str]) -> dict[str, bool]:
        """``{id: pending}`` of the ``ids`` stored (the form
        :func:`mmrag.pipeline.indexing.steps.check` takes as ``stored``)."""
        complete = self.contains(ids)
        if self._pending is not None:
            pending = self._pending.contains(ids)
        else:
            pending = np.zeros_like(complete)
        return {i: bool(p) for i, c, p in zip(ids, complete, pending, strict=True) if c or p}
