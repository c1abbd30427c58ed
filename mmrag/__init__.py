"""mmrag: multimodal retrieval-augmented generation.

Ingest PDFs, images and video frames; embed them with VLM-based or ColPali-style multi-vector
models; store them in Qdrant; retrieve in stages; rerank; answer with citations.

Importing the package is cheap: the names below are resolved on first use, and nothing here
imports torch, transformers or qdrant.

Example:
    >>> import mmrag
    >>> cfg = mmrag.PipelineConfig()
    >>> cfg.store.backend
    'embedded'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Answer": "mmrag.types",
    "Embedding": "mmrag.types",
    "Hit": "mmrag.types",
    "IndexReport": "mmrag.types",
    "Item": "mmrag.types",
    "Modality": "mmrag.types",
    "PipelineConfig": "mmrag.config",
    "Secret": "mmrag.auth",
    "ConfigError": "mmrag.errors",
    "FeatureNotAvailableError": "mmrag.errors",
    "IngestError": "mmrag.errors",
    "MmragError": "mmrag.errors",
    "parse_plan": "mmrag.store.plan",
    "Pipeline": "mmrag.pipeline.pipeline",
    "MmragRetriever": "mmrag.integrations.langchain",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from mmrag.auth import Secret
    from mmrag.config import PipelineConfig
    from mmrag.errors import ConfigError, FeatureNotAvailableError, IngestError, MmragError
    from mmrag.integrations.langchain import MmragRetriever
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.plan import parse_plan
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
