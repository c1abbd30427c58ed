"""The ``mmrag`` command.

Every subcommand is a thin shell over the Python API (one code path). Heavy libraries are imported
inside the commands, so ``mmrag --help`` starts fast.

Exit codes: 0 success; 1 the job ran but some inputs failed; 2 usage or configuration error;
69 (EX_UNAVAILABLE) the feature is not part of this build yet.

Example:
    $ mmrag info
    $ mmrag index ./docs --dry-run
    $ mmrag quickstart
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from mmrag.config import PipelineConfig
    from mmrag.types import IndexReport

__all__ = ["EX_UNAVAILABLE", "app", "main"]

EX_UNAVAILABLE = 69

app = typer.Typer(
    name="mmrag",
    help=(
        "Multimodal RAG: index PDFs, images and videos into Qdrant; search them with VLM and "
        "ColPali-style embeddings; answer questions with citations to page and video second."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Pipeline config (TOML or JSON). Default: $MMRAG_CONFIG, else ./mmrag.toml.",
        envvar="MMRAG_CONFIG",
        dir_okay=False,
    ),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"mmrag: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _unavailable(command: str, needs: str) -> NoReturn:
    _fail(
        f"`{command}` is not available in this build of mmrag yet: it needs {needs}, "
        "which has not landed. Nothing was done.",
        EX_UNAVAILABLE,
    )


def load_config(path: Path | None) -> PipelineConfig:
    """The effective config: the file (if any) with ``MMRAG_*`` environment overrides."""
    from mmrag.config import PipelineConfig
    from mmrag.errors import ConfigError

    try:
        if path is not None:
            return PipelineConfig.load(path)
        default = Path("mmrag.toml")
        return PipelineConfig.load(default) if default.is_file() else PipelineConfig()
    except ConfigError as exc:
        _fail(str(exc))


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def index(
    paths: Annotated[
        list[str], typer.Argument(help="Files, directories (recursive) or glob patterns.")
    ],
    config: ConfigOption = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Only discover and read the sources; list the items and failures."
        ),
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the IndexReport as JSON here.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-index what is already stored.")
    ] = False,
) -> None:
    """Index PDFs, images and videos into the store (resumable; bad files are reported)."""
    from mmrag.types import IndexReport as Report

    cfg = load_config(config)
    if dry_run:
        result = _dry_run(paths, cfg)
    else:
        from tqdm import tqdm

        with _pipeline(cfg) as pipe, tqdm(unit=" items", desc="indexing", leave=False) as bar:
            result = _guard(lambda: pipe.index(paths, force=force, on_progress=bar.update))
    assert isinstance(result, Report)
    for failure in result.failed:
        typer.secho(f"FAILED {failure.source}: {failure.reason}", err=True, fg=typer.colors.RED)
    if dry_run:
        typer.echo(
            f"dry run: {result.indexed} items readable, {len(result.failed)} failed, "
            f"from {result.sources} sources (nothing was stored)"
        )
    else:
        typer.echo(f"{result.summary()} from {result.sources} sources")
    if report is not None:
        report.write_text(result.to_json(), encoding="utf-8")
    raise typer.Exit(0 if result.ok else 1)


def _dry_run(paths: list[str], cfg: PipelineConfig) -> IndexReport:
    from mmrag.pipeline.ingest import iter_items
    from mmrag.types import IndexReport as Report

    result = Report()
    seen: set[str] = set()
    for item in iter_items(paths, cfg.ingest, report=result):
        seen.add(item.source)
        result.indexed += 1
        typer.echo(f"{item.citation()}\t{item.modality.value}\t{item.width}x{item.height}")
    result.sources = len(seen | {f.source for f in result.failed})
    return result


def _pipeline(cfg: PipelineConfig) -> Any:
    from mmrag.pipeline.pipeline import Pipeline

    return Pipeline(cfg)


def _guard(job: Any) -> Any:
    """Run ``job``; an mmrag error becomes a clear message and exit status 2."""
    from mmrag.errors import MmragError

    try:
        return job()
    except MmragError as exc:
        _fail(str(exc))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The text query.")],
    config: ConfigOption = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Number of hits.")] = 5,
    plan: Annotated[
        str | None, typer.Option("--plan", help="Retrieval plan, e.g. 'global@200 -> full@10'.")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only these sources (repeatable).")
    ] = None,
    modality: Annotated[
        list[str] | None,
        typer.Option("--modality", help="Only pdf_page / image / video_frame (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """Search the index and print the ranked pages / frames with their stage scores."""
    cfg = load_config(config)
    if plan is not None:
        from mmrag.errors import ConfigError
        from mmrag.pipeline.plan import parse_plan

        try:
            parse_plan(plan)
        except ConfigError as exc:
            _fail(str(exc))
    from mmrag.connectors.store import SearchFilter

    where = SearchFilter.build(source=source or None, modality=modality or None)
    with _pipeline(cfg) as pipe:
        hits = _guard(lambda: pipe.search(query, k=k, plan=plan, filter=where))
    if as_json:
        typer.echo(json.dumps([hit.to_dict() for hit in hits], indent=2))
        return
    if not hits:
        typer.echo("no hits")
    for rank, hit in enumerate(hits, 1):
        stages = ", ".join(f"{name} {score:.3f}" for name, score in hit.stage_scores.items())
        typer.echo(f"{rank:2d}. {hit.score:8.3f}  {hit.citation()}  [{stages}]")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Retrieve, rerank and generate an answer with citations to page and video second."""
    load_config(config)
    _unavailable("mmrag ask", "retrieval, rerankers and generators")


@app.command("eval")
def evaluate(
    dataset: Annotated[
        Path, typer.Argument(help="A BEIR-layout dataset (corpus, queries, qrels).")
    ],
    config: ConfigOption = None,
    plans: Annotated[
        list[str] | None, typer.Option("--plan", help="A plan to compare (repeatable).")
    ] = None,
    ks: Annotated[list[int] | None, typer.Option("--k", help="Cut-offs (repeatable).")] = None,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", help="Evaluate only the first N queries.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate retrieval plans side by side: NDCG@k, Recall@k, MRR@10, latency, QPS."""
    cfg = load_config(config)
    with _pipeline(cfg) as pipe:
        report = _guard(
            lambda: pipe.evaluate(dataset, plans=plans, ks=ks or (5, 10), max_queries=max_queries)
        )
    typer.echo(report.to_json() if as_json else report.table())


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API (OpenAPI) and the document-QA web page."""
    load_config(config)
    _unavailable("mmrag serve", "the HTTP server")


@app.command()
def delete(
    source: Annotated[str, typer.Argument(help="The source path/URI whose items are removed.")],
    config: ConfigOption = None,
) -> None:
    """Delete every item of a source from the index (and its page images)."""
    cfg = load_config(config)
    with _pipeline(cfg) as pipe:
        removed = _guard(lambda: pipe.delete(source))
    typer.echo(f"removed {removed} items of {source}")
    raise typer.Exit(0 if removed else 1)


@app.command()
def info(
    config: ConfigOption = None,
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Print the effective config as TOML.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show the version, installed libraries, compute devices, components and config."""
    from mmrag.info import collect_info

    cfg = load_config(config)
    data = collect_info(cfg)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        for section, values in data.items():
            typer.secho(f"{section}:", bold=True)
            for key, value in values.items():
                typer.echo(f"  {key}: {value}")
    if show_config:
        typer.echo(cfg.to_toml())


@app.command()
def quickstart(
    workdir: Annotated[
        Path, typer.Option(help="Where the quickstart index and models are written.")
    ] = Path(".mmrag-quickstart"),
    data: Annotated[
        Path | None, typer.Option(help="Folder to index (default: the bundled examples/data).")
    ] = None,
    question: Annotated[str | None, typer.Option(help="The question to search for.")] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not look for the real model; use a tiny one.")
    ] = False,
) -> None:
    """Index the bundled examples and search them for a question (every stage that has landed)."""
    from mmrag.quickstart import DEFAULT_QUESTION, run_quickstart

    code = run_quickstart(
        workdir,
        data=data,
        question=question or DEFAULT_QUESTION,
        echo=typer.echo,
        offline=offline,
    )
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``mmrag`` console script."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
