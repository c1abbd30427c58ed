"""``mmrag index``: index files into the store with a progress bar, or (``--dry-run``) only
read them and list what would be indexed."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mmrag.cli._common import (
    EX_TEMPFAIL,
    ConfigOption,
    fail,
    guard,
    load_config,
    load_step,
    open_pipeline,
)

if TYPE_CHECKING:
    from mmrag.config import PipelineConfig
    from mmrag.types import IndexReport

__all__ = ["index"]


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
    meta: Annotated[
        list[str] | None,
        typer.Option(
            "--meta",
            help="Your own field on every indexed item, key=value (repeatable; 2024 is a "
            "number, true/false a boolean). A <file>.meta.json sidecar adds per-file fields.",
        ),
    ] = None,
    recreate: Annotated[
        bool,
        typer.Option(
            "--recreate",
            help="Delete the collection first and index from scratch (an index of an older "
            "layout, or built with another model).",
        ),
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
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail files of unsupported type found in folders (a .zip, a .py, a .docx "
            "without LibreOffice) instead of skipping and counting them "
            "(ingest.fail_unsupported = true).",
        ),
    ] = False,
) -> None:
    """Index PDFs, images, videos, text / Markdown / HTML files and (with LibreOffice) Office
    documents into the store (resumable; bad files are reported, files of other types found in
    folders are skipped and counted: --strict fails them).

    Running it again on the same inputs skips what is stored and finishes what is missing; a
    changed file is re-indexed and its old points removed. Exit status 75 means the job
    stopped (e.g. the store was unreachable): what was stored is kept; run it again to resume.
    """
    from mmrag.types import IndexReport as Report

    cfg = load_config(config)
    if strict:
        cfg.ingest.fail_unsupported = True
    if engine not in ("local", "ray"):
        fail(f"--engine must be 'local' or 'ray', got {engine!r}")
    if ray_address is not None:
        if engine != "ray":
            fail("--ray-address is for --engine ray")
        cfg.ray.address = ray_address
    from mmrag.types import parse_assignments

    try:
        metadata = parse_assignments(meta or [], "--meta") or None
    except ValueError as exc:
        fail(str(exc))
    with _failures_shown_once():
        if dry_run:
            result = _dry_run(paths, cfg)
        else:
            result = _index(
                paths,
                cfg,
                force=force,
                engine=engine,
                progress=progress,
                report=report,
                metadata=metadata,
                recreate=recreate,
            )
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
            f"{result.summary(unsupported=False)} from {result.sources} sources in "
            f"{result.duration_s:.1f} s ({rate:.1f} pages/s)"
        )
    _print_unsupported(result)
    if report is not None:
        report.write_text(result.to_json(), encoding="utf-8")
    raise typer.Exit(0 if result.ok else 1)


def _print_unsupported(result: IndexReport, most: int = 10) -> None:
    """``2 files skipped (unsupported type): setup.py, data.zip`` (the first ``most`` names;
    the reasons are in the ``--report`` JSON)."""
    if not result.unsupported:
        return
    count = len(result.unsupported)
    names = [Path(entry.source).name for entry in result.unsupported[:most]]
    more = f" and {count - most} more (--report FILE lists them)" if count > most else ""
    typer.echo(
        f"{count} file{'s' * (count != 1)} skipped (unsupported type): {', '.join(names)}{more}"
    )
    if any("LibreOffice: it is not installed" in entry.reason for entry in result.unsupported):
        typer.echo(
            "  Office documents are converted with LibreOffice, which is not installed: e.g. "
            "apt-get install libreoffice-writer-nogui libreoffice-impress-nogui "
            "libreoffice-calc-nogui"
        )


@contextlib.contextmanager
def _failures_shown_once() -> Iterator[None]:
    """Leave out the log warnings of files the report lists (``Skipping FILE: reason``): each
    failure is printed once, as its ``FAILED`` line at the end."""

    class _Reported(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not (record.name.startswith("mmrag.") and record.msg == "Skipping %s: %s")

    handlers = list(logging.getLogger().handlers)
    hide = _Reported()
    for handler in handlers:
        handler.addFilter(hide)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(hide)


def _index(
    paths: list[str],
    cfg: PipelineConfig,
    *,
    force: bool,
    engine: str,
    progress: bool,
    report: Path | None,
    metadata: dict[str, object] | None = None,
    recreate: bool = False,
) -> IndexReport:
    """Run the indexing job with a tqdm bar (pages, pages/s, ETA; files in the postfix)."""
    from tqdm import tqdm

    from mmrag.pipeline.indexing import IndexProgress, IndexStoppedError

    bar = tqdm(disable=True)  # replaced once the store is open and the model loaded

    def status(p: IndexProgress) -> None:
        if p.pages_total is not None and p.pages_total != bar.total:
            bar.total = p.pages_total
        files = f"{p.files_done}/{p.files_total}" if p.files_total is not None else p.files_done
        bar.set_postfix_str(f"files {files}, {p.failed} failed", refresh=False)

    try:
        with open_pipeline(cfg) as pipe:
            if recreate:
                guard(pipe.recreate)
            guard(lambda: pipe.store)  # locked, damaged, mismatched, no model id: before loading
            if engine == "local":  # a step of its own: the job's pages/s leave it out
                load_step(pipe, "embedder")
            bar = tqdm(
                unit=" pages",
                desc="indexing",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
                disable=not progress,
            )
            return guard(
                lambda: pipe.index(
                    paths,
                    metadata=metadata,
                    force=force,
                    on_progress=bar.update,
                    on_status=status,
                    engine=engine,
                )
            )
    except IndexStoppedError as exc:
        bar.close()
        if report is not None:
            report.write_text(exc.report.to_json(), encoding="utf-8")
        fail(str(exc), EX_TEMPFAIL)
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
