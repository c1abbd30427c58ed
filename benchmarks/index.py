"""Benchmark: the indexing job end to end vs each of its stages alone, and its memory bound.

    python benchmarks/index.py [--pages 64] [--hidden 512] [--layers 4] [--vision-depth 4]

Inputs: ``--pages`` PDF pages (four generated PDFs, US Letter, text and a JPEG each) rendered
at ``--dpi``, embedded by a randomly initialised, seeded ColQwen2 of the given size (saved with
``save_pretrained`` and loaded through ``ColQwen2Embedder``, as in ``benchmarks/embed.py``;
256 merged patches per page), pooled views ``global`` and ``rows``, the embedded Qdrant store.

Measured on the same pages, each after a warm-up of the model:

- ``e2e``: ``Pipeline.index([folder])`` into a fresh store (pages / job duration);
- ``ingest``: ``iter_items`` with every page's ``load_image()``;
- ``embed``: ``embed_images`` + pooled views of the pages already rendered, in batches;
- ``store``: page images to the asset store and points upserted (pending, then published per
  document, as the job does) into a fresh store, then ``optimize()``.

``e2e_over_slowest_stage`` is e2e pages/s ÷ the slowest stage's pages/s: 1.0 means the job
runs at its bottleneck's speed (the stages overlap); the sum of the stages would be lower (the
target is >= 0.8). Each stage and e2e run ``--repeats`` times, interleaved; the best counts.

``rss_2000_over_20``: peak RSS (``VmHWM``) of a fresh process running the whole job
(``Pipeline.index``) on a 2,000-page PDF, over one on a 20-page PDF (same page content). These
use the tiny ColModernVBert of ``mmrag.testing`` so that 2,000 pages take a minute, not an
hour; a bigger model adds the same constant to both processes, so it would only bring the
ratio closer to 1 (target <= 1.5).

The last line printed is one JSON object with the keys ``e2e_pages_per_s``,
``slowest_stage_pages_per_s``, ``e2e_over_slowest_stage``, ``rss_2000_over_20``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def embed_benchmark() -> Any:
    """``benchmarks/embed.py`` as a module (its ``build_model`` and ``MAX_PIXELS``)."""
    import importlib.util

    name = "mmrag_benchmarks_embed"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "embed.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def peak_rss_self_kib() -> int:
    """This process's peak resident set size in KiB (``VmHWM``, not inherited across exec)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def make_corpus(folder: Path, pages: int, files: int = 4) -> Path:
    from mmrag.testing.media import make_pdf

    folder.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        count = pages // files + (1 if number < pages % files else 0)
        make_pdf(folder / f"doc{number}.pdf", pages=count, seed=number)
    return folder


def pipeline_config(model: Path | str, family: str, store: Path, args: Any) -> Any:
    from mmrag.config import PipelineConfig

    params: dict[str, Any] = {"model": str(model), "device": "cpu", "batch_size": args.batch_size}
    if family == "colqwen2":
        params.update(dtype="float32", max_pixels=embed_benchmark().MAX_PIXELS)
    return PipelineConfig.from_dict(
        {
            "embedder": {"type": family, "init_parameters": params},
            "ingest": {"dpi": args.dpi},
            "store": {"path": str(store)},
        }
    )


# -- the stages alone ----------------------------------------------------------------------------


def run_ingest(folder: Path, config: Any) -> tuple[int, list[Any]]:
    from mmrag.pipeline.indexing import steps
    from mmrag.pipeline.ingest import iter_items
    from mmrag.types import IndexReport

    works = [steps.Work(item) for item in iter_items([folder], config.ingest)]
    pages = steps.load(works, IndexReport())
    return len(pages), pages


def run_embed(pipe: Any, pages: list[Any]) -> tuple[int, list[Any]]:
    from mmrag.embedders.batching import iter_batches
    from mmrag.pipeline.indexing import steps
    from mmrag.types import IndexReport

    views = pipe.schema().views
    done: list[Any] = []
    for batch in iter_batches(pages, pipe.embedder.batch_size):
        done.extend(steps.embed(batch, pipe.embedder, pipe.pooler, views, IndexReport()))
    return len(done), done


def run_store(pipe: Any, done: list[Any]) -> int:
    """The write and finish steps alone (what the job's writer thread runs)."""
    from mmrag.embedders.batching import iter_batches
    from mmrag.pipeline.indexing import steps

    store, assets = pipe.store, pipe.assets
    sources: dict[str, str] = {}
    for batch in iter_batches(done, pipe.embedder.batch_size):
        steps.write(batch, store, assets)
        sources.update((w.item.source, w.item.source_sha256) for w in batch)
    for source, sha256 in sources.items():
        steps.finish(store, assets, source, sha256)
    store.optimize()
    return len(done)


def timed(run: Callable[[], int]) -> float:
    started = time.perf_counter()
    pages = run()
    return pages / (time.perf_counter() - started)


def throughput(args: argparse.Namespace, root: Path) -> dict[str, float]:
    from mmrag.pipeline.pipeline import Pipeline

    started = time.perf_counter()
    model = embed_benchmark().build_model(
        root / "model", 0, args.hidden, args.layers, args.vision_depth
    )
    folder = make_corpus(root / "docs", args.pages)
    print(f"built the model and {args.pages} pages in {time.perf_counter() - started:.1f} s")

    def fresh(name: str, embedder: Any = None) -> Any:
        store = root / name
        shutil.rmtree(store, ignore_errors=True)
        return Pipeline(pipeline_config(model, "colqwen2", store, args), embedder=embedder)

    warm = fresh("warm")
    params = sum(p.numel() for p in warm.embedder.load()._model.parameters())
    print(
        f"model: random ColQwen2, {params / 1e6:.0f}M parameters, batch {args.batch_size}, "
        f"{args.dpi} DPI, on {os.cpu_count()} CPUs; load average "
        + " ".join(f"{v:.1f}" for v in os.getloadavg())
    )
    embedder = warm.embedder
    pages = run_ingest(folder, warm.config)[1]
    run_embed(warm, pages[: args.batch_size])  # warm-up
    warm.close()

    rates: dict[str, list[float]] = {"e2e": [], "ingest": [], "embed": [], "store": []}
    for round_number in range(args.repeats):
        pipe = fresh(f"e2e{round_number}", embedder)  # loaded: no load time in the job
        report = pipe.index([folder])
        assert report.ok and report.indexed == args.pages, report.summary()
        rates["e2e"].append(report.indexed / report.duration_s)
        pipe.close()

        rates["ingest"].append(timed(lambda: run_ingest(folder, warm.config)[0]))
        pipe = fresh(f"stages{round_number}", embedder)
        # fresh Works each round: the write step drops a work's image once it is stored
        works = [dataclasses.replace(page, embedding=None) for page in pages]
        started = time.perf_counter()
        count, done = run_embed(pipe, works)
        rates["embed"].append(count / (time.perf_counter() - started))
        rates["store"].append(timed(lambda: run_store(pipe, done)))  # noqa: B023
        pipe.close()
        print(
            f"  round {round_number + 1}: "
            + ", ".join(f"{name} {values[-1]:.2f}" for name, values in rates.items())
            + " pages/s"
        )
    return {name: max(values) for name, values in rates.items()}


# -- memory --------------------------------------------------------------------------------------


def rss_child(pdf: Path, model: str, store: Path, args: argparse.Namespace) -> None:
    from mmrag.pipeline.pipeline import Pipeline

    config = pipeline_config(model, "colmodernvbert", store, args)
    with Pipeline(config) as pipe:
        pipe.embedder.load()
        before = peak_rss_self_kib()
        report = pipe.index([pdf])
    print(
        json.dumps(
            {"pages": report.indexed, "peak_rss_kib": peak_rss_self_kib(), "before_kib": before}
        )
    )


def peak_rss(pdf: Path, model: Path, store: Path, args: argparse.Namespace) -> dict[str, int]:
    command = [sys.executable, __file__, "--rss-child", str(pdf), "--rss-model", str(model)]
    command += ["--rss-store", str(store), "--dpi", str(args.dpi)]
    command += ["--batch-size", str(args.batch_size)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def memory(args: argparse.Namespace, root: Path) -> float:
    from mmrag.testing.media import make_pdf
    from mmrag.testing.zoo import build_all

    started = time.perf_counter()
    build_all(root / "tiny", ["colmodernvbert"])
    small = make_pdf(root / "rss20.pdf", pages=20)
    big = make_pdf(root / "rss2000.pdf", pages=args.rss_pages)
    print(
        f"generated a {args.rss_pages}-page PDF ({big.stat().st_size / 1e6:.1f} MB) and the "
        f"tiny model in {time.perf_counter() - started:.1f} s"
    )
    model = root / "tiny" / "colmodernvbert"
    results = {}
    for name, pdf in (("small", small), ("big", big)):
        started = time.perf_counter()
        results[name] = peak_rss(pdf, model, root / f"rss-store-{name}", args)
        print(
            f"  {results[name]['pages']:5d} pages: peak RSS "
            f"{results[name]['peak_rss_kib'] / 1024:.0f} MiB (after loading the model: "
            f"{results[name]['before_kib'] / 1024:.0f} MiB), {time.perf_counter() - started:.0f} s"
        )
    return results["big"]["peak_rss_kib"] / results["small"]["peak_rss_kib"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=64, help="pages of the throughput corpus")
    parser.add_argument("--dpi", type=int, default=72)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=512, help="text width of the model")
    parser.add_argument("--layers", type=int, default=4, help="text layers")
    parser.add_argument("--vision-depth", type=int, default=4, help="vision blocks")
    parser.add_argument("--rss-pages", type=int, default=2000)
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rss-model", help=argparse.SUPPRESS)
    parser.add_argument("--rss-store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `mmrag index` does (see cli.py)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    if args.rss_child is not None:
        rss_child(args.rss_child, args.rss_model, args.rss_store, args)
        return 0

    with tempfile.TemporaryDirectory(prefix="mmrag-index-bench-") as tmp:
        root = Path(tmp)
        best = throughput(args, root)
        stages = {name: best[name] for name in ("ingest", "embed", "store")}
        slowest = min(stages, key=stages.__getitem__)
        print(
            "best pages/s: "
            + ", ".join(f"{name} {value:.2f}" for name, value in best.items())
            + f"; slowest stage: {slowest}; sum of the stages (no overlap) would give "
            f"{1 / sum(1 / v for v in stages.values()):.2f}"
        )
        ratio = memory(args, root)
    print(
        json.dumps(
            {
                "e2e_pages_per_s": round(best["e2e"], 3),
                "slowest_stage_pages_per_s": round(stages[slowest], 3),
                "e2e_over_slowest_stage": round(best["e2e"] / stages[slowest], 3),
                "rss_2000_over_20": round(ratio, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
