"""The evaluation report: plans as rows, metrics and speed as columns.

Example:
    >>> from mmrag.pipeline.evaluate.report import EvalReport, PlanResult
    >>> report = EvalReport(dataset="toy", split="test", embedder_id="e", corpus=3,
    ...                     queries=2, ks=(1,), results=[PlanResult(
    ...                         "full@10", {"ndcg@1": 0.5, "recall@1": 0.5, "mrr@10": 0.75},
    ...                         p50_ms=1.0, p95_ms=2.0, qps=800.0, queries=2)])
    >>> report.results[0].qps
    800.0
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmrag.pipeline.evaluate.metrics import metric_names
from mmrag.types import IndexReport

__all__ = ["EvalReport", "PlanResult", "format_table"]


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    lines = []
    for row in [headers, *rows]:
        cells = [str(row[0]).ljust(widths[0])]
        cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@dataclass(frozen=True)
class PlanResult:
    """One plan's metrics and search speed."""

    plan: str
    metrics: Mapping[str, float]
    p50_ms: float
    p95_ms: float
    qps: float
    queries: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "plan": self.plan,
            "metrics": dict(self.metrics),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "qps": self.qps,
            "queries": self.queries,
        }


_LABELS = {"ndcg": "NDCG", "recall": "Recall", "mrr": "MRR"}


@dataclass
class EvalReport:
    """Several plans evaluated on one dataset, side by side.

    Example:
        >>> from mmrag.pipeline.evaluate.report import EvalReport, PlanResult
        >>> report = EvalReport(dataset="toy", split="test", embedder_id="e", corpus=3,
        ...                     queries=2, ks=(1,), results=[PlanResult(
        ...                         "full@10", {"ndcg@1": 0.5, "recall@1": 0.5, "mrr@10": 0.75},
        ...                         p50_ms=1.0, p95_ms=2.0, qps=800.0, queries=2)])
        >>> print(report.table())
        plan     NDCG@1  Recall@1  MRR@10  p50 ms  p95 ms    QPS
        full@10   0.500     0.500   0.750    1.00    2.00  800.0
    """

    dataset: str
    split: str
    embedder_id: str
    corpus: int
    queries: int
    ks: tuple[int, ...]
    results: list[PlanResult] = field(default_factory=list)
    index: IndexReport | None = None

    def columns(self) -> list[str]:
        """Metric keys in table order."""
        return metric_names(self.ks)

    def table(self) -> str:
        """Plans as rows; NDCG@k, Recall@k, MRR@10, p50 / p95 latency and QPS as columns."""
        headers = ["plan"]
        for name in self.columns():
            kind, _, k = name.partition("@")
            headers.append(f"{_LABELS.get(kind, kind)}@{k}")
        headers += ["p50 ms", "p95 ms", "QPS"]
        rows = []
        for r in self.results:
            row = [r.plan]
            row += [f"{r.metrics.get(name, 0.0):.3f}" for name in self.columns()]
            row += [f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}", f"{r.qps:.1f}"]
            rows.append(row)
        return format_table(headers, rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "embedder_id": self.embedder_id,
            "corpus": self.corpus,
            "queries": self.queries,
            "ks": list(self.ks),
            "results": [r.to_dict() for r in self.results],
            "index": self.index.to_dict() if self.index is not None else None,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent)
