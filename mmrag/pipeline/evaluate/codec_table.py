"""The codec table: what each way of storing the same pages costs and keeps, on the user's pages.

:func:`codec_table` embeds a corpus and its queries **once**, then writes the same embeddings into
one temporary embedded store per setting — every codec of :data:`mmrag.store.codecs.CODECS`
(applied to every stored vector: ``full`` and the pooled views), each ``full_pool_factor``
(``full`` stored every token, or hierarchically pooled by 2 or 3), and, for ColPali-family
embedders, each choice of document tokens (``"all"``, the published recipe, or ``"visual"``) —
and runs the retrieval plan over every query. Each row reports:

* quality: NDCG@k on labelled data; Recall@k and top-1 agreement against the **exact float32
  MaxSim** ranking of the uncompressed embeddings (the embedder's own document tokens), computed
  here in NumPy/torch over every page;
* bytes per page on disk (the collection's allocated size, write-ahead log excluded) and in RAM
  (what the engine keeps resident: vectors not stored on disk, quantised copies kept in RAM,
  HNSW graphs);
* search latency p50 and QPS of the plan (query embedding excluded).

The corpus is a labelled dataset (a BEIR folder, a Hugging Face dataset id or a local copy: see
:func:`~mmrag.pipeline.evaluate.hub.open_dataset`), or a folder of the user's own **unlabelled**
pages (PDFs, images): then ``sample_queries`` queries are drawn from the pages themselves (a
window of a page's text layer, else a crop of the page image as an image query), and quality is
agreement with exact float32 MaxSim only.

Example:
    >>> from mmrag.pipeline.evaluate.codec_table import codec_table            # doctest: +SKIP
    >>> report = codec_table("my_beir_folder", embedder, plan="full@10",
    ...                      codecs=["float32", "uint8", "binary"])             # doctest: +SKIP
    >>> print(report.table())                                                   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.errors import ConfigError, MmragError
from mmrag.pipeline.evaluate.codec_corpus import Corpus, open_corpus, sample_queries
from mmrag.pipeline.evaluate.codec_report import CodecReport, CodecRow, CodecSetting
from mmrag.pipeline.evaluate.datasets import BEIR_ID_KEY, BeirDataset
from mmrag.pipeline.evaluate.metrics import latency_stats, ndcg_at_k
from mmrag.types import Embedding, Item

if TYPE_CHECKING:
    from mmrag.config import PoolingConfig
    from mmrag.embedders.base import Embedder
    from mmrag.pipeline.ingest import IngestConfig
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.plan import Plan

__all__ = ["codec_settings", "codec_table", "codec_table_for", "sample_queries"]

logger = logging.getLogger(__name__)

#: ``full_pool_factor`` values compared by default (1: every token stored).
POOL_FACTORS = (1, 2, 3)
#: The collection name of each temporary store.
_COLLECTION = "codec_table"


# -- settings ----------------------------------------------------------------------------------


def _token_choices(embedder: Embedder) -> tuple[str, ...]:
    """The document-token choices an embedder offers (none for most)."""
    from mmrag.embedders.colvision import DOCUMENT_TOKENS

    return DOCUMENT_TOKENS if getattr(embedder, "document_tokens", None) else ()


def codec_settings(
    embedder: Embedder,
    codecs: Sequence[str] | None = None,
    pool_factors: Sequence[int] | None = None,
    document_tokens: Sequence[str] | None = None,
) -> list[CodecSetting]:
    """Every combination to measure, checked: ``codecs`` (default: all of
    :data:`~mmrag.store.codecs.CODECS`), ``pool_factors`` (default 1, 2, 3) and
    ``document_tokens`` (default: both, for an embedder that has the choice).

    Example:
        >>> from mmrag.embedders.colpali import ColPaliEmbedder
        >>> e = ColPaliEmbedder("org/m")
        >>> [s.label for s in codec_settings(e, ["float32"], [1, 2], ["all"])]
        ['float32 all', 'float32 full/2 all']
    """
    from mmrag.store.codecs import CODECS

    codecs = list(codecs) if codecs else list(CODECS)
    unknown = [c for c in codecs if c not in CODECS]
    if unknown:
        raise ConfigError(f"unknown codec(s) {unknown}; the store knows {', '.join(CODECS)}")
    factors = list(pool_factors) if pool_factors else list(POOL_FACTORS)
    if any(int(f) < 1 for f in factors):
        raise ConfigError(f"full_pool_factor values must be >= 1, got {factors}")
    choices = _token_choices(embedder)
    if document_tokens and not choices:
        raise ConfigError(
            f"{type(embedder).__name__} has no choice of document tokens; drop document_tokens "
            "(only ColPali-family embedders store all tokens or visual tokens only)"
        )
    tokens: list[str | None] = list(document_tokens or choices) or [None]
    wrong = [t for t in tokens if t is not None and t not in choices]
    if wrong:
        raise ConfigError(f"document_tokens must be among {list(choices)}, got {wrong}")
    return [
        CodecSetting(codec, int(factor), token)
        for token in dict.fromkeys(tokens)
        for factor in dict.fromkeys(factors)
        for codec in dict.fromkeys(codecs)
    ]


def _variant(embedder: Embedder, tokens: str | None) -> Embedder:
    """``embedder`` with ``document_tokens=tokens`` (itself when it already is, or no choice)."""
    if tokens is None or getattr(embedder, "document_tokens", None) == tokens:
        return embedder
    data = embedder.to_dict()  # type: ignore[attr-defined]
    params = {**data.get("init_parameters", {}), "document_tokens": tokens}
    return type(embedder).from_dict({**data, "init_parameters": params})  # type: ignore[attr-defined]


def _with_tokens(embedding: Embedding, tokens: str | None) -> Embedding:
    """The embedding as stored with ``tokens``: all document tokens as embedded, or the visual
    ones only (exactly what ``document_tokens="visual"`` embeds: the same vectors, grid order)."""
    if tokens != "visual" or embedding.mask is None or bool(embedding.mask.all()):
        return embedding
    visual = embedding.visual()
    mask = np.ones(visual.shape[0], dtype=bool)
    return dataclasses.replace(embedding, multi=visual, mask=mask)


# -- embedding once ------------------------------------------------------------------------------


def _embed_pages(
    corpus: Corpus,
    embedder: Embedder,
    pooling: PoolingConfig,
    batch_size: int,
    on_progress: Callable[[int], None] | None,
) -> tuple[list[str], list[Item], list[Embedding]]:
    """Embed every page once (with the pooled views); a page that fails is reported."""
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.indexing.steps import with_views

    pooler = Pooler(pooling)
    ids: list[str] = []
    items: list[Item] = []
    embeddings: list[Embedding] = []

    def run(batch: list[tuple[str, Item]]) -> None:
        try:
            done = embedder.embed_documents([item for _, item in batch])
        except (MmragError, OSError, ValueError, RuntimeError) as error:
            if len(batch) > 1:
                for one in batch:
                    run([one])
                return
            corpus.failed.append({"source": batch[0][1].source, "reason": str(error)})
            return
        for (doc_id, item), embedding in zip(batch, done, strict=True):
            ids.append(doc_id)
            items.append(item)
            embeddings.append(with_views(embedding, pooler, pooling.views))

    for start in range(0, len(corpus.items), batch_size):
        batch = corpus.items[start : start + batch_size]
        run(batch)
        if on_progress is not None:
            on_progress(len(batch))
    if not embeddings:
        raise ConfigError(f"{corpus.name}: no page could be embedded ({corpus.failed[:3]})")
    return ids, items, embeddings


def _exact_rankings(
    queries: Sequence[np.ndarray], documents: Sequence[np.ndarray], ids: Sequence[str], depth: int
) -> list[list[str]]:
    """The top ``depth`` corpus ids of each query by exact float32 MaxSim over all pages."""
    from mmrag.scoring import maxsim

    scores = np.concatenate(
        [maxsim(queries[s : s + 8], documents, batch_size=16) for s in range(0, len(queries), 8)]
    )  # (queries, pages), float32
    order = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
    return [[ids[j] for j in row] for row in order]


# -- one temporary store per setting -----------------------------------------------------------


def _footprint(folder: Path, schema: Any) -> tuple[int, int]:
    """Allocated bytes on disk (write-ahead log excluded) and of what the engine keeps in RAM:
    the storage of vectors not kept on disk, quantised vectors, and HNSW graphs."""
    in_ram = {name for name, spec in schema.vectors().items() if not spec.on_disk}
    disk = ram = 0
    for root, _dirs, files in os.walk(folder):
        parts = Path(root).relative_to(folder).parts
        if "wal" in parts:
            continue
        for name in files:
            size = os.stat(os.path.join(root, name)).st_blocks * 512  # allocated, not apparent
            disk += size
            where = "/".join(parts)
            vector = next((p.split("-", 1)[1] for p in parts if "-" in p and "vector" in p), None)
            if "quantiz" in where or "vector_index" in where or vector in in_ram:
                ram += size
    return disk, ram


def _codecs(pooling: PoolingConfig, codec: str) -> dict[str, str]:
    """``codec`` for every stored vector: ``full`` and each pooled view."""
    return dict.fromkeys(("full", *pooling.views), codec)


def _pooling_with(pooling: PoolingConfig, factor: int) -> PoolingConfig:
    if "full_pool_factor" not in type(pooling).model_fields:
        if factor != 1:
            raise ConfigError("this version of mmrag stores `full` unpooled only")
        return pooling
    return pooling.model_copy(update={"full_pool_factor": factor})


def _measure(
    setting: CodecSetting,
    embedder_id: str,
    dim: int,
    pooling: PoolingConfig,
    plan: Plan,
    points: Iterator[tuple[Item, Embedding]],
    queries: Sequence[Embedding],
    workdir: str | None,
) -> tuple[list[list[str]], list[float], int, int, int]:
    """Write one store with ``setting``, run every query; rankings, latencies, pages, bytes."""
    from mmrag.config import StoreConfig
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.retrieval import Retriever
    from mmrag.store import open_store
    from mmrag.store.schema import CollectionSchema

    pooled = _pooling_with(pooling, setting.full_pool_factor)
    schema = CollectionSchema.for_embedder(
        embedder_id, "multi", dim, pooled, text="text" in plan.vectors
    )
    with tempfile.TemporaryDirectory(prefix="mmrag-codec-", dir=workdir) as folder:
        config = StoreConfig(
            path=folder, collection=_COLLECTION, codecs=_codecs(pooled, setting.codec)
        )
        store = open_store(config, schema)  # the config's codecs are the collection's
        try:
            pages = store.upsert(points)
            store.optimize()
            retriever = Retriever(store, plan, pooler=Pooler(pooled), record_stage_scores=False)
            retriever.search(queries[0])  # warm-up: caches, lazily loaded segments
            rankings, latencies = [], []
            for query in queries:
                started = time.perf_counter()
                hits = retriever.search(query)
                latencies.append(time.perf_counter() - started)
                rankings.append([str(h.item.metadata.get(BEIR_ID_KEY)) for h in hits])
            stored = store.schema
        finally:
            store.close()
        disk, ram = _footprint(Path(folder) / _COLLECTION, stored)
    return rankings, latencies, pages, disk, ram


def _quality(
    rankings: Sequence[Sequence[str]],
    exact: Sequence[Sequence[str]],
    qrels: Sequence[Mapping[str, int]] | None,
    ks: Sequence[int],
    pages: int,
) -> dict[str, float]:
    out: dict[str, float] = {}
    if qrels is not None:
        for k in ks:
            out[f"ndcg@{k}"] = float(
                np.mean([ndcg_at_k(r, rel, k) for r, rel in zip(rankings, qrels, strict=True)])
            )
    for k in ks:
        want = min(k, pages)
        found = [len(set(r[:k]) & set(e[:k])) / want for r, e in zip(rankings, exact, strict=True)]
        out[f"recall@{k}_vs_exact"] = float(np.mean(found))
    top1 = [bool(r) and r[0] == e[0] for r, e in zip(rankings, exact, strict=True)]
    out["top1_vs_exact"] = float(np.mean(top1))
    return out


# -- the table ---------------------------------------------------------------------------------


def codec_table(
    source: str | os.PathLike[str] | BeirDataset,
    embedder: Embedder,
    *,
    pooling: PoolingConfig | None = None,
    plan: str | Plan = "full@10",
    codecs: Sequence[str] | None = None,
    pool_factors: Sequence[int] | None = None,
    document_tokens: Sequence[str] | None = None,
    ks: Sequence[int] = (5, 10),
    split: str = "test",
    max_queries: int | None = None,
    queries: int = 32,
    seed: int = 0,
    batch_size: int = 8,
    ingest: IngestConfig | None = None,
    workdir: str | os.PathLike[str] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> CodecReport:
    """Measure every codec setting on ``source``'s pages (see the module docstring).

    ``source``: a labelled dataset (BEIR folder, Hugging Face id or local copy; ``split``), a
    loaded :class:`BeirDataset`, or a folder of unlabelled pages (then ``queries`` queries are
    sampled from them with ``seed``). ``embedder`` must be multi-vector. ``plan`` is the
    retrieval plan each store runs; ``pooling`` the pooled views it stores (default: ``global``
    and ``rows``). ``max_queries`` caps the labelled queries. Temporary stores live under
    ``workdir`` (default: the system's temporary folder), one at a time. ``on_progress(n)``
    follows the embedding of the corpus.

    Example:
        >>> from mmrag.pipeline.evaluate.codec_table import codec_table        # doctest: +SKIP
        >>> print(codec_table("pages/", embedder, codecs=["float16", "binary"],
        ...                   pool_factors=[1], queries=50).table())            # doctest: +SKIP
    """
    from mmrag.config import PoolingConfig
    from mmrag.store.plan import parse_plan

    if embedder.kind != "multi":
        raise ConfigError(
            f"the codec table compares ways of storing multi-vector pages; {embedder.id} is a "
            "single-vector embedder (use a ColPali-family embedder, e.g. colmodernvbert)"
        )
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ConfigError(f"ks must be positive integers, got {list(ks)}")
    parsed = (parse_plan(plan) if isinstance(plan, str) else plan).store_plan
    pooling = pooling or PoolingConfig()
    settings = codec_settings(embedder, codecs, pool_factors, document_tokens)
    wanted = {s.document_tokens for s in settings}
    own = getattr(embedder, "document_tokens", None)
    producer = _variant(embedder, "all" if "all" in wanted else own)  # embeds every token once
    work = os.fspath(workdir) if workdir is not None else None
    with tempfile.TemporaryDirectory(prefix="mmrag-codec-pages-", dir=work) as spool:
        corpus = open_corpus(source, split, spool, ingest)
        ids, items, embeddings = _embed_pages(corpus, producer, pooling, batch_size, on_progress)
        labelled = corpus.labelled
        query_ids: list[str] = []
        if labelled:
            query_ids = list(corpus.queries)[:max_queries] if max_queries else list(corpus.queries)
            asked: list[Any] = [corpus.queries[q] for q in query_ids]
        else:
            asked = list(sample_queries(items, queries, seed=seed))
        if not asked:
            raise ConfigError(f"{corpus.name}: no queries to evaluate with")
        query_embeddings: list[Embedding] = []
        for start in range(0, len(asked), batch_size):
            query_embeddings.extend(producer.embed_queries(asked[start : start + batch_size]))
    # Queries search with every token they have (an image query's prompt tokens too).
    searched = [Embedding(multi=np.asarray(q.multi, dtype=np.float32)) for q in query_embeddings]
    depth = max(max(ks), 10)
    exact = _exact_rankings(
        [q.multi for q in searched],
        [_with_tokens(e, own).multi for e in embeddings],
        ids,
        depth,
    )
    if parsed.limit < max(ks):
        logger.warning(
            "plan %s returns %d hits; recall@%d counts the rest as misses",
            parsed,
            parsed.limit,
            max(ks),
        )
    report = CodecReport(
        dataset=corpus.name,
        embedder_id=embedder.id,
        plan=str(parsed),
        pages=len(embeddings),
        queries=len(searched),
        labelled=labelled,
        ks=ks,
        reference=own,
        failed=corpus.failed,
    )
    qrels = [corpus.qrels.get(q, {}) for q in query_ids] if labelled else None
    for setting in settings:
        variant = _variant(embedder, setting.document_tokens)
        stored = (
            (item, _with_tokens(e, setting.document_tokens))
            for item, e in zip(items, embeddings, strict=True)
        )
        rankings, latencies, pages, disk, ram = _measure(
            setting, variant.id, producer.dim, pooling, parsed, stored, searched, work
        )
        speed = latency_stats(latencies)
        report.rows.append(
            CodecRow(
                setting=setting,
                metrics=_quality(rankings, exact, qrels, ks, pages),
                disk_bytes_per_page=disk / max(pages, 1),
                ram_bytes_per_page=ram / max(pages, 1),
                p50_ms=speed["p50_ms"],
                qps=speed["qps"],
                queries=len(latencies),
            )
        )
        logger.info("codec table: %s measured on %d queries", setting.label, len(latencies))
    return report


def codec_table_for(
    pipeline: Pipeline, source: str | os.PathLike[str] | BeirDataset, **options: Any
) -> CodecReport:
    """:func:`codec_table` with a pipeline's embedder, pooled views, plan and ingest settings
    (what ``mmrag eval DATASET --codecs`` runs); ``options`` go to :func:`codec_table`.

    Example:
        >>> from mmrag.pipeline.evaluate.codec_table import codec_table_for    # doctest: +SKIP
        >>> print(codec_table_for(pipeline, "pages/", pool_factors=[1]).table())  # doctest: +SKIP
    """
    options.setdefault("pooling", pipeline.config.pooling)
    options.setdefault("plan", pipeline.plan())
    options.setdefault("ingest", pipeline.config.ingest)
    return codec_table(source, pipeline.embedder, **options)
