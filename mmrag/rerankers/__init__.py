"""Rerankers: reorder retrieved hits by a more precise score.

- :class:`~mmrag.rerankers.maxsim.MaxSimReranker` – exact late-interaction MaxSim over each
  page's full multi-vector (what a pooled candidate stage approximated).
- :class:`~mmrag.rerankers.monoqwen.MonoQwenReranker` – a multimodal LLM judging each page image
  against the query ("True" / "False" logits; MonoQwen2-VL).
- :class:`~mmrag.rerankers.score_head.ScoreHeadReranker` – a VLM with a scoring head
  (jina-reranker-m0).
- :class:`~mmrag.rerankers.text.TextReranker` – a text cross-encoder over each page's text,
  fused with the visual score (``type = "text"``).

Importing this package is cheap; the model-backed rerankers import torch when they load.

Example:
    >>> from mmrag.rerankers import RerankContext, rescore
    >>> RerankContext().query_embedding is None
    True
"""

from __future__ import annotations

from mmrag.rerankers.base import RerankContext, Reranker, rescore

__all__ = ["RerankContext", "Reranker", "rescore"]
