"""``mmrag quickstart``: index the bundled examples, answer a question about them with citations.

It runs the same pipeline a user configures (ingest → embed → pool → embedded Qdrant → staged
retrieval → MLLM rerank on a GPU → VLM answer citing page and video second), with the default
small real models when they are cached or the Hugging Face hub can be reached. Otherwise it says
so plainly, shows how to get the models, and still shows only true results, under a banner
naming each stand-in: a tiny random embedder of the same architecture runs every stage, but the
pages are ranked by the BM25 text channel (the pages' text layer); the answer is extractive (the
best-matching sentences of the retrieved pages, quoted and cited) instead of a generator's; a
random reranker is skipped. It never downloads behind the user's back without saying so, and
never fakes a result.

Example:
    $ mmrag quickstart
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrag.config import PipelineConfig

__all__ = [
    "DEFAULT_QUESTION",
    "demo_config",
    "find_sample_data",
    "model_available",
    "run_quickstart",
]

DEFAULT_QUESTION = "How much did ACME Solar's revenue grow in 2024?"

BANNER = """\
========================================================================================
  OFFLINE DEMO: these models are not cached here and the Hugging Face hub cannot be reached:
{missing}
  What runs instead, so that what you see is still true:
{stand_ins}
  Every other stage (ingest, the PDF text layer, pooling, Qdrant, staged retrieval, citations)
  is the real code path.
  To use the real models:  huggingface-cli download <model>   (for each one above)
  or point the config at local copies, e.g.  [generator.init_parameters] model = "/path"
========================================================================================"""

#: what stands in for each unreachable model, as the banner says it
STAND_INS = {
    "embedder": (
        "a tiny RANDOM model of the same architecture: its visual scores are MEANINGLESS, so\n"
        "              the ranking comes from the text channel (BM25 over the pages' text)"
    ),
    "generator": (
        "no model: an extractive answer, the best-matching sentences of the retrieved\n"
        "              pages quoted with their citations"
    ),
    "reranker": "skipped (a random reranker would shuffle the ranking)",
}

#: the plan when the embedder is a random stand-in: the text channel orders the pages
OFFLINE_PLAN = "text@10"

#: the tiny zoo model standing in for the default embedder
_TINY_EMBEDDER = "colmodernvbert"


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


def _gpu_present() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _tiny_embedder(workdir: Path) -> Path:
    """Build (once) the tiny random embedder standing in for the default one."""
    from mmrag.testing.zoo import build

    folder = workdir / "tiny-models" / _TINY_EMBEDDER
    if not (folder / "mmrag_tiny.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        build(_TINY_EMBEDDER, folder)
    return folder


def _printable(text: str) -> str:
    """``text`` safe for a terminal (a random model emits control characters)."""
    return "".join(c if c.isprintable() or c == "\n" else "\ufffd" for c in text)


def demo_config(
    workdir: Path,
    *,
    offline: bool | None = None,
    echo: Callable[[str], Any] = print,
) -> tuple[PipelineConfig, dict[str, str]]:
    """The quickstart's pipeline config, with stand-ins for unreachable models.

    The default small real models (a ColPali-family embedder, a SmolVLM generator, and the
    MonoQwen2-VL reranker when a GPU is present) are used when cached or downloadable;
    each one that is not (or every one, with ``offline=True``) has a stand-in, and a banner
    saying so is echoed. What is shown stays true: the embedder is a tiny random model of the
    same architecture built under ``workdir``, whose pages are ranked by the BM25 text channel
    (``retrieval.hybrid``, plan :data:`OFFLINE_PLAN`); the generator is the extractive answer
    (:class:`~mmrag.generators.extractive.ExtractiveGenerator`: quoted sentences of the
    retrieved pages, cited; no model); the reranker is skipped.
    Returns the config (store under ``workdir``) and ``{role: real model}`` of the stand-ins.

    Example:
        >>> from mmrag.quickstart import demo_config                   # doctest: +SKIP
        >>> config, stand_ins = demo_config(Path("/tmp/demo"))          # doctest: +SKIP
    """
    from mmrag.config import GeneratorSpec, PipelineConfig, RerankerSpec

    workdir = workdir.expanduser().resolve()
    config = PipelineConfig()
    assert config.generator is not None
    config.generator.init_parameters = {
        **config.generator.init_parameters,
        "max_new_tokens": 128,
        "max_images": 3,
    }
    if _gpu_present():  # the MLLM reranker is worth its cost on a GPU
        config.reranker = RerankerSpec(type="monoqwen")
    specs = {"embedder": config.embedder, "generator": config.generator}
    if config.reranker is not None:
        specs["reranker"] = config.reranker

    missing: dict[str, str] = {}
    for role, spec in specs.items():
        model = str(spec.build().model)  # the component's own default when none is set
        available, why = (False, "offline") if offline else model_available(model)
        if available:
            echo(f"{role}: {model} ({why})")
        else:
            missing[role] = model
    if missing:
        echo(
            BANNER.format(
                missing="\n".join(f"    {r:9s} {m}" for r, m in missing.items()),
                stand_ins="\n".join(f"    {r:9s} {STAND_INS[r]}" for r in missing),
            )
        )
    if "embedder" in missing:
        folder = _tiny_embedder(workdir)
        config.embedder.init_parameters = {**config.embedder.init_parameters, "model": str(folder)}
        config.retrieval.hybrid = True
        config.retrieval.plan = OFFLINE_PLAN
        echo(f"embedder: tiny random stand-in in {folder}; plan {OFFLINE_PLAN} (BM25)")
    if "generator" in missing:
        config.generator = GeneratorSpec(type="extractive")
        echo("generator: extractive answer (quotes the retrieved pages, no model)")
    if "reranker" in missing:
        config.reranker = None
        echo("reranker: skipped")
    index = "index-offline" if "embedder" in missing else "index"
    config.store.path = str(workdir / index)
    return config, missing


def run_quickstart(
    workdir: Path,
    *,
    data: Path | None = None,
    question: str = DEFAULT_QUESTION,
    echo: Callable[[str], Any] = print,
    offline: bool | None = None,
) -> int:
    """Run the quickstart (index the sample, answer ``question``); returns the exit code."""
    from mmrag.pipeline.pipeline import Pipeline

    data = data or find_sample_data()
    if data is None or not data.is_dir():
        echo("mmrag quickstart: no sample data found; pass --data FOLDER (any PDFs/images/videos)")
        return 2
    echo(f"mmrag quickstart: sample data in {data}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    config, missing = demo_config(workdir, offline=offline, echo=echo)
    if missing:
        timings["build tiny models"] = time.perf_counter() - started
    tiny = bool(missing)
    index_path = config.store.path

    with Pipeline(config) as pipe:
        started = time.perf_counter()
        report = pipe.index([str(data)])
        timings["index"] = time.perf_counter() - started
        echo(f"indexed into {index_path}: {report.summary()} from {report.sources} sources")
        for failure in report.failed:
            echo(f"  FAILED {failure.source}: {failure.reason}")

        result = pipe.ask(question, k=3)
        echo(
            f"\nQ: {question}\nplan: {pipe.plan()}"
            + (" -> monoqwen rerank" if pipe.reranker else "")
        )
        label = "A (extractive: quoted from the pages)" if "generator" in missing else "A"
        echo(f"{label}: {_printable(result.text) or '(empty)'}")
        cited = {hit.id for hit in result.citations}
        echo("Sources (* cited):")
        for number, hit in enumerate(result.sources, 1):
            stages = ", ".join(f"{k} {v:.2f}" for k, v in hit.stage_scores.items())
            mark = "*" if hit.id in cited else " "
            echo(f" {mark}[{number}] {hit.citation():58s} score {hit.score:.2f}  ({stages})")
            words = [r for r in hit.regions if r.kind == "words"]
            if words:  # where the question's words stand on the page (a region citation)
                unit = "pt" if hit.item.modality.value == "pdf_page" else "px"
                w = words[0]
                echo(f"       words at ({w.x0:.0f}, {w.y0:.0f})-({w.x1:.0f}, {w.y1:.0f}) {unit}")
    timings.update(result.timings)
    echo("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    if tiny:
        echo("(stand-ins were used: see the banner above for the real models and what ran)")
    return 0 if report.ok else 1
