"""How the embedded store scales: disk, RAM, build speed, latency and quality vs exact MaxSim.

Builds ``--pages`` synthetic ColPali-shaped pages (1,024 x 128 tokens; page-like: a shared
template background, four small content blocks about shared topics, per-token noise) in the
embedded store with the DEFAULT configuration (pooling views, codecs, ``full_pool_factor``,
retrieval plan), then runs ``--queries`` queries (16 tokens about one content block of one page,
with fresh noise: ``--query-noise``) through the default plan and compares with exact float32
MaxSim over every token of every page, computed side by side in NumPy while the pages are
generated (the pages are never all held in memory).

Prints one JSON line per size, the largest last::

    {"pages": 10000, "disk_bytes_per_page": ..., "anon_rss_bytes_per_page": ...,
     "build_pages_per_s": ..., "p50_ms": ..., "qps_over_exact": ..., "top1_vs_exact": ...,
     "recall10_vs_exact": ..., ...}

``build_pages_per_s`` is the store's write + index build (upsert, then ``optimize()``: HNSW);
generating and pooling the vectors is reported apart (``pool_ms_per_page``).
``qps_over_exact`` divides the plan's queries per second by exact NumPy MaxSim's (float32,
every token, the queries scored as one batch). ``anon_rss_bytes_per_page`` is the growth of
the process's anonymous memory (RssAnon) from before the store is opened to after the queries.

``--also 'PLAN'`` (or ``'PLAN|EF'``, with an HNSW search width, or ``'PLAN|exact'``, every stage
searched exactly: what the views alone keep, without the HNSW graph) measures another plan on the
same build, reported under ``other_plans``. ``--keep`` keeps the store and, beside it, the queries
and the exact top-10 (``scale<pages>.npz``), so other plans can be measured on it later.

Run: ``python benchmarks/scale.py`` (10^4 then 10^5 pages; hours on 2 cores) or
``python benchmarks/scale.py --pages 2000``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mmrag.config import PipelineConfig
from mmrag.embedders.pooling import Pooler
from mmrag.store._engine import EngineQuery
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.plan import Plan, parse_plan, plan_tree
from mmrag.store.records import Point
from mmrag.store.schema import CollectionSchema
from mmrag.types import Embedding, Item

DIM = 128
GRID = (32, 32)
CHUNK = 50
EMBEDDER = "synthetic-colpali-scale"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class PageCorpus:
    """Deterministic page-like ColPali-shaped pages; page ``i`` is the same in any chunk.

    A page is its template's background vector (16 templates) on all 32 x 32 patches, with four
    4 x 8 content blocks, each about one of ``pages / 40`` shared topics (plus a page-specific
    drift), and per-token noise drawn from a fixed bank (cheap: 10^5 pages in minutes).
    """

    def __init__(self, pages: int, seed: int = 0, noise: float = 0.9) -> None:
        self.pages, self.seed, self.noise = pages, seed, noise
        rng = np.random.default_rng(seed)
        self.templates = _unit(rng.standard_normal((16, DIM)))
        self.topics = _unit(rng.standard_normal((max(pages // 40, 8), DIM)))
        self.bank = rng.standard_normal((1 << 16, DIM), dtype=np.float32) / np.sqrt(DIM)

    def blocks(self, page: int) -> list[tuple[int, int, int]]:
        """The page's content blocks: ``(row, col, topic)`` of each 4 x 8 block."""
        rng = np.random.default_rng((self.seed, page, 1))
        topics = self.topics
        return [
            (int(rng.integers(0, 28)), int(rng.integers(0, 24)), int(rng.integers(len(topics))))
            for _ in range(4)
        ]

    def page(self, page: int, *, clean: bool = False) -> np.ndarray:
        """The page's ``(1024, 128)`` unit token vectors (``clean``: without token noise)."""
        rng = np.random.default_rng((self.seed, page, 2))
        base = np.empty((*GRID, DIM), dtype=np.float32)  # (r, c, d)
        base[:] = self.templates[page % len(self.templates)]
        for row, col, topic in self.blocks(page):
            drift = _unit(rng.standard_normal(DIM))
            base[row : row + 4, col : col + 8] = _unit(self.topics[topic] + 0.4 * drift)
        tokens = base.reshape(-1, DIM)  # (1024, d)
        if clean:
            return tokens
        return _unit(tokens + self.noise * self.bank[rng.integers(0, 1 << 16, tokens.shape[0])])

    def query(self, index: int, tokens: int = 16, noise: float = 1.5) -> np.ndarray:
        """A query about one content block of one page: ``(tokens, 128)`` unit vectors."""
        rng = np.random.default_rng((self.seed, index, 3))
        page = int(rng.integers(0, self.pages))
        row, col, _ = self.blocks(page)[int(rng.integers(0, 4))]
        clean = self.page(page, clean=True).reshape(*GRID, DIM)
        picked = clean[rng.integers(row, row + 4, tokens), rng.integers(col, col + 8, tokens)]
        jitter = rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(DIM)
        return _unit(picked + noise * jitter)


def exact_maxsim(queries: np.ndarray, pages: np.ndarray) -> np.ndarray:
    """Exact float32 MaxSim of every query on every page: ``(q, t, d) x (n, T, d) -> (q, n)``."""
    nq, qt, d = queries.shape
    n, pt, _ = pages.shape
    sims = pages.reshape(-1, d) @ queries.reshape(-1, d).T  # (n * T, q * t)
    return sims.reshape(n, pt, nq, qt).max(axis=1).sum(axis=-1).T  # (q, n)


def disk_bytes(folder: Path) -> int:
    """Bytes allocated on disk under ``folder`` (sparse preallocated files count what they use)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def rss_anon() -> int:
    """This process's anonymous resident memory, in bytes (0 where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run(pages: int, args: argparse.Namespace, root: Path) -> dict[str, object]:
    overrides = dict(item.split("=", 1) for item in args.codecs.split(",") if item)
    pooling: dict[str, object] = {}
    if args.full_pool_factor:
        pooling["full_pool_factor"] = args.full_pool_factor
    if args.views:
        pooling["views"] = args.views.split(",")
    if args.token_index is not None:
        pooling["token_index"] = args.token_index == "on"
    config = PipelineConfig.from_dict({"store": {"codecs": overrides}, "pooling": pooling})
    schema = CollectionSchema.for_embedder(
        EMBEDDER, "multi", DIM, config.pooling, codecs=config.store.codecs
    )
    pooler = Pooler(config.pooling)
    plan = parse_plan(args.plan or config.retrieval.plan)
    corpus = PageCorpus(pages, seed=args.seed)
    queries = np.stack([corpus.query(i, noise=args.query_noise) for i in range(args.queries)])
    exact = np.empty((args.queries, pages), dtype=np.float32)
    ids: list[str] = []
    rss0 = rss_anon()
    store = EmbeddedStore(root, f"scale{pages}", schema, recreate=True)
    pool_s = exact_s = write_s = 0.0
    t_all = time.perf_counter()
    for start in range(0, pages, CHUNK):
        stop = min(start + CHUNK, pages)
        t = time.perf_counter()
        chunk = np.stack([corpus.page(i) for i in range(start, stop)])  # (b, 1024, d)
        points = []
        for offset, tokens in enumerate(chunk):
            i = start + offset
            item = Item(
                source=f"/synthetic/{i // 20:06d}.pdf",
                source_sha256=f"{i // 20:064x}",
                modality="pdf_page",
                page=i % 20 + 1,
            )
            views = pooler.document_views(tokens, GRID)
            embedding = Embedding(multi=tokens, grid=GRID, pooled=views)
            points.append(
                Point.from_item(item, embedding, EMBEDDER, full_pool_factor=schema.full_pool_factor)
            )
        pool_s += time.perf_counter() - t
        t = time.perf_counter()
        exact[:, start:stop] = exact_maxsim(queries, chunk)
        exact_s += time.perf_counter() - t
        t = time.perf_counter()
        store.upsert(points, batch_size=CHUNK)
        write_s += time.perf_counter() - t
        ids.extend(p.id for p in points)
        if stop % 1000 == 0 or stop == pages:
            print(f"  {stop} pages written ({time.perf_counter() - t_all:.0f} s)", flush=True)
    t = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - t
    print(f"  optimized in {optimize_s:.0f} s", flush=True)

    exact_top10 = np.argsort(-exact, axis=1)[:, :10]
    index_of = {pid: i for i, pid in enumerate(ids)}

    def measure(
        stages: Plan, ef: int | None = None, exact: bool = False
    ) -> tuple[list[float], float, float]:
        """Latencies, top-1 agreement and recall@10 of ``stages`` (HNSW search width ``ef``;
        ``exact``: every stage searched exactly) against exact MaxSim."""
        latencies, top1, recall = [], [], []
        for q in range(args.queries):
            vectors = dict.fromkeys(stages.vectors, queries[q])
            t = time.perf_counter()
            if exact:  # the store's engine query, as `query` builds it, with exact search
                request = EngineQuery(plan_tree(stages), vectors, with_payload=False, exact=True)
                hits = store._run([request])[0]
            else:
                hits = store.query(stages, vectors, with_payload=False, hnsw_ef=ef)
            latencies.append(time.perf_counter() - t)
            got = [index_of[h.id] for h in hits[:10]]
            top1.append(bool(got) and got[0] == exact_top10[q, 0])
            recall.append(len(set(got) & set(exact_top10[q].tolist())) / 10)
        return latencies, float(np.mean(top1)), float(np.mean(recall))

    latencies, top1_rate, recall_rate = measure(plan)
    others = {}
    for text in args.also or []:
        stages, _, ef = text.partition("|")
        exact_search = ef.strip() == "exact"
        width = int(ef) if ef and not exact_search else None
        times, top1_other, recall_other = measure(parse_plan(stages), width, exact_search)
        others[text] = {
            "p50_ms": round(1000 * float(np.median(times)), 2),
            "top1_vs_exact": round(top1_other, 4),
            "recall10_vs_exact": round(recall_other, 4),
        }
    # The codec alone: the stored `full` scanned by brute force (no pooled first stages).
    full_only = parse_plan("full@10")
    codec_top1 = []
    for q in range(min(args.codec_queries, args.queries)):
        hits = store.query(full_only, {"full": queries[q]}, with_payload=False)
        codec_top1.append(bool(hits) and index_of[hits[0].id] == exact_top10[q, 0])
    rss = rss_anon() - rss0
    store.close()
    disk = disk_bytes(root / f"scale{pages}")
    p50 = float(np.median(latencies))
    exact_per_query = exact_s / args.queries
    result: dict[str, object] = {
        "pages": pages,
        "disk_bytes_per_page": round(disk / pages),
        "anon_rss_bytes_per_page": round(max(rss, 0) / pages),
        "build_pages_per_s": round(pages / (write_s + optimize_s), 2),
        "write_s": round(write_s, 1),
        "optimize_s": round(optimize_s, 1),
        "pool_ms_per_page": round(1000 * pool_s / pages, 2),
        "p50_ms": round(1000 * p50, 2),
        "p95_ms": round(1000 * float(np.percentile(latencies, 95)), 2),
        "exact_ms_per_query": round(1000 * exact_per_query, 2),
        "qps_over_exact": round(exact_per_query / float(np.mean(latencies)), 2),
        "top1_vs_exact": round(top1_rate, 4),
        "recall10_vs_exact": round(recall_rate, 4),
        "full_codec_top1_vs_exact": round(float(np.mean(codec_top1)), 4) if codec_top1 else None,
        "queries": args.queries,
        "query_noise": args.query_noise,
        "plan": str(plan),
        "codecs": ",".join(f"{k}={v}" for k, v in schema.codecs.items()),
        "full_pool_factor": schema.full_pool_factor,
        "other_plans": others,
    }
    if args.keep:
        np.savez(root / f"scale{pages}.npz", queries=queries, exact_top10=exact_top10, ids=ids)
    else:
        shutil.rmtree(root / f"scale{pages}", ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pages", type=int, action="append", help="pages to build (repeatable; default 10^4, 10^5)"
    )
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--query-noise", type=float, default=1.5, help="query token noise (2.0: hard queries)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plan", help="retrieval plan (default: the configuration's)")
    parser.add_argument(
        "--also",
        action="append",
        help="another plan measured on the same store, optionally with its HNSW search width: "
        "'distinct@64 -> full@10|400' (repeatable; reported in other_plans)",
    )
    parser.add_argument(
        "--codecs", default="", help="codecs other than the defaults, e.g. full=turbo4,rows=uint8"
    )
    parser.add_argument(
        "--full-pool-factor", type=int, help="pooling.full_pool_factor (default: the config's)"
    )
    parser.add_argument("--views", help="pooled views, e.g. global,rows (default: the config's)")
    parser.add_argument(
        "--token-index",
        choices=("on", "off"),
        help="pooling.token_index (default: the config's); plans starting with tokens@K need it",
    )
    parser.add_argument(
        "--codec-queries",
        type=int,
        default=20,
        help="queries also run as full@10 alone (brute force: the codec's own agreement)",
    )
    parser.add_argument("--path", help="folder for the stores (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the built stores")
    args = parser.parse_args(argv)
    sizes = sorted(args.pages or [10_000, 100_000])
    root = Path(args.path) if args.path else Path(tempfile.mkdtemp(prefix="mmrag-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        for pages in sizes:
            print(json.dumps(run(pages, args, root)), flush=True)
    finally:
        if not args.path and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
