"""The store layer, below the pipeline: the vector store and the asset store.

=================  ========================================================================
module             what
=================  ========================================================================
``contract``       the ``VectorStore`` protocol, its errors and constants
``schema``         ``CollectionSchema``: one named vector per view of a page
``records``        ``Point``, ``Record``, ``ScoredRecord``, ``SearchFilter``, ``SparseVector``
``plan``           the retrieval-plan syntax and its nested-prefetch query tree
``_base``          what both backends share (validation, batching, plan execution)
``embedded``       ``EmbeddedStore``: Qdrant Edge in-process, in a folder (the default)
``server``         ``ServerStore``: a Qdrant server or cluster through qdrant-client
``assets``         ``AssetStore``: page and frame images in a folder or any fsspec URL
``doctor``         ``check_store``: what ``mmrag doctor`` checks (damage, lost points, NaN)
``text``           BM25 sparse vectors for the text channel
=================  ========================================================================

Nothing here knows the pipeline.

Importing this package is cheap: qdrant-edge, qdrant-client and fsspec are imported when a
store is opened.

Example:
    >>> import tempfile
    >>> from mmrag.config import StoreConfig
    >>> from mmrag.store import CollectionSchema, open_store
    >>> schema = CollectionSchema(embedder_id="toy", kind="single", dim=4)
    >>> with open_store(StoreConfig(path=tempfile.mkdtemp()), schema) as store:
    ...     store.count()
    0
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrag.config import StoreConfig
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import (
        CollectionInfo,
        CollectionMismatchError,
        StoreCorruptError,
        StoreError,
        StoreLockedError,
        StoreUnavailableError,
        StoreVersionError,
        VectorStore,
    )
    from mmrag.store.doctor import DoctorReport, check_store
    from mmrag.store.embedded import EmbeddedStore
    from mmrag.store.plan import Plan, parse_plan
    from mmrag.store.records import Point, Record, ScoredRecord, SearchFilter, SparseVector
    from mmrag.store.schema import CollectionSchema, VectorSpec
    from mmrag.store.server import ServerStore

_LAZY = {
    "AssetStore": "mmrag.store.assets",
    "EmbeddedStore": "mmrag.store.embedded",
    "ServerStore": "mmrag.store.server",
    "CollectionInfo": "mmrag.store.contract",
    "CollectionMismatchError": "mmrag.store.contract",
    "StoreCorruptError": "mmrag.store.contract",
    "StoreError": "mmrag.store.contract",
    "StoreLockedError": "mmrag.store.contract",
    "StoreUnavailableError": "mmrag.store.contract",
    "StoreVersionError": "mmrag.store.contract",
    "DoctorReport": "mmrag.store.doctor",
    "check_store": "mmrag.store.doctor",
    "VectorStore": "mmrag.store.contract",
    "CollectionSchema": "mmrag.store.schema",
    "VectorSpec": "mmrag.store.schema",
    "Point": "mmrag.store.records",
    "Record": "mmrag.store.records",
    "ScoredRecord": "mmrag.store.records",
    "SearchFilter": "mmrag.store.records",
    "SparseVector": "mmrag.store.records",
    "Plan": "mmrag.store.plan",
    "parse_plan": "mmrag.store.plan",
}

__all__ = [
    "AssetStore",
    "CollectionInfo",
    "CollectionMismatchError",
    "CollectionSchema",
    "DoctorReport",
    "EmbeddedStore",
    "Plan",
    "Point",
    "Record",
    "ScoredRecord",
    "SearchFilter",
    "ServerStore",
    "SparseVector",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreUnavailableError",
    "StoreVersionError",
    "VectorSpec",
    "VectorStore",
    "check_store",
    "open_assets",
    "open_store",
    "parse_plan",
]


def open_store(
    config: StoreConfig,
    schema: CollectionSchema | Callable[[], CollectionSchema] | None = None,
    *,
    recreate: bool = False,
) -> VectorStore:
    """Open (or create) the collection ``config`` names, on the backend it names.

    ``schema`` is required to create a collection and, when it exists, is checked against the
    stored one (a mismatch raises :class:`CollectionMismatchError` naming both and the fix).
    ``schema=None`` opens an existing collection as stored (for ``delete``, ``info``). The
    schema's codecs are ``config.codecs`` (a collection built with others is a mismatch). A
    function returning the schema is called only when it is needed, after the embedded store's
    folder is locked, so a folder in use fails before an embedder model is loaded.
    """
    schema = _with_codecs(schema, config.codecs)
    if config.backend == "server":
        from mmrag.store.server import ServerStore

        resolved = schema() if callable(schema) else schema
        return ServerStore.from_config(config, resolved, recreate=recreate)
    from mmrag.store.embedded import EmbeddedStore

    return EmbeddedStore(config.path, config.collection, schema, recreate=recreate)


def _with_codecs(
    schema: CollectionSchema | Callable[[], CollectionSchema] | None, codecs: dict[str, str]
) -> CollectionSchema | Callable[[], CollectionSchema] | None:
    """``schema`` with the config's codecs (``config.store.codecs`` is where they are set)."""
    if schema is None:
        return None
    if callable(schema):
        source = schema
        return lambda: source().with_codecs(codecs)
    return schema.with_codecs(codecs)


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
