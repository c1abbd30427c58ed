"""The pipeline: ingest, the indexing steps and the local job, retrieval, RAG, evaluation.

==================  ============================================================
module              what
==================  ============================================================
``pipeline``        :class:`Pipeline`: one object wiring every stage from config
``ingest/``         PDFs, images, video frames → :class:`~mmrag.types.Item` streams
``indexing/``       the indexing steps (written once) and the local threaded job
``retrieval``       multi-stage retrieval plans over the store
``rag``             retrieve → rerank → generate
``evaluate/``       BEIR datasets, metrics, the evaluation harness
==================  ============================================================

``Pipeline`` is importable from here (lazily: importing this package stays cheap).

Example:
    >>> from mmrag.pipeline import Pipeline                                  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrag.pipeline.pipeline import Pipeline

__all__ = ["Pipeline"]


def __getattr__(name: str) -> Any:
    # resolved on first use, like the root package's exports: importing a stage module (say
    # ``mmrag.pipeline.ingest.options`` from ``mmrag.config``) never imports ``Pipeline``
    if name == "Pipeline":
        return importlib.import_module("mmrag.pipeline.pipeline").Pipeline
    raise AttributeError(f"module 'mmrag.pipeline' has no attribute {name!r}")
