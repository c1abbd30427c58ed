"""What every ``mmrag`` command shares: the exit codes, the ``--config`` option and config
loading, building the pipeline, and turning mmrag errors into a message and an exit code.

Exit codes (sysexits-style; each store error has its own):

====  ===============  =====================================================================
code  name             meaning
====  ===============  =====================================================================
0                      success
1                      the job ran but some inputs failed
2                      usage or configuration error
65    EX_DATAERR       the collection does not fit: built with another embedder or pooling
                       (``CollectionMismatchError``), or by another mmrag layout version
                       (``StoreVersionError``): use another collection, or rebuild it
66    EX_NOINPUT       ``mmrag doctor``: there is no such collection
68    EX_NOHOST        a model's files can be had neither from a local folder, nor the
                       Hugging Face cache, nor the Hub (``ModelNotAvailableError``): offline
                       or unreachable; point the config at a local folder, or run
                       ``mmrag init --tiny``
69    EX_UNAVAILABLE   an optional dependency or feature is not installed
73    EX_CANTCREAT     the embedded store's folder is in use by another process or store
                       (``StoreLockedError``)
74    EX_IOERR         the store is damaged (``StoreCorruptError``: unreadable files, lost
                       points), or ``mmrag doctor`` found an error
75    EX_TEMPFAIL      the store is unreachable (``StoreUnavailableError``), or an indexing
                       job stopped part-way: run it again to resume
====  ===============  =====================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from mmrag.config import PipelineConfig

__all__ = [
    "EX_DATAERR",
    "EX_IOERR",
    "EX_LOCKED",
    "EX_NOHOST",
    "EX_NOINPUT",
    "EX_TEMPFAIL",
    "EX_UNAVAILABLE",
    "ConfigOption",
    "check_plan",
    "fail",
    "guard",
    "load_config",
    "load_step",
    "open_pipeline",
]

#: EX_DATAERR: the collection was built with another embedder / pooling / layout version.
EX_DATAERR = 65
#: EX_NOINPUT: ``mmrag doctor`` found no collection.
EX_NOINPUT = 66
#: EX_NOHOST: a model cannot be had (not local, not cached, the Hub offline or unreachable).
EX_NOHOST = 68
EX_UNAVAILABLE = 69
#: EX_CANTCREAT: the embedded store's folder is locked by another process or store object.
EX_LOCKED = 73
#: EX_IOERR: the store's files are damaged (or ``mmrag doctor`` found an error).
EX_IOERR = 74
#: EX_TEMPFAIL: the indexing job stopped part-way (e.g. the store was unreachable); run it again.
EX_TEMPFAIL = 75

T = TypeVar("T")

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


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``mmrag: message`` in red on stderr and exit with ``code``."""
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
        fail(str(exc))


def open_pipeline(cfg: PipelineConfig) -> Any:
    """The :class:`~mmrag.pipeline.pipeline.Pipeline` of ``cfg`` (use it as a context manager)."""
    from mmrag.pipeline.pipeline import Pipeline

    return Pipeline(cfg)


def guard(job: Callable[[], T]) -> T:
    """Run ``job``; an mmrag error becomes a clear message (no traceback) and its exit status
    (see the module doc): 73 locked, 74 damaged, 65 mismatched or old collection, 75
    unreachable, 68 a model cannot be had, 69 not installed, else 2. A stopped indexing job
    is left to the caller."""
    from mmrag.errors import (
        FeatureNotAvailableError,
        MissingDependencyError,
        MmragError,
        ModelNotAvailableError,
    )
    from mmrag.pipeline.indexing import IndexStoppedError
    from mmrag.store.contract import (
        CollectionMismatchError,
        StoreCorruptError,
        StoreLockedError,
        StoreUnavailableError,
        StoreVersionError,
    )

    try:
        return job()
    except IndexStoppedError:
        raise
    except StoreUnavailableError as exc:
        fail(str(exc), EX_TEMPFAIL)
    except StoreLockedError as exc:
        fail(str(exc), EX_LOCKED)
    except StoreCorruptError as exc:
        fail(str(exc), EX_IOERR)
    except (StoreVersionError, CollectionMismatchError) as exc:
        fail(str(exc), EX_DATAERR)
    except ModelNotAvailableError as exc:
        message = str(exc)
        if "mmrag init --tiny" not in message:
            message += (
                " Without Hub access (HF_HUB_OFFLINE=1 skips it), `mmrag init --tiny` writes "
                "a working config on tiny random models."
            )
        fail(message, EX_NOHOST)
    except (FeatureNotAvailableError, MissingDependencyError) as exc:
        fail(str(exc), EX_UNAVAILABLE)
    except MmragError as exc:
        fail(str(exc))


def load_step(pipe: Any, *roles: str) -> dict[str, float]:
    """Load the pipeline's models of ``roles`` that are not loaded yet as a step of its own,
    on stderr: ``loading embedder ORG/NAME …`` then ``embedder ready in 3.1 s``. A model that
    cannot be had exits with its message (68). Returns the seconds per role loaded."""
    import time

    from mmrag.pipeline.startup import load_models

    seconds: dict[str, float] = {}
    for role in roles:
        component = guard(lambda role=role: getattr(pipe, role))
        if component is None or getattr(component, "is_loaded", True):
            continue
        name = getattr(component, "model", None) or type(component).__name__
        typer.echo(f"loading {role} {name} …", err=True)
        started = time.perf_counter()
        guard(lambda role=role: load_models(pipe, [role]))
        seconds[role] = time.perf_counter() - started
        typer.echo(f"{role} ready in {seconds[role]:.1f} s", err=True)
    return seconds


def check_plan(plan: str | None) -> None:
    """Exit with status 2 and the parser's message if ``plan`` is not a valid retrieval plan."""
    if plan is None:
        return
    from mmrag.errors import ConfigError
    from mmrag.store.plan import parse_plan

    try:
        parse_plan(plan)
    except ConfigError as exc:
        fail(str(exc))
