"""Retrieval metrics as pytrec_eval / BEIR compute them: NDCG@k (linear gains, log2
discount), Recall@k, MRR@k, and latency statistics.

Example:
    >>> from mmrag.pipeline.evaluate.metrics import ndcg_at_k, recall_at_k, mrr_at_k
    >>> qrels = {"d1": 2, "d2": 1}
    >>> round(ndcg_at_k(["d2", "x", "d1"], qrels, 3), 4)
    0.7602
    >>> recall_at_k(["d2", "x", "d1"], qrels, 2), mrr_at_k(["x", "d1"], qrels, 10)
    (0.5, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from mmrag.errors import ConfigError

__all__ = ["evaluate_run", "latency_stats", "metric_names", "mrr_at_k", "ndcg_at_k", "recall_at_k"]


# -- metrics -------------------------------------------------------------------------------------


def _dedupe(ranking: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    return [d for d in ranking if not (d in seen or seen.add(d))]


def ndcg_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """NDCG@k with graded relevance: ``Σ rel_i / log2(i + 1)`` over the top k, normalised by
    the same sum over the ideal ordering of every judged document (as pytrec_eval's
    ``ndcg_cut``). Non-positive grades count as 0; a query with no relevant document scores 0.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    gains = sorted((g for g in relevance.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if ideal == 0:
        return 0.0
    dcg = sum(
        max(relevance.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(_dedupe(ranking)[:k])
    )
    return dcg / ideal


def recall_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """The fraction of the relevant documents (grade > 0) found in the top k."""
    relevant = {d for d, g in relevance.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_dedupe(ranking)[:k])) / len(relevant)


def mrr_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """``1 / rank`` of the first relevant document in the top k (0 if there is none)."""
    for rank, d in enumerate(_dedupe(ranking)[:k], start=1):
        if relevance.get(d, 0) > 0:
            return 1.0 / rank
    return 0.0


def metric_names(ks: Sequence[int]) -> list[str]:
    """The metric keys :func:`evaluate_run` returns, in table order."""
    return [
        *(f"ndcg@{k}" for k in ks),
        *(f"recall@{k}" for k in ks),
        "mrr@10",
    ]


def evaluate_run(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    ks: Sequence[int] = (5, 10),
) -> dict[str, float]:
    """Mean metrics over the queries of ``qrels`` that have a relevant document.

    ``run`` maps query id to its ranked document ids; a judged query missing from ``run``
    counts as retrieving nothing.

    Example:
        >>> from mmrag.pipeline.evaluate import evaluate_run
        >>> evaluate_run({"q1": ["a", "b"], "q2": ["c"]},
        ...              {"q1": {"b": 1}, "q2": {"c": 1}}, ks=[1])
        {'ndcg@1': 0.5, 'recall@1': 0.5, 'mrr@10': 0.75}
    """
    judged = [q for q, rel in qrels.items() if any(g > 0 for g in rel.values())]
    names = metric_names(ks)
    if not judged:
        return dict.fromkeys(names, 0.0)
    totals = dict.fromkeys(names, 0.0)
    for qid in judged:
        ranking, rel = run.get(qid, ()), qrels[qid]
        for k in ks:
            totals[f"ndcg@{k}"] += ndcg_at_k(ranking, rel, k)
            totals[f"recall@{k}"] += recall_at_k(ranking, rel, k)
        totals["mrr@10"] += mrr_at_k(ranking, rel, 10)
    return {name: totals[name] / len(judged) for name in names}


def latency_stats(latencies_s: Sequence[float]) -> dict[str, float]:
    """``p50_ms``, ``p95_ms`` (linear interpolation) and ``qps`` (queries / total time)."""
    if len(latencies_s) == 0:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "qps": 0.0}
    values = np.asarray(latencies_s, dtype=np.float64)
    total = float(values.sum())
    return {
        "p50_ms": float(np.percentile(values, 50) * 1e3),
        "p95_ms": float(np.percentile(values, 95) * 1e3),
        "qps": len(values) / total if total > 0 else float("inf"),
    }
