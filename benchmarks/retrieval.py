"""Multi-stage retrieval on the embedded store: exact MaxSim vs pooled 2- and 3-stage plans.

A seeded synthetic corpus of ColPali-like pages (a 32 x 32 patch grid plus a 6-token prefix:
1,030 x 128 vectors per page) with spatial structure: each page has a few rectangular topic
regions whose patches share a topic vector (perturbed per page), neighbouring patches are
correlated (box-blurred noise), and the rest of the page is layout background. Queries are
noisy token samples from one region of one page (a question about one figure or paragraph).

The pages go into the embedded store (Qdrant Edge) with the pooled views ``global`` (1 vector)
and ``rows`` (32 vectors) in HNSW and ``full`` (every token, float16, on disk, no HNSW). Then,
on the same store, one query at a time:

- exact MaxSim over ``full`` (``full@10``) — the reference ranking, cross-checked against
  ``mmrag.scoring.maxsim`` on a few queries;
- the 2-stage plan (default ``rows@64 -> full@10``) and the 3-stage plan (default
  ``global@300 -> rows@48 -> full@10``): QPS, p50 latency, recall@10 against the exact top 10.

The last line printed is one JSON object with the numbers.

    python benchmarks/retrieval.py                # 5,000 pages (~10 minutes on 2 cores)
    python benchmarks/retrieval.py --pages 500    # a quick smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmrag.config import PoolingConfig
from mmrag.embedders.pooling import Pooler
from mmrag.pipeline.retrieval import Retriever
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.plan import parse_plan
from mmrag.store.records import Point
from mmrag.store.schema import CollectionSchema
from mmrag.types import item_id

GRID = (32, 32)
PREFIX = 6
CHUNK = 100


@dataclass(frozen=True)
class CorpusSpec:
    """The knobs of the synthetic corpus (everything else derives from ``seed``)."""

    pages: int
    dim: int = 128
    topics: int = 0  # 0: one per 10 pages (about 14 pages per subtopic at any size)
    subtopics: int = 4
    styles: int = 8
    seed: int = 0
    two_column: float = 0.4
    block_rows: tuple[int, int] = (3, 8)
    subtopic_weight: float = 0.6
    page_drift: float = 0.35
    style_spread: float = 0.3
    smooth_noise: float = 0.5
    white_noise: float = 0.2


class SyntheticCorpus:
    """Deterministic ColPali-like pages; page ``i`` is the same whatever chunk generates it.

    A page is a stack of text/figure blocks on paper: one column (blocks 30 patches wide) or two
    (15 wide), 3-8 patch rows high, separated by blank rows and margins. Each block is about a
    subtopic of a topic: its patches are the block's topic vector (topic + subtopic + a little
    page-specific drift) plus spatially smooth noise, so neighbouring patches correlate. Blank
    patches are the page's paper style (nearly the same on every page).
    """

    def __init__(self, spec: CorpusSpec) -> None:
        if spec.topics == 0:
            spec = dataclasses.replace(spec, topics=max(spec.pages // 10, 4))
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        d = spec.dim
        self.topics = _unit(rng.standard_normal((spec.topics, d), dtype=np.float32))
        self.subtopics = _unit(
            rng.standard_normal((spec.topics, spec.subtopics, d), dtype=np.float32)
        )
        paper = _unit(rng.standard_normal(d, dtype=np.float32))
        spread = spec.style_spread * _unit(rng.standard_normal((spec.styles, d), dtype=np.float32))
        self.styles = _unit(paper + spread)

    def layout(self, page: int) -> list[tuple[int, int, int, int, int, int]]:
        """The page's blocks: ``(row, col, height, width, topic, subtopic)``."""
        s = self.spec
        rng = np.random.default_rng((s.seed, page, 1))
        columns = [(1, 15), (16, 15)] if rng.random() < s.two_column else [(1, 30)]
        blocks = []
        row = 1
        while row < GRID[0] - 3:
            height = min(int(rng.integers(s.block_rows[0], s.block_rows[1] + 1)), GRID[0] - 1 - row)
            for col, width in columns:
                topic = int(rng.integers(0, s.topics))
                sub = int(rng.integers(0, s.subtopics))
                blocks.append((row, col, height, width, topic, sub))
            row += height + 1
        return blocks

    def page(self, page: int) -> np.ndarray:
        """The page's ``(1030, dim)`` unit vectors: 6 prefix tokens, then 32 x 32 patches."""
        s = self.spec
        rng = np.random.default_rng((s.seed, page, 2))
        base = np.empty((*GRID, s.dim), dtype=np.float32)  # (r, c, d)
        base[:] = self.styles[page % s.styles]
        for row, col, height, width, topic, sub in self.layout(page):
            drift = _unit(rng.standard_normal(s.dim, dtype=np.float32))
            vector = self.topics[topic] + s.subtopic_weight * self.subtopics[topic, sub]
            base[row : row + height, col : col + width] = _unit(vector + s.page_drift * drift)
        noise = rng.standard_normal((GRID[0] + 2, GRID[1] + 2, s.dim), dtype=np.float32)
        smooth = _box3(noise) / 3.0  # (r, c, d): neighbouring patches share noise
        white = rng.standard_normal((*GRID, s.dim), dtype=np.float32)
        patches = base + (s.smooth_noise * smooth + s.white_noise * white) / np.sqrt(s.dim)
        patches = _unit(patches.reshape(-1, s.dim))  # (1024, d)
        mix = patches.mean(axis=0)
        prefix = _unit(
            mix + rng.standard_normal((PREFIX, s.dim), dtype=np.float32) / np.sqrt(s.dim)
        )
        return np.concatenate([prefix, patches]).astype(np.float32)  # (1030, d)

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        """``(first page, (b, 1030, d))`` chunks of the whole corpus."""
        for start in range(0, self.spec.pages, size):
            stop = min(start + size, self.spec.pages)
            yield start, np.stack([self.page(i) for i in range(start, stop)])

    def query(self, index: int, tokens: int = 20, noise: float = 0.5) -> tuple[int, np.ndarray]:
        """A query about one block of one page: ``(page, (tokens, d))`` unit vectors."""
        s = self.spec
        rng = np.random.default_rng((s.seed, index, 3))
        page = int(rng.integers(0, s.pages))
        blocks = self.layout(page)
        row, col, height, width, _, _ = blocks[int(rng.integers(0, len(blocks)))]
        vectors = self.page(page)[PREFIX:].reshape(*GRID, s.dim)
        rows = rng.integers(row, row + height, tokens)
        cols = rng.integers(col, col + width, tokens)
        picked = vectors[rows, cols]  # (tokens, d)
        jitter = rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(s.dim)
        return page, _unit(picked + noise * jitter)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _box3(padded: np.ndarray) -> np.ndarray:
    """3 x 3 box sum of a ``(r+2, c+2, d)`` array → ``(r, c, d)``."""
    rows, cols = padded.shape[0] - 2, padded.shape[1] - 2
    out = np.zeros((rows, cols, padded.shape[2]), dtype=np.float32)
    for dr in range(3):
        for dc in range(3):
            out += padded[dr : dr + rows, dc : dc + cols]
    return out


def page_id(page: int) -> str:
    return item_id(f"{page:064x}", "page=1", "synthetic-colpali")


def build(store: EmbeddedStore, corpus: SyntheticCorpus, pooler: Pooler) -> dict[str, float]:
    """Generate, pool and upsert the corpus; then build the indexes."""
    t0 = time.perf_counter()
    gen_s = 0.0
    for start, pages in corpus.chunks():
        t = time.perf_counter()
        points = []
        for offset, multi in enumerate(pages):
            i = start + offset
            views = pooler.document_views(multi[PREFIX:], GRID)
            vectors = {"full": multi.astype(np.float16), **views}
            payload = {
                "source": f"synthetic/{i // 20:05d}.pdf",
                "modality": "pdf_page",
                "page": i % 20 + 1,
                "source_sha256": f"{i:064x}",
            }
            points.append(Point(page_id(i), vectors, payload))
        gen_s += time.perf_counter() - t
        store.upsert(points, batch_size=50)
        done = start + len(pages)
        if done % 1000 == 0 or done == corpus.spec.pages:
            print(f"  upserted {done} pages ({time.perf_counter() - t0:.0f} s)", flush=True)
    upsert_s = time.perf_counter() - t0
    t = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - t
    return {"generate_and_pool_s": gen_s, "upsert_s": upsert_s - gen_s, "optimize_s": optimize_s}


def run_plan(
    store: EmbeddedStore, plan_text: str, queries: list[np.ndarray], hnsw_ef: int | None = None
) -> tuple[list[list[str]], np.ndarray]:
    """Each query's top-10 ids and per-query latency (s), one query at a time, through the
    public Retriever (hits with payloads; per-stage scores off, they are not search)."""
    plan = parse_plan(plan_text)
    retriever = Retriever(store, plan, record_stage_scores=False, hnsw_ef=hnsw_ef)
    retriever.search(dict.fromkeys(plan.vectors, queries[0]))  # warm-up
    ranked, latencies = [], []
    for q in queries:
        vectors = dict.fromkeys(plan.vectors, q)
        t = time.perf_counter()
        hits = retriever.search(vectors)
        latencies.append(time.perf_counter() - t)
        ranked.append([h.id for h in hits])
    return ranked, np.asarray(latencies)


def recall_at_10(ranked: list[list[str]], exact: list[list[str]]) -> float:
    return float(
        np.mean([len(set(r[:10]) & set(e[:10])) / 10 for r, e in zip(ranked, exact, strict=True)])
    )


def cross_check(
    corpus: SyntheticCorpus, queries: list[np.ndarray], exact: list[list[str]]
) -> float:
    """Fraction of the engine's exact top 10 that mmrag.scoring.maxsim's top 10 agrees with."""
    from mmrag.scoring import maxsim

    scores = np.zeros((len(queries), corpus.spec.pages), dtype=np.float32)
    for start, pages in corpus.chunks():
        docs = [p.astype(np.float16).astype(np.float32) for p in pages]  # what is stored
        scores[:, start : start + len(docs)] = maxsim(queries, docs, batch_size=25)
    ids = np.array([page_id(i) for i in range(corpus.spec.pages)])
    agree = []
    for row, engine in zip(scores, exact, strict=True):
        reference = ids[np.argsort(-row, kind="stable")[:10]]
        agree.append(len(set(reference) & set(engine[:10])) / 10)
    return float(np.mean(agree))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=100, help="queries for the plans")
    parser.add_argument("--exact-queries", type=int, default=20, help="queries timed exactly")
    parser.add_argument("--plan2", default="rows@48 -> full@10")
    parser.add_argument("--plan3", default="global@500 -> rows@48 -> full@10")
    parser.add_argument(
        "--hnsw-ef", type=int, default=48, help="HNSW search width of HNSW stages (>= limit)"
    )
    parser.add_argument(
        "--extra-plan",
        action="append",
        default=[],
        help="another plan to measure and print (repeatable; not in the JSON)",
    )
    parser.add_argument("--cross-check", type=int, default=3, help="queries checked vs NumPy")
    parser.add_argument("--path", help="index folder (default: a temporary one, deleted)")
    parser.add_argument("--reuse", action="store_true", help="reuse the index at --path")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    corpus = SyntheticCorpus(CorpusSpec(pages=args.pages, seed=args.seed))
    pooling = PoolingConfig(views=["global", "rows"])
    pooler = Pooler(pooling)
    schema = CollectionSchema.for_embedder("synthetic-colpali", "multi", corpus.spec.dim, pooling)
    folder = Path(args.path) if args.path else Path(tempfile.mkdtemp(prefix="mmrag-bench-"))
    print(
        f"corpus: {args.pages} pages x {GRID[0] * GRID[1] + PREFIX} x {corpus.spec.dim}, "
        f"{corpus.spec.topics} topics; index at {folder}; cpus: {os.cpu_count()}",
        flush=True,
    )
    try:
        reuse = args.reuse and (folder / "bench").exists()
        store = EmbeddedStore(folder, "bench", schema, recreate=not reuse)
        timings = {} if reuse else build(store, corpus, pooler)
        print("build:", {k: round(v, 1) for k, v in timings.items()}, flush=True)
        n = store.count()
        assert n == args.pages, f"expected {args.pages} points, the store has {n}"
        info = store.info()
        per_page = info.hnsw_vectors_per_point

        n_queries = max(args.queries, args.exact_queries)
        queries = [corpus.query(i)[1] for i in range(n_queries)]

        exact_ranked, exact_lat = run_plan(store, "full@10", queries[: args.exact_queries])
        qps_exact = len(exact_lat) / exact_lat.sum()
        print(
            f"exact full@10: {qps_exact:.2f} QPS, p50 {np.median(exact_lat) * 1e3:.0f} ms "
            f"({len(exact_lat)} queries)",
            flush=True,
        )
        # The reference top 10 of the plan queries not timed above, in batches (faster).
        reference = list(exact_ranked)
        rest = queries[args.exact_queries : args.queries]
        for i in range(0, len(rest), 10):
            batch = [{"full": q} for q in rest[i : i + 10]]
            results = store.query_batch(parse_plan("full@10"), batch, with_payload=False)
            reference += [[r.id for r in result] for result in results]
        if args.cross_check:
            k = min(args.cross_check, len(queries))
            agree = cross_check(corpus, queries[:k], reference[:k])
            print(
                f"engine exact top-10 vs mmrag.scoring.maxsim: {agree:.3f} agreement ({k} queries)",
                flush=True,
            )

        results = {}
        plans = [("2stage", args.plan2), ("3stage", args.plan3)]
        plans += [(f"extra{i}", p) for i, p in enumerate(args.extra_plan)]
        for label, plan in plans:
            ranked, lat = run_plan(store, plan, queries[: args.queries], args.hnsw_ef)
            recall = recall_at_10(ranked, reference[: args.queries])
            qps = len(lat) / lat.sum()
            results[label] = (
                qps,
                recall,
                float(np.median(lat) * 1e3),
                float(np.percentile(lat, 95) * 1e3),
            )
            print(
                f"{label} {plan}: {qps:.1f} QPS ({qps / qps_exact:.1f}x exact), recall@10 "
                f"{recall:.3f}, p50 {results[label][2]:.1f} ms, p95 {results[label][3]:.1f} ms",
                flush=True,
            )
        print(
            f"HNSW-indexed vectors per page: {per_page} (global 1 + rows {GRID[0]}), raw "
            f"{GRID[0] * GRID[1] + PREFIX}",
            flush=True,
        )
        store.close()
    finally:
        if not args.path:
            shutil.rmtree(folder, ignore_errors=True)

    print(
        json.dumps(
            {
                "pages": args.pages,
                "plan_2stage": args.plan2,
                "plan_3stage": args.plan3,
                "qps_exact": round(qps_exact, 3),
                "qps_2stage": round(results["2stage"][0], 2),
                "recall10_2stage": round(results["2stage"][1], 4),
                "qps_3stage": round(results["3stage"][0], 2),
                "recall10_3stage": round(results["3stage"][1], 4),
                "indexed_vectors_per_page": per_page,
                "hnsw_ef": args.hnsw_ef,
                "p50_ms_2stage": round(results["2stage"][2], 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
