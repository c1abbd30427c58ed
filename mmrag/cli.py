"""The ``mmrag`` command.

Every subcommand is a thin shell over the Python API (one code path). Heavy libraries are imported
inside the commands, so ``mmrag --help`` starts fast.

Exit codes: 0 success; 1 the job ran but some inputs failed; 2 usage or configuration error;
69 (EX_UNAVAILABLE) an optional dependency or feature is not installed; 75 (EX_TEMPFAIL) an
indexing job stopped part-way (the store was unreachable): run it again to resume.

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

__all__ = ["EX_TEMPFAIL", "EX_UNAVAILABLE", "app", "main"]

EX_UNAVAILABLE = 69
#: EX_TEMPFAIL: the indexing job stopped part-way (e.g. the store was unreachable); run it again.
EX_TEMPFAIL = 75

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
    engine: Annotated[
        str,
        typer.Option("--engine", help="local (this machine) or ray (a Ray cluster)."),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="With --engine ray: the cluster to join ('auto', 'ray://head:10001'); "
            "overrides ray.address. Default: $RAY_ADDRESS, else Ray started on this machine.",
        ),
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar on stderr.")
    ] = True,
) -> None:
    """Index PDFs, images and videos into the store (resumable; bad files are reported).

    Running it again on the same inputs skips what is stored and finishes what is missing; a
    changed file is re-indexed and its old points removed. Exit status 75 means the job
    stopped (e.g. the store was unreachable): what was stored is kept; run it again to resume.
    """
    from mmrag.types import IndexReport as Report

    cfg = load_config(config)
    if engine not in ("local", "ray"):
        _fail(f"--engine must be 'local' or 'ray', got {engine!r}")
    if ray_address is not None:
        if engine != "ray":
            _fail("--ray-address is for --engine ray")
        cfg.ray.address = ray_address
    if dry_run:
        result = _dry_run(paths, cfg)
    else:
        result = _index(paths, cfg, force=force, engine=engine, progress=progress, report=report)
    assert isinstance(result, Report)
    for failure in result.failed:
        typer.secho(f"FAILED {failure.source}: {failure.reason}", err=True, fg=typer.colors.RED)
    if dry_run:
        typer.echo(
            f"dry run: {result.indexed} items readable, {len(result.failed)} failed, "
            f"from {result.sources} sources (nothing was stored)"
        )
    else:
        handled = result.indexed + result.skipped
        rate = handled / result.duration_s if result.duration_s > 0 else 0.0
        typer.echo(
            f"{result.summary()} from {result.sources} sources in {result.duration_s:.1f} s "
            f"({rate:.1f} pages/s)"
        )
    if report is not None:
        report.write_text(result.to_json(), encoding="utf-8")
    raise typer.Exit(0 if result.ok else 1)


def _index(
    paths: list[str],
    cfg: PipelineConfig,
    *,
    force: bool,
    engine: str,
    progress: bool,
    report: Path | None,
) -> IndexReport:
    """Run the indexing job with a tqdm bar (pages, pages/s, ETA; files in the postfix)."""
    from tqdm import tqdm

    from mmrag.pipeline.indexing import IndexProgress, IndexStoppedError

    bar = tqdm(
        unit=" pages",
        desc="indexing",
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=not progress,
    )

    def status(p: IndexProgress) -> None:
        if p.pages_total is not None and p.pages_total != bar.total:
            bar.total = p.pages_total
        files = f"{p.files_done}/{p.files_total}" if p.files_total is not None else p.files_done
        bar.set_postfix_str(f"files {files}, {p.failed} failed", refresh=False)

    try:
        with _pipeline(cfg) as pipe:
            return _guard(
                lambda: pipe.index(
                    paths, force=force, on_progress=bar.update, on_status=status, engine=engine
                )
            )
    except IndexStoppedError as exc:
        bar.close()
        if report is not None:
            report.write_text(exc.report.to_json(), encoding="utf-8")
        _fail(str(exc), EX_TEMPFAIL)
    finally:
        bar.close()


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
    """Run ``job``; an mmrag error becomes a clear message and exit status 2, an unreachable
    store exit status 75 (a stopped indexing job is left to the caller)."""
    from mmrag.errors import FeatureNotAvailableError, MissingDependencyError, MmragError
    from mmrag.pipeline.indexing import IndexStoppedError
    from mmrag.store.contract import StoreUnavailableError

    try:
        return job()
    except IndexStoppedError:
        raise
    except StoreUnavailableError as exc:
        _fail(str(exc), EX_TEMPFAIL)
    except (FeatureNotAvailableError, MissingDependencyError) as exc:
        _fail(str(exc), EX_UNAVAILABLE)
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
        from mmrag.store.plan import parse_plan

        try:
            parse_plan(plan)
        except ConfigError as exc:
            _fail(str(exc))
    from mmrag.store.records import SearchFilter

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
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", help="Pages / frames shown to the generator (default: config)."),
    ] = None,
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
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Print the answer as it is generated.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Retrieve, rerank and generate an answer with citations to page and video second."""
    cfg = load_config(config)
    if plan is not None:
        from mmrag.errors import ConfigError
        from mmrag.store.plan import parse_plan

        try:
            parse_plan(plan)
        except ConfigError as exc:
            _fail(str(exc))
    from mmrag.store.records import SearchFilter

    where = SearchFilter.build(source=source or None, modality=modality or None)
    streaming = stream and not as_json

    def on_token(piece: str) -> None:
        typer.echo(piece, nl=False)

    with _pipeline(cfg) as pipe:
        result = _guard(
            lambda: pipe.ask(
                question, k=k, plan=plan, filter=where, on_token=on_token if streaming else None
            )
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo("" if streaming else result.text)
    print_sources(result)


def print_sources(result: Any) -> None:
    """The numbered sources of an Answer (cited ones starred), then the stage timings."""
    cited = {hit.id for hit in result.citations}
    typer.echo("\nSources (* cited):")
    if not result.sources:
        typer.echo("  none: the index has no matching pages")
    for number, hit in enumerate(result.sources, 1):
        stages = ", ".join(f"{name} {score:.3f}" for name, score in hit.stage_scores.items())
        mark = "*" if hit.id in cited else " "
        typer.echo(f" {mark}[{number}] {hit.citation()}  score {hit.score:.3f}  [{stages}]")
    timings = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.timings.items())
    typer.echo(f"Timings: {timings}")


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
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="Require an API key (X-API-Key or Bearer): the name of the environment "
            "variable that holds it. Default: no key.",
        ),
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option("--max-upload-mb", help="Largest request body (uploads), in MB.")
    ] = 100.0,
    allow_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--allow-path",
            help="A server directory that POST /index/path may index (repeatable). "
            "Default: none (only uploads).",
            file_okay=False,
        ),
    ] = None,
    upload_dir: Annotated[
        Path | None,
        typer.Option("--upload-dir", help="Where uploads are kept (default: <store>/uploads)."),
    ] = None,
) -> None:
    """Run the HTTP API (OpenAPI at /docs) and the document-QA web page."""
    cfg = load_config(config)
    server = _guard(
        lambda: serve_app(
            cfg,
            api_key_env=api_key_env,
            max_upload_mb=max_upload_mb,
            allowed_roots=allow_path or [],
            upload_dir=upload_dir,
        )
    )
    import uvicorn

    shown = "localhost" if host in ("0.0.0.0", "::") else host
    typer.echo(f"mmrag: serving http://{shown}:{port}/ (API docs: http://{shown}:{port}/docs)")
    uvicorn.run(server, host=host, port=port, log_level="info")


def serve_app(
    cfg: PipelineConfig,
    *,
    api_key_env: str | None = None,
    max_upload_mb: float = 100.0,
    allowed_roots: list[Path] | None = None,
    upload_dir: Path | None = None,
) -> Any:
    """The FastAPI app ``mmrag serve`` runs (also used by examples/doc_qa_app.py)."""
    try:
        from mmrag.integrations.server import create_app
    except ImportError as exc:
        _fail(str(exc))
    from mmrag.auth import Secret

    return create_app(
        cfg,
        api_key=Secret.from_env_var(api_key_env) if api_key_env else None,
        max_upload_mb=max_upload_mb,
        upload_dir=upload_dir,
        allowed_roots=allowed_roots or [],
    )


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
    # torch's OpenMP threads spin while idle: next to the indexing job's ingest and writer
    # threads that cost 5x in throughput on a 2-core machine (measured); passive waiting not.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
