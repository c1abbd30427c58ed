"""Connectors: the vector store (embedded Qdrant Edge or a Qdrant server) and the asset store.

Importing this package is cheap: qdrant-edge, qdrant-client and fsspec are imported when a
store is opened.

Example:
    >>> import tempfile
    >>> from mmrag.config import StoreConfig
    >>> from mmrag.store import open_store
    >>> from mmrag.store import CollectionSchema
    >>> schema = CollectionSchema(embedder_id="toy", kind="single", dim=4)
    >>> with open_store(StoreConfig(path=tempfile.mkdtemp()), schema) as store:
    ...     store.count()
    0
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrag.config import StoreConfig
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import (
        CollectionInfo,
        CollectionMismatchError,
        StoreError,
        StoreLockedError,
        VectorStore,
    )
    from mmrag.store.embedded import EmbeddedStore
    from mmrag.store.records import Point, SearchFilter
    from mmrag.store.schema import CollectionSchema
    from mmrag.store.server import ServerStore

__all__ = [
    "AssetStore",
    "CollectionInfo",
    "CollectionMismatchError",
    "CollectionSchema",
    "EmbeddedStore",
    "Point",
    "SearchFilter",
    "ServerStore",
    "StoreError",
    "StoreLockedError",
    "VectorStore",
    "open_assets",
    "open_store",
]

_LAZY = {
    "AssetStore": "mmrag.store.assets",
    "EmbeddedStore": "mmrag.store.embedded",
    "ServerStore": "mmrag.store.server",
    "CollectionInfo": "mmrag.store",
    "CollectionMismatchError": "mmrag.store",
    "CollectionSchema": "mmrag.store",
    "Point": "mmrag.store",
    "SearchFilter": "mmrag.store",
    "StoreError": "mmrag.store",
    "StoreLockedError": "mmrag.store",
    "VectorStore": "mmrag.store",
}


def open_store(
    config: StoreConfig, schema: CollectionSchema | None = None, *, recreate: bool = False
) -> VectorStore:
    """Open (or create) the collection ``config`` names, on the backend it names.

    ``schema`` is required to create a collection and, when it exists, is checked against the
    stored one (a mismatch raises :class:`CollectionMismatchError` naming both and the fix).
    ``schema=None`` opens an existing collection as stored (for ``delete``, ``info``).
    """
    if config.backend == "server":
        from mmrag.store.server import ServerStore

        return ServerStore.from_config(config, schema, recreate=recreate)
    from mmrag.store.embedded import EmbeddedStore

    return EmbeddedStore(config.path, config.collection, schema, recreate=recreate)


def open_assets(config: StoreConfig, **options: Any) -> AssetStore:
    """The asset store for page and frame images: ``config.assets`` or ``<path>/assets``."""
    from mmrag.store.assets import AssetStore

    url = config.assets or str(Path(config.path).expanduser() / "assets")
    options = {"format": config.asset_format, "quality": config.asset_quality, **options}
    return AssetStore(url, **options)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmrag.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
