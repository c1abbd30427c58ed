"""The ``mmrag`` command.

Every subcommand is a thin shell over the Python API (one code path). Heavy libraries are imported
inside the commands, so ``mmrag --help`` starts fast.

This package builds the Typer ``app`` and registers the commands, which live by group:
:mod:`~mmrag.cli.indexing` (``index``), :mod:`~mmrag.cli.query` (``search``, ``ask``,
``eval``), :mod:`~mmrag.cli.admin` (``info``, ``doctor``, ``delete``), :mod:`~mmrag.cli.serving`
(``serve``), :mod:`~mmrag.cli.quickstart` (``quickstart``) and :mod:`~mmrag.cli.init`
(``init``); what they share (config loading, the exit codes, errors as messages) is in
:mod:`mmrag.cli._common`.

Exit codes (the table is in :mod:`mmrag.cli._common`): 0 success; 1 the job ran but some
inputs failed; 2 usage or configuration error; 65 (EX_DATAERR) the collection was built with
another embedder, pooling or mmrag layout version; 66 (EX_NOINPUT) ``mmrag doctor`` found no
collection; 68 (EX_NOHOST) a model cannot be had (not a local folder, not cached, and the
Hub offline or unreachable: point the config at a local folder, or ``mmrag init --tiny``);
69 (EX_UNAVAILABLE) an optional dependency or feature is not installed; 73 (EX_CANTCREAT) the
embedded store's folder is in use by another process; 74 (EX_IOERR) the store is damaged (or
``mmrag doctor`` found an error); 75 (EX_TEMPFAIL) the store is unreachable, or an indexing
job stopped part-way: run it again to resume.

Example:
    $ mmrag info
    $ mmrag doctor
    $ mmrag index ./docs --dry-run
    $ mmrag quickstart
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from mmrag.cli import admin, indexing, init, listing, query, quickstart, serving
from mmrag.cli._common import (
    EX_DATAERR,
    EX_IOERR,
    EX_LOCKED,
    EX_NOHOST,
    EX_NOINPUT,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
)

__all__ = [
    "EX_DATAERR",
    "EX_IOERR",
    "EX_LOCKED",
    "EX_NOHOST",
    "EX_NOINPUT",
    "EX_TEMPFAIL",
    "EX_UNAVAILABLE",
    "app",
    "main",
]

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


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # huggingface_hub prints its warnings through its own handler: not through ours as well
    logging.getLogger("huggingface_hub").propagate = False


# In the order `mmrag --help` lists them.
app.command()(indexing.index)
app.command()(query.search)
app.command()(query.ask)
app.command("eval")(query.evaluate)
app.command()(serving.serve)
app.command()(listing.sources)
app.command()(admin.delete)
app.command()(admin.info)
app.command()(admin.doctor)
app.command()(quickstart.quickstart)
app.command()(init.init)


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
