"""``mmrag sources``: what is indexed, one line per source with its number of pages / images /
frames (``--json`` for scripts; ``--filter`` on the user's metadata)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mmrag.cli._common import ConfigOption, guard, load_config, open_pipeline
from mmrag.cli.query import FilterOption, ModalityOption, build_filter

__all__ = ["sources"]


def sources(
    config: ConfigOption = None,
    modality: ModalityOption = None,
    filters: FilterOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {source: items} as one JSON object.")
    ] = False,
) -> None:
    """List the indexed sources (canonical paths / URIs) with their item counts."""
    cfg = load_config(config)
    where = build_filter(None, modality, filters)
    with open_pipeline(cfg) as pipe:
        counts = guard(lambda: pipe.source_counts(where))
    if as_json:
        typer.echo(json.dumps(counts, indent=2))
        return
    if not counts:
        typer.echo("no sources indexed" + (" matching the filter" if not where.is_empty else ""))
        return
    width = max(len(str(n)) for n in counts.values())
    for source, n in counts.items():
        typer.echo(f"{n:>{width}}  {source}")
    total = sum(counts.values())
    typer.echo(f"{len(counts)} sources, {total} items")
