"""Benchmark: indexing byte-identical copies of files reuses the stored embeddings.

    python benchmarks/copies.py [--pages 24] [--hidden 512] [--layers 4] [--vision-depth 4]

Inputs: ``--pages`` PDF pages in four generated PDFs (as ``benchmarks/index.py`` makes them),
embedded by a randomly initialised, seeded ColQwen2 of the given size (256 merged patches per
page; the model of ``benchmarks/embed.py``), views ``global`` and ``rows``, the embedded store.

Measured side by side in one run, into one store:

- ``first``: ``Pipeline.index([originals])`` (every page rendered and embedded);
- ``copies``: the same files copied to another folder, then ``Pipeline.index([copies])``:
  each copy is a new source (its own points, findable and deletable on its own) whose pages
  take the stored vectors and page images of the originals (no rendering, no model).

``copies_over_first`` is the copies' job time over the first's (lower is better);
``reused`` must equal the pages. The last line printed is one JSON object with ``pages``,
``first_s``, ``copies_s``, ``copies_over_first``, ``reused``, ``saved_s_per_page``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from index import embed_benchmark, make_corpus, pipeline_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vision-depth", type=int, default=4)
    parser.add_argument("--dpi", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from mmrag.pipeline.pipeline import Pipeline

    with tempfile.TemporaryDirectory(prefix="mmrag-copies-") as tmp:
        root = Path(tmp)
        model = embed_benchmark().build_model(
            root / "model", 0, args.hidden, args.layers, args.vision_depth
        )
        originals = make_corpus(root / "originals", args.pages)
        copies = root / "copies"
        shutil.copytree(originals, copies)
        config = pipeline_config(model, "colqwen2", root / "index", args)
        with Pipeline(config) as pipe:
            pipe.embedder.load()  # model loading is not indexing time
            pipe.embedder.embed_queries(["warm-up"])
            start = time.perf_counter()
            first = pipe.index([originals])
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            again = pipe.index([copies])
            copies_s = time.perf_counter() - start
            assert first.ok and again.ok, (first.failed, again.failed)
            sources = pipe.source_counts()
    print(f"first  : {first.summary()} in {first_s:.2f} s")
    print(f"copies : {again.summary()} in {copies_s:.2f} s")
    print(f"sources: {len(sources)} ({sum(sources.values())} points)")
    result = {
        "pages": first.indexed,
        "first_s": round(first_s, 3),
        "copies_s": round(copies_s, 3),
        "copies_over_first": round(copies_s / first_s, 4),
        "reused": again.reused,
        "saved_s_per_page": round((first_s - copies_s) / max(first.indexed, 1), 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
