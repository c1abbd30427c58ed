"""Filtered queries on a store kept by ``benchmarks/scale.py``: the plans vs exact MaxSim.

A query filtered on more than its tenant cannot search the token index alone (it holds no
payloads). The default plan asks it for ``1 / share`` times more candidates, where ``share`` is
the part of the pages the filter keeps, and the next stage keeps those the filter matches; below
``MIN_SHARE`` (1/8) the engine's filtered search serves the query (see
``mmrag/store/token_index.py``). This script measures both sides of that line on the pages
``scale.py --keep`` built, with page-range filters keeping 1/2, 1/5, 1/10 and 1/20 of them
(scale.py's pages are pages 1-20 of their documents).

For each filter and each plan (the configuration's default, and ``--also`` plans; by default
``distinct@32 -> full@10``, the filtered HNSW search alone): p50 latency, and top-1 agreement and
recall@10 against exact float32 MaxSim over every token of the filtered pages (regenerated
from the same seed). The last line printed is one JSON object with every number.

    python benchmarks/scale.py --pages 10000 --keep --path /tmp/scale
    python benchmarks/filtered.py --pages 10000 --path /tmp/scale
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scale import CHUNK, DIM, EMBEDDER, PageCorpus, exact_maxsim

from mmrag.config import PipelineConfig
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.plan import parse_plan
from mmrag.store.records import SearchFilter
from mmrag.store.schema import CollectionSchema

#: Page ranges (scale.py gives each document 20 pages) and the share of pages each keeps.
FILTERS = {"1/2": (1, 10), "1/5": (1, 4), "1/10": (1, 2), "1/20": (1, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, required=True, help="the kept store's size")
    parser.add_argument("--path", required=True, help="scale.py's --path")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--query-noise", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--also", action="append", help="another plan (repeatable)")
    args = parser.parse_args(argv)
    config = PipelineConfig()
    schema = CollectionSchema.for_embedder(
        EMBEDDER, "multi", DIM, config.pooling, codecs=config.store.codecs
    )
    plans = [str(parse_plan(config.retrieval.plan)), *(args.also or ["distinct@32 -> full@10"])]
    corpus = PageCorpus(args.pages, seed=args.seed)
    queries = np.stack([corpus.query(i, noise=args.query_noise) for i in range(args.queries)])
    kept = np.load(Path(args.path) / f"scale{args.pages}.npz")
    index_of = {str(pid): i for i, pid in enumerate(kept["ids"])}  # scale.py's ids: page order
    if len(kept["queries"]) < args.queries:
        raise SystemExit(f"{args.path}: kept {len(kept['queries'])} queries; ask for at most that")
    if not np.allclose(kept["queries"][: args.queries], queries):
        raise SystemExit(f"{args.path}: built with another seed or query noise")
    # Exact MaxSim over the pages the widest filter keeps (page numbers in its range).
    widest = max(hi for _, hi in FILTERS.values())
    subset = np.array([i for i in range(args.pages) if i % 20 + 1 <= widest])
    exact = np.empty((args.queries, len(subset)), dtype=np.float32)
    t = time.perf_counter()
    for start in range(0, len(subset), CHUNK):
        chunk = subset[start : start + CHUNK]
        exact[:, start : start + len(chunk)] = exact_maxsim(
            queries, np.stack([corpus.page(int(i)) for i in chunk])
        )
    print(f"  exact MaxSim over {len(subset)} pages: {time.perf_counter() - t:.0f} s", flush=True)
    store = EmbeddedStore(Path(args.path), f"scale{args.pages}", schema)
    results: dict[str, object] = {}
    codecs = dict(store.schema.codecs)  # the kept store's own (an older build may differ)
    try:
        for name, (lo, hi) in FILTERS.items():
            where = SearchFilter(page_range=(lo, hi))
            columns = np.flatnonzero(subset % 20 + 1 <= hi)
            share = store.count(where) / store.count()
            row: dict[str, object] = {"share": round(share, 4)}
            for text in plans:
                plan = parse_plan(text)
                latencies, top1, recall = [], [], []
                for q in range(args.queries):
                    want = subset[columns[np.argsort(-exact[q, columns])[:10]]].tolist()
                    vectors = dict.fromkeys(plan.vectors, queries[q])
                    t = time.perf_counter()
                    hits = store.query(plan, vectors, where, with_payload=False)
                    latencies.append(time.perf_counter() - t)
                    got = [index_of[h.id] for h in hits]
                    top1.append(bool(got) and got[0] == want[0])
                    recall.append(len(set(got[:10]) & set(want)) / 10)
                row[text] = {
                    "p50_ms": round(1000 * float(np.median(latencies)), 2),
                    "top1_vs_exact": round(float(np.mean(top1)), 4),
                    "recall10_vs_exact": round(float(np.mean(recall)), 4),
                }
            print(f"  {name}: {json.dumps(row)}", flush=True)
            results[name] = row
    finally:
        store.close()
    summary = {"pages": args.pages, "queries": args.queries, "codecs": codecs}
    print(json.dumps({**summary, "filters": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
