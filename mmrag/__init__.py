"""mmrag: multimodal retrieval-augmented generation.

Ingest PDFs, images and video frames; embed them with VLM-based or ColPali-style multi-vector
models; store them in Qdrant; retrieve in stages; rerank; answer with citations.

The layout shows the layers; imports only point downwards (``scripts/check_imports.py``
proves there is no cycle and that the layers hold):

====================  ========================================================================
where                 what
====================  ========================================================================
*above the pipeline*
``cli/``              the ``mmrag`` command
``integrations/``     ``langchain/`` (retriever, tool), ``server/`` (HTTP API and its page),
                      ``ray/`` (the indexing steps on a Ray cluster)
*the pipeline*
``pipeline/``         ``pipeline.py`` (:class:`Pipeline`), ``ingest/``, ``indexing/`` (the one
                      set of indexing steps and the local job), ``retrieval.py``, ``rag.py``,
                      ``evaluate/``
``embedders/``        the protocol, ``families/`` (each family defined once), the models,
                      pooling
``rerankers/``        MaxSim, MonoQwen2-VL, score-head rerankers
``generators/``       a transformers VLM, any LangChain chat model
*below the pipeline*
``store/``            the ``VectorStore`` contract, schema, records and filters, plans, the
                      token index, the embedded and server backends, the asset store, BM25
*shared*
``types.py`` …        ``Item``, ``Hit``, ``Answer``; ``config.py``, ``errors.py``, ``registry.py``
``testing/``          tiny offline models, and ``conformance/`` suites for third-party
                      stores, embedders, rerankers and generators
====================  ========================================================================

Importing the package is cheap: the names below are resolved on first use, and nothing here
imports torch, transformers, qdrant or LangChain.

Example:
    >>> import mmrag
    >>> cfg = mmrag.PipelineConfig()
    >>> cfg.store.backend
    'embedded'
    >>> mmrag.SearchFilter(sources=("a.pdf",)).is_empty
    False
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # the pipeline and its configuration
    "Pipeline": "mmrag.pipeline.pipeline",
    "PipelineConfig": "mmrag.config",
    "load_embedder": "mmrag.embedders",
    "parse_plan": "mmrag.store.plan",
    "SearchFilter": "mmrag.store.records",
    "Secret": "mmrag.auth",
    # values
    "Answer": "mmrag.types",
    "Embedding": "mmrag.types",
    "Hit": "mmrag.types",
    "IndexReport": "mmrag.types",
    "Item": "mmrag.types",
    "Modality": "mmrag.types",
    "IndexProgress": "mmrag.pipeline.indexing.progress",
    # errors
    "MmragError": "mmrag.errors",
    "ConfigError": "mmrag.errors",
    "FeatureNotAvailableError": "mmrag.errors",
    "IndexStoppedError": "mmrag.errors",
    "IngestError": "mmrag.errors",
    "MissingDependencyError": "mmrag.errors",
    "ModelNotAvailableError": "mmrag.errors",
    "StoreCorruptError": "mmrag.store.contract",
    "StoreError": "mmrag.store.contract",
    "StoreLockedError": "mmrag.store.contract",
    "StoreVersionError": "mmrag.store.contract",
    "StoreUnavailableError": "mmrag.store.contract",
    "CollectionMismatchError": "mmrag.store.contract",
    # LangChain (imports langchain-core when first used)
    "MmragRetriever": "mmrag.integrations.langchain",
    "MmragVectorStore": "mmrag.integrations.langchain",
    "create_mmrag_tool": "mmrag.integrations.langchain",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from mmrag.auth import Secret
    from mmrag.config import PipelineConfig
    from mmrag.embedders import load_embedder
    from mmrag.errors import (
        ConfigError,
        FeatureNotAvailableError,
        IndexStoppedError,
        IngestError,
        MissingDependencyError,
        MmragError,
        ModelNotAvailableError,
    )
    from mmrag.integrations.langchain import (
        MmragRetriever,
        MmragVectorStore,
        create_mmrag_tool,
    )
    from mmrag.pipeline.indexing.progress import IndexProgress
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.contract import (
        CollectionMismatchError,
        StoreCorruptError,
        StoreError,
        StoreLockedError,
        StoreUnavailableError,
        StoreVersionError,
    )
    from mmrag.store.plan import parse_plan
    from mmrag.store.records import SearchFilter
    from mmrag.types import Answer, Embedding, Hit, IndexReport, Item, Modality


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mmrag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
