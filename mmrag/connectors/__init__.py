"""Connectors: the vector store (embedded Qdrant Edge or a Qdrant server) and the asset store.

Importing this package is cheap: qdrant-edge, qdrant-client and fsspec are imported when a
store is opened.

Example:
    >>> import tempfile
    >>> from mmrag.config import StoreConfig
    >>> from mmrag.connectors import open_store
    >>> from mmrag.connectors.store import CollectionSchema
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
    from mmrag.connectors.assets import AssetStore
    from mmrag.connectors.qdrant import ServerStore
    from mmrag.connectors.qdrant_edge import EmbeddedStore
    from mmrag.connectors.store import (
        CollectionInfo,
        CollectionMismatchError,
        CollectionSchema,
        Point,
        SearchFilter,
        StoreError,
        StoreLockedError,
        VectorStore,
    )

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
    "AssetStore": "mmrag.connectors.assets",
    "EmbeddedStore": "mmrag.connectors.qdrant_edge",
    "ServerStore": "mmrag.connectors.qdrant",
    "CollectionInfo": "mmrag.connectors.store",
    "CollectionMismatchError": "mmrag.connectors.store",
    "CollectionSchema": "mmrag.connectors.store",
    "Point": "mmrag.connectors.store",
    "SearchFilter": "mmrag.connectors.store",
    "StoreError": "mmrag.connectors.store",
    "StoreLockedError": "mmrag.connectors.store",
    "VectorStore": "mmrag.connectors.store",
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
        from mmrag.connectors.qdrant import ServerStore

        return ServerStore.from_config(config, schema, recreate=recreate)
    from mmrag.connectors.qdrant_edge import EmbeddedStore

    return EmbeddedStore(config.path, config.collection, schema, recreate=recreate)


def open_assets(config: StoreConfig, **options: Any) -> AssetStore:
    """The asset store for page and frame images: ``config.assets`` or ``<path>/assets``."""
    from mmrag.connectors.assets import AssetStore

    url = config.assets or str(Path(config.path).expanduser() / "assets")
    options = {"format": config.asset_format, "quality": config.asset_quality, **options}
    return AssetStore(url, **options)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mmrag.connectors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
