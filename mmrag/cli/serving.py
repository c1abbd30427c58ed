"""``mmrag serve``: the HTTP API and the document-QA web page under uvicorn, and
:func:`serve_app`, the FastAPI app it runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mmrag.cli._common import ConfigOption, fail, guard, load_config

if TYPE_CHECKING:
    from mmrag.config import PipelineConfig

__all__ = ["parse_tenants", "serve", "serve_app"]


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
    tenant: Annotated[
        list[str] | None,
        typer.Option(
            "--tenant",
            envvar="MMRAG_TENANTS",
            help="A tenant and the environment variable holding its key, as "
            "NAME=env:VARIABLE (repeatable; or MMRAG_TENANTS, space-separated). Each key "
            "sees only its tenant's uploads, jobs and items; --api-key-env is then the admin "
            "key (every tenant's items).",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (OpenAPI at /docs) and the document-QA web page."""
    cfg = load_config(config)
    tenants = parse_tenants(tenant or [])
    server = guard(
        lambda: serve_app(
            cfg,
            api_key_env=api_key_env,
            max_upload_mb=max_upload_mb,
            allowed_roots=allow_path or [],
            upload_dir=upload_dir,
            tenants=tenants,
        )
    )
    # The store opens (and the models load) before the port does: a locked, damaged or
    # mismatched store, or a model that cannot be had, is one message and its exit status.
    _start(server.state.service)
    import uvicorn

    shown = "localhost" if host in ("0.0.0.0", "::") else host
    typer.echo(f"mmrag: ready: http://{shown}:{port}/ (API docs: http://{shown}:{port}/docs)")
    uvicorn.run(server, host=host, port=port, log_level="info")


def _start(service: Any) -> None:
    """Open the store and load the models, saying so on stderr with the time it took: the
    embedder and reranker must load (else exit); a generator that cannot is a warning (then
    ``/ask`` answers 503, search works)."""
    import time

    from mmrag.embedders.checkpoint import loading
    from mmrag.errors import MmragError
    from mmrag.pipeline.startup import load_models

    cfg = service.pipeline.config
    models = [
        str(spec.init_parameters.get("model") or spec.type)
        for spec in (cfg.embedder, cfg.reranker)
        if spec is not None
    ]
    typer.echo(f"mmrag: opening the store, loading {', '.join(models)} …", err=True)
    started = time.perf_counter()

    def open_service() -> None:
        with loading(", ".join(models), what="the server's models", check=False):
            service.open()

    guard(open_service)
    typer.echo(f"mmrag: store and models ready in {time.perf_counter() - started:.1f} s", err=True)
    generator = guard(lambda: service.pipeline.generator)
    if generator is None or getattr(generator, "is_loaded", True):
        return
    typer.echo(f"mmrag: loading the generator {getattr(generator, 'model', '')} …", err=True)
    started = time.perf_counter()
    try:
        load_models(service.pipeline, ["generator"])
    except MmragError as exc:
        typer.secho(
            f"mmrag: the generator is not available, so /ask answers 503 (search works): {exc}",
            err=True,
            fg=typer.colors.YELLOW,
        )
        return
    typer.echo(f"mmrag: generator ready in {time.perf_counter() - started:.1f} s", err=True)


def serve_app(
    cfg: PipelineConfig,
    *,
    api_key_env: str | None = None,
    max_upload_mb: float = 100.0,
    allowed_roots: list[Path] | None = None,
    upload_dir: Path | None = None,
    tenants: dict[str, str] | None = None,
) -> Any:
    """The FastAPI app ``mmrag serve`` runs (``tenants``: name → ``"env:VARIABLE"``)."""
    try:
        from mmrag.integrations.server import create_app
    except ImportError as exc:
        fail(str(exc))
    from mmrag.auth import Secret

    return create_app(
        cfg,
        api_key=Secret.from_env_var(api_key_env) if api_key_env else None,
        max_upload_mb=max_upload_mb,
        upload_dir=upload_dir,
        allowed_roots=allowed_roots or [],
        tenants=tenants or None,
    )


def parse_tenants(specs: list[str]) -> dict[str, str]:
    """``["acme=env:ACME_KEY", ...]`` → ``{"acme": "env:ACME_KEY"}``; a malformed entry, a
    repeated name or a plain key (instead of ``env:VARIABLE``) fails with a clear message
    (the value itself is never echoed: it may be a key typed by mistake)."""
    tenants: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            fail("--tenant: expected NAME=env:VARIABLE, e.g. --tenant acme=env:ACME_KEY")
        if name in tenants:
            fail(f"--tenant {name}: given twice")
        if not value.startswith("env:") or len(value) <= 4:
            fail(
                f"--tenant {name}: name the environment variable that holds the key, as "
                f"{name}=env:VARIABLE (keys are never given on the command line)"
            )
        tenants[name] = value
    return tenants
