"""``mmrag init``: write a commented ``mmrag.toml`` to start from, optionally on tiny offline
models (``--tiny``) so that a machine without Hugging Face access has a working config.

Example:
    $ mmrag init                        # the default small real models
    $ mmrag init --model vidore/colqwen2-v1.0-hf --index my_index
    $ mmrag init --tiny                 # tiny random models built next to the config
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from mmrag.cli._common import fail

__all__ = [
    "DEFAULT_EMBEDDER",
    "DEFAULT_GENERATOR",
    "TINY_FOLDER",
    "init",
    "render_config",
    "tiny_models",
]

#: The folder, next to the config, that ``--tiny`` builds its models in.
TINY_FOLDER = "mmrag-tiny-models"
#: The models a config from ``mmrag init`` names by default (the defaults of PipelineConfig).
DEFAULT_EMBEDDER = "ModernVBERT/colmodernvbert-merged"
DEFAULT_GENERATOR = "HuggingFaceTB/SmolVLM-256M-Instruct"
#: Tiny zoo model standing in for each role's default (SmolVLM is an Idefics3).
_TINY = {"embedder": "colmodernvbert", "generator": "idefics3"}

_HEADER = """\
# mmrag configuration, written by `mmrag init`.
#
# Every mmrag command reads ./mmrag.toml (or --config FILE, or $MMRAG_CONFIG). Environment
# variables override any value: MMRAG_<SECTION>__<KEY>, e.g. MMRAG_STORE__PATH=/data/index.
# Relative paths are relative to the folder mmrag runs in. `mmrag info --show-config` prints
# the effective config with every default; keys left out here keep their defaults.
"""

_TINY_BANNER = """\
#
# TINY RANDOM MODELS, built by `mmrag init --tiny` in
#   {folder}
# Every stage runs for real (ingest, pooling, Qdrant, staged retrieval, generation,
# citations) but rankings and answers are MEANINGLESS. For real results set the two `model`
# keys below to real checkpoints (Hub ids such as "ModernVBERT/colmodernvbert-merged", or
# local folders) and rebuild the index with `mmrag index PATHS --recreate`.
"""

_BODY = """\

[embedder]
# The model that turns pages, images and frames into vectors: a Hugging Face id, a model
# catalogue name, or a local checkpoint folder (no Hub access needed). Its family is read
# from the checkpoint; name it to skip that: type = "colqwen2" (clip, vlm2vec, e5v, colpali,
# colqwen2, colmodernvbert). An index remembers its model: another one needs --recreate.
model = {embedder}

[embedder.init_parameters]
device = {device}            # auto: the first CUDA GPU, else Apple MPS, else the CPU
batch_size = 8               # pages per forward pass; lower it if memory runs out
# revision = "<40-hex commit>"   # pin a Hub model to one commit

[ingest]
dpi = 144                    # PDF render resolution (a page is capped at ~4 megapixels)
video_fps = 1.0              # frames sampled per second of video
# max_side = 1536            # downscale pages and images to this longer side
# skip_blank_pages = true

[pooling]
# Multi-vector (ColPali-style) pages also store small pooled views, searched first.
views = ["global", "distinct"]   # also: rows, cols, tiles, smooth_rows, hier, muvera
full_pool_factor = 3         # store a third of the tokens (background merged); 1 = every token
token_index = true           # index the `distinct` vectors one by one: plans start with tokens@K

[store]
path = {index}        # the index: an embedded Qdrant folder
collection = "mmrag"
# backend = "server"                 # a Qdrant server instead of the folder;
# url = "http://localhost:6333"      # its API key comes from $QDRANT_API_KEY

[retrieval]
# Stages, cheapest first: candidates from the token index, exact MaxSim over the last ones.
plan = "tokens@128 -> distinct@32 -> full@10"
top_k = 5                    # hits returned (pages shown to the generator by `mmrag ask`)
# hybrid = true              # also search the pages' text layer, fused by rank (RRF)

# [reranker]                         # optional: rescore the candidates with an MLLM (a GPU)
# type = "monoqwen"
# [reranker.init_parameters]
# model = "lightonai/MonoQwen2-VL-v0.1"

[generator]
# The vision-language model that answers `mmrag ask` from the retrieved page images.
type = "transformers"

[generator.init_parameters]
model = {generator}
device = {device}
max_new_tokens = {max_new_tokens}
max_images = 4               # pages it is shown (keep it >= top_k)

# [ray]                              # `mmrag index --engine ray`: a Ray cluster indexes
# address = "auto"
# num_embed_actors = 2
# gpus_per_actor = 1
"""


def _quoted(value: str) -> str:
    import json

    return json.dumps(value)  # a TOML basic string: JSON escaping is valid TOML


def render_config(
    *,
    embedder: str = DEFAULT_EMBEDDER,
    generator: str = DEFAULT_GENERATOR,
    index: str = "mmrag_index",
    device: str = "auto",
    tiny_folder: Path | None = None,
) -> str:
    """The commented TOML ``mmrag init`` writes (validated: it loads as a PipelineConfig).

    Example:
        >>> from mmrag.config import PipelineConfig
        >>> text = render_config(embedder="vidore/colqwen2-v1.0-hf", index="my_index")
        >>> PipelineConfig.from_toml_string(text).store.path
        'my_index'
    """
    from mmrag.config import PipelineConfig

    text = _HEADER
    if tiny_folder is not None:
        text += _TINY_BANNER.format(folder=tiny_folder)
    text += _BODY.format(
        embedder=_quoted(embedder),
        generator=_quoted(generator),
        index=_quoted(index),
        device=_quoted(device),
        max_new_tokens=24 if tiny_folder is not None else 256,
    )
    PipelineConfig.from_toml_string(text)  # never write a config that does not load
    return text


def tiny_models(folder: Path, echo: Callable[[str], object] = print) -> dict[str, Path]:
    """Build (once; kept when present) the tiny random models standing in for the default
    embedder and generator under ``folder``; returns ``{role: model folder}``."""
    from mmrag.testing.manifest import MANIFEST_NAME

    built: dict[str, Path] = {}
    for role, name in _TINY.items():
        target = (folder / name).resolve()
        if not (target / MANIFEST_NAME).is_file():
            from mmrag.testing import build

            echo(f"building the tiny {name} model ({role}) in {target} …")
            build(name, target)
        built[role] = target
    return built


def init(
    path: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="Where to write the config.", dir_okay=False, writable=True
        ),
    ] = Path("mmrag.toml"),
    tiny: Annotated[
        bool,
        typer.Option(
            "--tiny",
            help=f"Build tiny random models (offline, seconds) in {TINY_FOLDER}/ next to the "
            "config and use them: a working setup without Hugging Face access (meaningless "
            "rankings and answers).",
        ),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The embedder: a Hugging Face id, catalogue name or local folder (its family "
            "is read from the checkpoint). Default: ModernVBERT/colmodernvbert-merged.",
        ),
    ] = None,
    index: Annotated[
        str, typer.Option("--index", help="The index folder (store.path).")
    ] = "mmrag_index",
    device: Annotated[
        str, typer.Option("--device", help="auto, cpu, mps, cuda or cuda:N.")
    ] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.")] = False,
) -> None:
    """Write a commented mmrag.toml to start from (every section explained)."""
    from mmrag.errors import ConfigError

    if tiny and model is not None:
        fail("give --model or --tiny, not both")
    if path.exists() and not force:
        fail(f"{path} exists; pass --force to overwrite it (or --config OTHER.toml)")
    embedder, generator, folder = model or DEFAULT_EMBEDDER, DEFAULT_GENERATOR, None
    if tiny:
        folder = path.resolve().parent / TINY_FOLDER
        built = tiny_models(folder, echo=lambda line: typer.echo(line, err=True))
        embedder, generator = str(built["embedder"]), str(built["generator"])
    try:
        text = render_config(
            embedder=embedder, generator=generator, index=index, device=device, tiny_folder=folder
        )
    except ConfigError as exc:
        fail(str(exc))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path} (embedder {embedder}, index {index})")
    if tiny:
        typer.echo("  tiny RANDOM models: every stage runs, rankings and answers are meaningless")
    typer.echo('next: mmrag index DOCS/   then   mmrag search "…"   or   mmrag ask "…"')
