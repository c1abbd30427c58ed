"""Looking after an index: ``mmrag info`` (version, libraries, devices, components, the
effective config), ``mmrag delete`` (remove a source's items and page images) and ``mmrag
doctor`` (check the store's integrity and say what to do)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mmrag.cli._common import (
    EX_DATAERR,
    EX_IOERR,
    EX_LOCKED,
    EX_NOINPUT,
    EX_TEMPFAIL,
    ConfigOption,
    guard,
    load_config,
    open_pipeline,
)

__all__ = ["delete", "doctor", "info"]

#: The exit status of ``mmrag doctor`` by the check of its first error (else EX_IOERR).
DOCTOR_CODES = {
    "collection": EX_NOINPUT,
    "lock": EX_LOCKED,
    "version": EX_DATAERR,
    "connection": EX_TEMPFAIL,
}


def delete(
    source: Annotated[
        str,
        typer.Argument(
            help="The source whose items are removed: any spelling of its path, or its URI."
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Delete every item of a source from the index (and its page images)."""
    from mmrag.ids import canonical_source

    cfg = load_config(config)
    with open_pipeline(cfg) as pipe:
        removed = guard(lambda: pipe.delete(source))
    name = canonical_source(source)
    if not removed:
        typer.secho(f"{name}: not in the index (see `mmrag sources`)", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {removed} items of {name}")


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


def doctor(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
    vectors: Annotated[
        bool,
        typer.Option(
            "--vectors/--no-vectors",
            help="Read every stored vector to find NaN / inf values (slow on large stores).",
        ),
    ] = True,
) -> None:
    """Check the store: damaged or locked files, lost points, unfinished jobs, NaN vectors,
    missing or orphan page images; print each finding with what to do.

    Loads no model. Exit status 0 when no error is found (warnings allowed); else 74 (damaged),
    73 (in use elsewhere), 65 (old layout version), 66 (no such collection) or 75 (the server
    is unreachable).
    """
    from mmrag.store.doctor import check_store

    cfg = load_config(config)
    report = guard(lambda: check_store(cfg.store, vectors=vectors))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        colors = {"ok": typer.colors.GREEN, "warn": typer.colors.YELLOW, "error": typer.colors.RED}
        for level, line in report.lines():
            typer.secho(line, fg=colors.get(level or ""), bold=level is None)
    if report.errors:
        raise typer.Exit(DOCTOR_CODES.get(report.errors[0].check, EX_IOERR))
