"""Evaluate retrieval plans side by side on a BEIR-layout dataset (the layout ViDoRe uses).

A dataset folder holds ``corpus.jsonl`` (one page per line: ``_id`` and an ``image`` path, or a
``pdf`` path and a 1-based ``page``; optional ``text``), ``queries.jsonl`` (``_id``, ``text``)
and ``qrels/<split>.tsv`` (``query-id  corpus-id  score``, graded relevance). Paths are relative
to the dataset folder.

:func:`evaluate` indexes the corpus with an embedder into a store (skipping pages already
there), embeds the queries once, then runs each plan over every query, one at a time, and
reports NDCG@k and Recall@k (as pytrec_eval / BEIR compute them: linear gains, log2 discount),
MRR@10, and the search latency p50 / p95 and QPS of each plan (query embedding excluded: it is
the same for every plan). :meth:`EvalReport.table` prints plans as rows and metrics as columns;
:meth:`EvalReport.to_json` gives the same as JSON.

Example:
    >>> from mmrag.pipeline.evaluate import ndcg_at_k, recall_at_k, mrr_at_k
    >>> qrels = {"d1": 2, "d2": 1}
    >>> round(ndcg_at_k(["d2", "x", "d1"], qrels, 3), 4)
    0.7602
    >>> recall_at_k(["d2", "x", "d1"], qrels, 2), mrr_at_k(["x", "d1"], qrels, 10)
    (0.5, 0.5)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.errors import ConfigError
from mmrag.pipeline.indexing import with_views
from mmrag.store.plan import Plan, parse_plan
from mmrag.types import Embedding, IndexReport, Item, Modality

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.embedders.base import Embedder
    from mmrag.embedders.pooling import Pooler
    from mmrag.store.contract import VectorStore

__all__ = [
    "BeirDataset",
    "CorpusEntry",
    "EvalReport",
    "PlanResult",
    "evaluate",
    "evaluate_run",
    "index_corpus",
    "latency_stats",
    "load_beir",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
]

logger = logging.getLogger(__name__)

BEIR_ID_KEY = "beir_id"


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


# -- datasets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusEntry:
    """One corpus document: a page image, a PDF page, or (text corpora) text only."""

    id: str
    image: Path | None = None
    pdf: Path | None = None
    page: int | None = None
    text: str | None = None
    title: str | None = None

    def to_item(self, embedder_id: str = "", *, dpi: int = 144) -> Item:
        """The :class:`~mmrag.types.Item` to embed (its pixels load lazily)."""
        metadata = {BEIR_ID_KEY: self.id}
        if self.image is not None:
            path = self.image
            return Item(
                source=str(path),
                source_sha256=_sha256_file(path),
                modality=Modality.IMAGE,
                text=self.text,
                metadata=metadata,
                embedder_id=embedder_id,
                image_loader=lambda: _load_image(path),
            )
        if self.pdf is not None:
            pdf, page = self.pdf, self.page or 1
            return Item(
                source=str(pdf),
                source_sha256=_sha256_file(pdf),
                modality=Modality.PDF_PAGE,
                page=page,
                text=self.text,
                metadata=metadata,
                embedder_id=embedder_id,
                image_loader=lambda: _render_pdf_page(pdf, page, dpi),
            )
        text = self.text or ""
        return Item(
            source=f"corpus:{self.id}",
            source_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            modality=Modality.TEXT,
            text=text,
            metadata=metadata,
            embedder_id=embedder_id,
        )


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR-layout dataset: corpus, queries and graded relevance judgements of one split."""

    name: str
    root: Path
    split: str
    corpus: Mapping[str, CorpusEntry]
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]

    @property
    def judged_queries(self) -> list[str]:
        """Query ids with text and at least one relevant document, in file order."""
        return [
            q
            for q in self.queries
            if q in self.qrels and any(g > 0 for g in self.qrels[q].values())
        ]


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object per line")
            yield number, row


def _first(row: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def _corpus_entry(root: Path, where: str, row: Mapping[str, Any]) -> CorpusEntry:
    doc_id = _first(row, "_id", "corpus-id", "id")
    if doc_id is None:
        raise ConfigError(f"{where}: a corpus line needs an '_id'")
    image = _first(row, "image", "image_path", "file")
    pdf = _first(row, "pdf", "pdf_path")
    page = _first(row, "page", "page_number")
    text = _first(row, "text")
    if image is None and pdf is None and text is None:
        raise ConfigError(
            f"{where}: corpus document {doc_id!r} has no 'image' path, no 'pdf' + 'page' and no "
            "'text'; give one of them"
        )
    resolved = {}
    for key, value in (("image", image), ("pdf", pdf)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(
                f"{where}: {key!r} must be a path relative to the dataset folder, got "
                f"{type(value).__name__} (embedded image bytes are not supported; save the "
                "images as files)"
            )
        path = (root / value).resolve()
        if not path.is_file():
            raise ConfigError(f"{where}: {key} file {value!r} not found under {root}")
        resolved[key] = path
    if page is not None and (not isinstance(page, int) or page < 1):
        raise ConfigError(f"{where}: 'page' is 1-based, got {page!r}")
    return CorpusEntry(
        id=str(doc_id),
        image=resolved.get("image"),
        pdf=resolved.get("pdf"),
        page=page,
        text=text,
        title=_first(row, "title"),
    )


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """Read a BEIR-layout dataset folder; errors name the file, the line and the fix.

    Example:
        >>> from mmrag.pipeline.evaluate import load_beir     # doctest: +SKIP
        >>> ds = load_beir("vidore_docvqa_beir")               # doctest: +SKIP
        >>> len(ds.corpus), len(ds.judged_queries)             # doctest: +SKIP
        (500, 451)
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder; a BEIR dataset is a folder with corpus.jsonl")
    corpus: dict[str, CorpusEntry] = {}
    for number, row in _read_jsonl(root / "corpus.jsonl"):
        entry = _corpus_entry(root, f"{root / 'corpus.jsonl'}:{number}", row)
        if entry.id in corpus:
            raise ConfigError(f"{root / 'corpus.jsonl'}:{number}: duplicate _id {entry.id!r}")
        corpus[entry.id] = entry
    queries: dict[str, str] = {}
    for number, row in _read_jsonl(root / "queries.jsonl"):
        qid, text = _first(row, "_id", "query-id", "id"), _first(row, "text", "query")
        if qid is None or text is None:
            raise ConfigError(
                f"{root / 'queries.jsonl'}:{number}: a query line needs '_id' and 'text'"
            )
        queries[str(qid)] = str(text)
    qrels = _read_qrels(root / "qrels" / f"{split}.tsv", corpus)
    if not corpus or not queries:
        raise ConfigError(f"{root}: the corpus or the queries are empty")
    return BeirDataset(
        name=root.name, root=root, split=split, corpus=corpus, queries=queries, qrels=qrels
    )


def _read_qrels(path: Path, corpus: Mapping[str, CorpusEntry]) -> dict[str, dict[str, int]]:
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.tsv"))
        raise ConfigError(
            f"{path}: no such qrels file" + (f"; splits here: {available}" if available else "")
        )
    qrels: dict[str, dict[str, int]] = {}
    unknown = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split()
        if not parts:
            continue
        if number == 1 and parts[0].lower() in ("query-id", "query_id", "qid", "queryid"):
            continue  # header: query-id corpus-id score
        if len(parts) == 4:  # TREC: qid iteration docid relevance
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3:
            raise ConfigError(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score'")
        qid, doc_id, score = parts
        try:
            grade = int(float(score))
        except ValueError:
            raise ConfigError(f"{path}:{number}: score {score!r} is not a number") from None
        if doc_id not in corpus:
            unknown += 1
        qrels.setdefault(qid, {})[doc_id] = grade
    if unknown:
        logger.warning("%s: %d judgements name documents missing from the corpus", path, unknown)
    return qrels


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_image(path: Path) -> Image.Image:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _render_pdf_page(path: Path, page: int, dpi: int) -> Image.Image:
    import pymupdf
    from PIL import Image

    with pymupdf.open(path) as document:
        if not 1 <= page <= document.page_count:
            raise ConfigError(f"{path}: page {page} does not exist ({document.page_count} pages)")
        pixmap = document[page - 1].get_pixmap(dpi=dpi, alpha=False)
        return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


# -- indexing ------------------------------------------------------------------------------------


def _default_pooler(store: VectorStore) -> Pooler | None:
    schema = store.schema
    if schema.kind != "multi" or not schema.views:
        return None
    from mmrag.config import PoolingConfig
    from mmrag.embedders.pooling import Pooler

    return Pooler(PoolingConfig(views=list(schema.views), **dict(schema.pooling)))


def index_corpus(
    dataset: BeirDataset,
    embedder: Embedder,
    store: VectorStore,
    *,
    pooler: Pooler | None = None,
    batch_size: int = 8,
) -> IndexReport:
    """Embed and upsert the corpus pages not yet in ``store``; then build its indexes.

    A batch that fails is retried page by page, so one unreadable page is reported in the
    returned :class:`~mmrag.types.IndexReport` and the rest are indexed.
    """
    started = time.perf_counter()
    report = IndexReport(sources=len(dataset.corpus))
    pooler = pooler if pooler is not None else _default_pooler(store)
    views = store.schema.views
    items = [entry.to_item(embedder.id) for entry in dataset.corpus.values()]
    present = store.existing([item.id for item in items])
    todo = [item for item in items if item.id not in present]
    report.skipped = len(items) - len(todo)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        try:
            embeddings = embedder.embed_documents(batch)
            pairs = [
                (i, with_views(e, pooler, views)) for i, e in zip(batch, embeddings, strict=True)
            ]
        except Exception as exc:
            logger.warning("a batch of %d pages failed (%s); retrying one by one", len(batch), exc)
            pairs = []
            for item in batch:
                try:
                    (embedding,) = embedder.embed_documents([item])
                    pairs.append((item, with_views(embedding, pooler, views)))
                except Exception as item_exc:
                    report.add_failure(f"{item.source} ({item.locator})", item_exc)
                    logger.warning("cannot index %s: %s", item.citation(), item_exc)
        report.indexed += store.upsert(pairs)
        logger.info("indexed %d / %d pages", report.indexed, len(todo))
    if report.indexed:
        store.optimize()
    report.duration_s = time.perf_counter() - started
    return report


# -- evaluation ----------------------------------------------------------------------------------


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
        >>> from mmrag.pipeline.evaluate import EvalReport, PlanResult
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
        widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
        lines = []
        for row in [headers, *rows]:
            cells = [row[0].ljust(widths[0])]
            cells += [str(c).rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)

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


def run_plan(
    retriever: Any,
    query_ids: Sequence[str],
    embeddings: Sequence[Embedding],
    texts: Sequence[str],
    id_of: Mapping[str, str],
    *,
    warmup: int = 1,
) -> tuple[dict[str, list[str]], list[float]]:
    """Search every query once, timing each; returns the run (corpus ids) and latencies (s)."""
    for i in range(min(warmup, len(embeddings))):
        retriever.search(embeddings[i], text=texts[i])
    run: dict[str, list[str]] = {}
    latencies: list[float] = []
    for qid, embedding, text in zip(query_ids, embeddings, texts, strict=True):
        started = time.perf_counter()
        hits = retriever.search(embedding, text=text)
        latencies.append(time.perf_counter() - started)
        ranking = []
        for hit in hits:
            doc = id_of.get(hit.id) or hit.item.metadata.get(BEIR_ID_KEY)
            if doc is not None:
                ranking.append(str(doc))
        run[qid] = ranking
    return run, latencies


def evaluate(
    dataset_dir: str | Path | BeirDataset,
    embedder: Embedder,
    store: VectorStore,
    plans: Sequence[str | Plan],
    ks: Sequence[int] = (5, 10),
    *,
    split: str = "test",
    pooler: Pooler | None = None,
    batch_size: int = 8,
    max_queries: int | None = None,
    index: bool = True,
    warmup: int = 1,
) -> EvalReport:
    """Index the dataset's corpus (unless ``index=False``), then evaluate every plan.

    ``store`` must have been opened with the embedder's schema
    (:meth:`CollectionSchema.for_embedder_object`). Returns an :class:`EvalReport`; print
    ``report.table()`` or save ``report.to_json()``.

    Example:
        >>> from mmrag.pipeline.evaluate import evaluate                       # doctest: +SKIP
        >>> report = evaluate("vidore_docvqa_beir", embedder, store,
        ...                   ["full@10", "rows@64 -> full@10"], ks=[5, 10])   # doctest: +SKIP
        >>> print(report.table())                                              # doctest: +SKIP
    """
    from mmrag.pipeline.retrieval import Retriever

    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ConfigError(f"ks must be positive integers, got {list(ks)}")
    parsed = [parse_plan(p) if isinstance(p, str) else p for p in plans]
    if not parsed:
        raise ConfigError("give at least one plan to evaluate, e.g. 'full@10'")
    if store.schema.embedder_id != embedder.id:
        raise ConfigError(
            f"the store was built with {store.schema.embedder_id!r}, not with {embedder.id!r}; "
            "open a store for this embedder (another collection name)"
        )
    dataset = dataset_dir if isinstance(dataset_dir, BeirDataset) else load_beir(dataset_dir, split)
    pooler = pooler if pooler is not None else _default_pooler(store)
    retrievers = [
        Retriever(store, plan, pooler=pooler, record_stage_scores=False) for plan in parsed
    ]  # checks every plan against the collection before any work is done
    depth = max(max(ks), 10)
    for plan in parsed:
        if plan.limit < depth:
            logger.warning(
                "plan %s returns %d hits; metrics at k > %d count the rest as misses",
                plan,
                plan.limit,
                plan.limit,
            )
    index_report = (
        index_corpus(dataset, embedder, store, pooler=pooler, batch_size=batch_size)
        if index
        else None
    )
    # Point id -> corpus id (the payload's metadata carries it too, for stores built elsewhere).
    id_of = {entry.to_item(embedder.id).id: doc_id for doc_id, entry in dataset.corpus.items()}
    query_ids = dataset.judged_queries[:max_queries] if max_queries else dataset.judged_queries
    texts = [dataset.queries[q] for q in query_ids]
    embeddings: list[Embedding] = []
    for start in range(0, len(texts), batch_size):
        embeddings.extend(embedder.embed_queries(texts[start : start + batch_size]))
    qrels = {q: dataset.qrels[q] for q in query_ids}
    report = EvalReport(
        dataset=dataset.name,
        split=dataset.split,
        embedder_id=embedder.id,
        corpus=len(dataset.corpus),
        queries=len(query_ids),
        ks=ks,
        index=index_report,
    )
    for plan, retriever in zip(parsed, retrievers, strict=True):
        run, latencies = run_plan(retriever, query_ids, embeddings, texts, id_of, warmup=warmup)
        speed = latency_stats(latencies)
        report.results.append(
            PlanResult(
                plan=str(plan),
                metrics=evaluate_run(run, qrels, ks),
                p50_ms=speed["p50_ms"],
                p95_ms=speed["p95_ms"],
                qps=speed["qps"],
                queries=len(latencies),
            )
        )
        logger.info("evaluated %s on %d queries", plan, len(latencies))
    return report
