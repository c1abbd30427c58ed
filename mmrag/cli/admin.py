"""Looking after an index: ``mmrag info`` (version, libraries, devices, components, the
effective config) and ``mmrag delete`` (remove a source's items and page images)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mmrag.cli._common import ConfigOption, guard, load_config, open_pipeline

__all__ = ["delete", "info"]


def delete(
    source: Annotated[str, typer.Argument(help="The source path/URI whose items are removed.")],
    config: ConfigOption = None,
) -> None:
    """Delete every item of a source from the index (and its page images)."""
    cfg = load_config(config)
    with open_pipeline(cfg) as pipe:
        removed = guard(lambda: pipe.delete(source))
    typer.echo(f"removed {removed} items of {source}")
    raise typer.Exit(0 if removed else 1)


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
