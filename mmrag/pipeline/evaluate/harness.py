"""The evaluation harness: index a dataset's corpus (a driver of the indexing job), embed the
queries once, run every plan over every query, and report quality and speed side by side.

Example:
    >>> from mmrag.pipeline.evaluate.harness import evaluate                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError, MmragError
from mmrag.pipeline.evaluate.datasets import BEIR_ID_KEY, BeirDataset
from mmrag.pipeline.evaluate.hub import open_dataset
from mmrag.pipeline.evaluate.metrics import evaluate_run, latency_stats
from mmrag.pipeline.evaluate.report import EvalReport, PlanResult
from mmrag.store.plan import Plan, parse_plan
from mmrag.types import Embedding, IndexReport, Item

if TYPE_CHECKING:
    from mmrag.embedders.base import Embedder
    from mmrag.embedders.pooling import Pooler
    from mmrag.store.contract import VectorStore

__all__ = ["evaluate", "index_corpus", "run_plan"]

logger = logging.getLogger(__name__)


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
    on_progress: Callable[[int], None] | None = None,
    id_of: dict[str, str] | None = None,
) -> IndexReport:
    """Index the corpus pages not yet in ``store`` with the indexing job (the same steps as
    ``mmrag index``: skip stored, load, embed, pool, write, publish); then build its indexes.

    A page that cannot be read or embedded is reported in the returned
    :class:`~mmrag.types.IndexReport` and the rest are indexed. ``on_progress(n)`` is called
    with the number of pages handled (indexed, skipped or failed) since its last call. ``id_of``,
    when given, is filled with point id → corpus id. Pages stored as bytes are written to a
    scratch folder while they are indexed (and read from there like any image file).
    """
    from mmrag.pipeline.indexing import index_items

    pooler = pooler if pooler is not None else _default_pooler(store)
    report = IndexReport()

    def items(spool: str) -> Iterator[Item]:  # advanced by the job's ingest thread
        for doc_id, entry in dataset.corpus.items():
            try:
                item = entry.to_item(embedder.id, spool=spool)
            except MmragError as error:  # an unreadable page: reported, the rest indexed
                report.add_failure(entry.label, error)
                logger.warning("cannot read %s: %s", entry.label, error)
                if on_progress is not None:
                    on_progress(1)
                continue
            if id_of is not None:
                id_of[item.id] = doc_id
            yield item

    with tempfile.TemporaryDirectory(prefix="mmrag-eval-") as spool:
        index_items(
            items(spool),
            embedder=embedder,
            store=store,
            pooler=pooler,
            batch_size=batch_size,
            on_progress=on_progress,
            report=report,
        )
    report.sources = len(dataset.corpus)
    return report


# -- evaluation ---------------------------------------------------------------------------------


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
    on_progress: Callable[[int], None] | None = None,
) -> EvalReport:
    """Index the dataset's corpus (unless ``index=False``), then evaluate every plan.

    ``dataset_dir`` is anything :func:`~mmrag.pipeline.evaluate.hub.open_dataset` reads (a
    BEIR folder, a Hugging Face dataset id or a local copy of one; ``split`` picks the split),
    or a loaded :class:`BeirDataset`. ``store`` must have been opened with the embedder's schema
    (:meth:`CollectionSchema.for_embedder_object`). ``on_progress(n)`` follows the indexing of
    the corpus, page by page. Returns an :class:`EvalReport`; print ``report.table()`` or save
    ``report.to_json()``.

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
    dataset = (
        dataset_dir if isinstance(dataset_dir, BeirDataset) else open_dataset(dataset_dir, split)
    )
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
    # Point id -> corpus id (the payload's metadata carries it too, for stores built elsewhere).
    id_of: dict[str, str] = {}
    index_report = (
        index_corpus(
            dataset,
            embedder,
            store,
            pooler=pooler,
            batch_size=batch_size,
            on_progress=on_progress,
            id_of=id_of,
        )
        if index
        else None
    )
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
