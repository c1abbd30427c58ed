"""``mmrag quickstart``: index the bundled examples and search them for a question (the work
is done by :mod:`mmrag.quickstart`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["quickstart"]


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
    if (workdir / "tiny-models").is_dir():  # the offline fallback ran (now or before)
        typer.echo(
            "A config of your own without Hub access: `mmrag init --tiny` writes a commented "
            "mmrag.toml on these tiny models; then `mmrag index YOUR_FOLDER`."
        )
    raise typer.Exit(code)
