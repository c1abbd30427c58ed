"""The codec table: one row per storage setting (codec, ``full`` pooling, document tokens), with
its quality against exact float32 MaxSim, its size per page and its speed.

Example:
    >>> from mmrag.pipeline.evaluate.codec_report import CodecReport, CodecRow, CodecSetting
    >>> row = CodecRow(CodecSetting("uint8", 1, "all"), {"recall@10_vs_exact": 0.98,
    ...                "top1_vs_exact": 1.0}, disk_bytes_per_page=40_000.0,
    ...                ram_bytes_per_page=9_000.0, p50_ms=3.0, qps=300.0, queries=2)
    >>> report = CodecReport(dataset="toy", embedder_id="e", plan="full@10", pages=3,
    ...                      queries=2, labelled=False, ks=(10,), reference="all", rows=[row])
    >>> print(report.table())
    codec  pool  tokens  R@10 exact  top-1 exact  disk KB/page  RAM KB/page  p50 ms    QPS
    uint8     1     all       0.980        1.000          40.0          9.0    3.00  300.0
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mmrag.pipeline.evaluate.report import format_table

__all__ = ["CodecReport", "CodecRow", "CodecSetting", "codec_metric_names"]


@dataclass(frozen=True)
class CodecSetting:
    """How one temporary store holds the same embeddings: the codec of every stored vector,
    the hierarchical pooling factor of ``full`` (1: every token), and which document tokens are
    stored (``"all"`` / ``"visual"``; ``None`` for an embedder without that choice).

    Example:
        >>> from mmrag.pipeline.evaluate.codec_report import CodecSetting
        >>> CodecSetting("binary", 2, "visual").label
        'binary full/2 visual'
    """

    codec: str
    full_pool_factor: int = 1
    document_tokens: str | None = None

    @property
    def label(self) -> str:
        """A short name: ``codec``, ``full/<factor>`` when pooled, the document tokens."""
        parts = [self.codec]
        if self.full_pool_factor != 1:
            parts.append(f"full/{self.full_pool_factor}")
        if self.document_tokens is not None:
            parts.append(self.document_tokens)
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "codec": self.codec,
            "full_pool_factor": self.full_pool_factor,
            "document_tokens": self.document_tokens,
        }


def codec_metric_names(ks: Sequence[int], labelled: bool) -> list[str]:
    """The quality columns, in table order: ``ndcg@k`` (labelled data only), then
    ``recall@k_vs_exact`` for each ``k``, then ``top1_vs_exact``.

    Example:
        >>> codec_metric_names([5, 10], labelled=True)
        ['ndcg@5', 'ndcg@10', 'recall@5_vs_exact', 'recall@10_vs_exact', 'top1_vs_exact']
    """
    names = [f"ndcg@{k}" for k in ks] if labelled else []
    return [*names, *(f"recall@{k}_vs_exact" for k in ks), "top1_vs_exact"]


@dataclass(frozen=True)
class CodecRow:
    """One setting's quality, size and speed.

    ``metrics`` holds :func:`codec_metric_names`; ``disk_bytes_per_page`` is the collection's
    allocated size on disk (vectors, graphs, payload; the bounded write-ahead log is left out)
    divided by the pages, ``ram_bytes_per_page`` what the engine keeps in memory (vectors not
    stored on disk, quantised copies kept in RAM, HNSW graphs) per page.
    """

    setting: CodecSetting
    metrics: Mapping[str, float]
    disk_bytes_per_page: float
    ram_bytes_per_page: float
    p50_ms: float
    qps: float
    queries: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            **self.setting.to_dict(),
            "metrics": dict(self.metrics),
            "disk_bytes_per_page": self.disk_bytes_per_page,
            "ram_bytes_per_page": self.ram_bytes_per_page,
            "p50_ms": self.p50_ms,
            "qps": self.qps,
            "queries": self.queries,
        }


_LABELS = {"ndcg": "NDCG", "recall": "R", "top1": "top-1"}


def _header(name: str) -> str:
    head, _, tail = name.partition("_vs_")
    kind, at, k = head.partition("@")
    label = f"{_LABELS.get(kind, kind)}{at}{k}"
    return f"{label} {tail}" if tail else label


@dataclass
class CodecReport:
    """The codec table of one corpus: every setting side by side (see
    :func:`~mmrag.pipeline.evaluate.codec_table.codec_table`).

    ``reference`` names the document tokens of the exact float32 MaxSim ranking that
    ``*_vs_exact`` columns compare with (the embedder's own setting). ``labelled`` says whether
    the queries come with relevance judgements (NDCG columns) or were sampled from the pages.

    Example:
        >>> from mmrag.pipeline.evaluate.codec_report import CodecReport
        >>> CodecReport(dataset="toy", embedder_id="e", plan="full@10", pages=0, queries=0,
        ...             labelled=False, ks=(10,), reference="all").to_dict()["rows"]
        []
    """

    dataset: str
    embedder_id: str
    plan: str
    pages: int
    queries: int
    labelled: bool
    ks: tuple[int, ...]
    reference: str | None
    rows: list[CodecRow] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def columns(self) -> list[str]:
        """Metric keys in table order."""
        return codec_metric_names(self.ks, self.labelled)

    def table(self) -> str:
        """Settings as rows (``pool``: the ``full_pool_factor``; ``tokens``: the document
        tokens); NDCG@k, Recall@k and top-1 against exact float32 MaxSim, KB per page on disk and
        in RAM, p50 latency and QPS as columns."""
        headers = ["codec", "pool", "tokens", *map(_header, self.columns())]
        headers += ["disk KB/page", "RAM KB/page", "p50 ms", "QPS"]
        rows = []
        for r in self.rows:
            row = [r.setting.codec, str(r.setting.full_pool_factor)]
            row.append(r.setting.document_tokens or "-")
            row += [f"{r.metrics.get(name, 0.0):.3f}" for name in self.columns()]
            row += [f"{r.disk_bytes_per_page / 1e3:.1f}", f"{r.ram_bytes_per_page / 1e3:.1f}"]
            row += [f"{r.p50_ms:.2f}", f"{r.qps:.1f}"]
            rows.append(row)
        return format_table(headers, rows)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "dataset": self.dataset,
            "embedder_id": self.embedder_id,
            "plan": self.plan,
            "pages": self.pages,
            "queries": self.queries,
            "labelled": self.labelled,
            "ks": list(self.ks),
            "reference": self.reference,
            "rows": [r.to_dict() for r in self.rows],
            "failed": list(self.failed),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent)
