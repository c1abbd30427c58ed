"""``mmrag quickstart``: index the bundled examples and search them for a question.

It runs the same pipeline a user configures (ingest → embed → pool → embedded Qdrant → staged
retrieval), with the default small real model when it is cached or the Hugging Face hub can be
reached. Otherwise it says so plainly, shows how to get the model, and runs on a tiny random model
of the same architecture under a banner that its rankings are meaningless. It never downloads
behind the user's back without saying so, and never fakes a result.

Example:
    $ mmrag quickstart
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_QUESTION", "find_sample_data", "model_available", "run_quickstart"]

DEFAULT_QUESTION = "How much did ACME Solar's revenue grow in 2024?"

BANNER = """\
========================================================================================
  OFFLINE DEMO: {model} is not cached here and the Hugging Face hub cannot be reached.
  Running the same pipeline on a tiny RANDOM model of the same architecture.
  Its rankings are MEANINGLESS; every other stage (ingest, pooling, Qdrant, staged
  retrieval, citations) is the real code path.
  To use the real model:  huggingface-cli download {model}
  or point the config at a local copy:  [embedder.init_parameters] model = "/path/to/it"
========================================================================================"""


def find_sample_data() -> Path | None:
    """The bundled sample folder (``examples/data`` of a source checkout), if present."""
    candidate = Path(__file__).resolve().parents[1] / "examples" / "data"
    return candidate if candidate.is_dir() and any(candidate.iterdir()) else None


def model_available(model: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """Whether ``model`` is a local folder, is in the Hugging Face cache, or the hub answers."""
    if Path(model).is_dir():
        return True, "local folder"
    try:
        from huggingface_hub import model_info, try_to_load_from_cache
    except ImportError:  # pragma: no cover - a transformers dependency
        return False, "huggingface_hub is not installed"
    cached = try_to_load_from_cache(model, "config.json")
    if isinstance(cached, str):
        return True, "cached"
    try:
        model_info(model, timeout=timeout_s)
    except Exception as error:  # any network failure means: not reachable now
        return False, f"hub unreachable ({type(error).__name__})"
    return True, "hub reachable (will download)"


def run_quickstart(
    workdir: Path,
    *,
    data: Path | None = None,
    question: str = DEFAULT_QUESTION,
    echo: Callable[[str], Any] = print,
    offline: bool | None = None,
) -> int:
    """Run the quickstart; returns the process exit code."""
    from mmrag.config import PipelineConfig
    from mmrag.pipeline.pipeline import Pipeline

    data = data or find_sample_data()
    if data is None or not data.is_dir():
        echo("mmrag quickstart: no sample data found; pass --data FOLDER (any PDFs/images/videos)")
        return 2
    workdir = workdir.expanduser().resolve()
    config = PipelineConfig()
    model = str(config.embedder.init_parameters.get("model", ""))
    available, why = (False, "--offline given") if offline else model_available(model)
    timings: dict[str, float] = {}

    echo(f"mmrag quickstart: sample data in {data}")
    if available:
        echo(f"embedder: {model} ({why})")
        index_path = workdir / "index"
    else:
        echo(BANNER.format(model=model))
        from mmrag.testing.zoo import build

        started = time.perf_counter()
        tiny = workdir / "tiny-models" / config.embedder.type
        if not (tiny / "mmrag_tiny.json").is_file():
            shutil.rmtree(tiny, ignore_errors=True)
            build(config.embedder.type, tiny)
        timings["build tiny model"] = time.perf_counter() - started
        config.embedder.init_parameters = {**config.embedder.init_parameters, "model": str(tiny)}
        index_path = workdir / "index-tiny"
        echo(f"embedder: tiny random {config.embedder.type} in {tiny}")
    config.store.path = str(index_path)

    with Pipeline(config) as pipe:
        started = time.perf_counter()
        report = pipe.index([str(data)])
        timings["index"] = time.perf_counter() - started
        echo(f"indexed into {index_path}: {report.summary()} from {report.sources} sources")
        for failure in report.failed:
            echo(f"  FAILED {failure.source}: {failure.reason}")

        started = time.perf_counter()
        hits = pipe.search(question, k=5)
        timings["search"] = time.perf_counter() - started
        echo(f"\nQ: {question}\nplan: {pipe.plan()}")
        for rank, hit in enumerate(hits, 1):
            stages = ", ".join(f"{k} {v:.2f}" for k, v in hit.stage_scores.items())
            echo(f"  {rank}. {hit.citation():60s} score {hit.score:.2f}  ({stages})")

    echo(
        "\nAnswer generation (MLLM rerank → generate with citations) is not in this build yet; "
        "the pages above are what the generator will read and cite."
    )
    echo("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return 0 if report.ok else 1
