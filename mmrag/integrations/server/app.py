"""The FastAPI app factory, :func:`create_app`: settings checked, the service built, the
request guards and the routes installed, the web page mounted.

The routes live by group in :mod:`~mmrag.integrations.server.routes_index` (indexing jobs,
sources) and :mod:`~mmrag.integrations.server.routes_search` (search, ask, page images); the
request guards (JSON errors, upload limit, API key) in
:mod:`~mmrag.integrations.server.middleware`; what the routes share in
:mod:`~mmrag.integrations.server.service`.
"""

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mmrag.auth import Secret
from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.pipeline.pipeline import Pipeline

try:
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        f"the HTTP server needs FastAPI ({exc}); install it with: pip install 'mmrag[server]'"
    ) from exc


from mmrag.integrations.server.middleware import (
    BodyLimit,
    install_auth,
    install_error_handlers,
    resolve_keys,
)
from mmrag.integrations.server.routes_index import install_index_routes
from mmrag.integrations.server.routes_search import install_search_routes
from mmrag.integrations.server.schemas import ErrorOut, HealthOut
from mmrag.integrations.server.service import (
    API_PREFIX,
    Service,
    megabytes,
    model_name,
    version,
)

__all__ = ["API_PREFIX", "STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

_DESCRIPTION = """
Index PDFs, images and videos; search them; ask questions answered with citations to the page
or video second they came from, with the page images.

* Indexing runs as background **jobs** (one at a time): `POST /api/v1/index` (upload) or
  `POST /api/v1/index/path` (a path on the server), then poll `GET /api/v1/jobs/{id}`.
* When the server has an API key, send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`.
* **Tenants**: on a server with tenants each key belongs to one tenant, and every route acts for
  it alone: uploads, jobs, `GET /sources`, deletes, search, ask and page images see only that
  tenant's items (another tenant's item or job answers 404, as a missing one). The admin key
  (if any) sees everything. The tenant comes from the key only, never from the request.
* **Metadata**: attach your own fields when indexing (`metadata`: a JSON object, the upload's
  form field or `POST /index/path`'s body field); hits return them under `metadata`; filter on
  them with `filter=dept=hr&filter=year>=2020` (search) or `"filter": ["dept=hr"]` (ask).
* Errors are JSON: `{"error": {"code": "...", "message": "..."}}`.
"""


def create_app(
    pipeline_or_config: Pipeline | PipelineConfig | str | os.PathLike[str],
    *,
    api_key: Secret | str | dict[str, Any] | None = None,
    max_upload_mb: float = 100.0,
    upload_dir: str | os.PathLike[str] | None = None,
    allowed_roots: Sequence[str | os.PathLike[str]] = (),
    index_on_start: Sequence[str | os.PathLike[str]] = (),
    tenants: Mapping[str, Secret | str | dict[str, Any]] | None = None,
) -> FastAPI:
    """The FastAPI app serving ``pipeline_or_config`` (a Pipeline, a config, or a config file).

    ``api_key`` is a :class:`~mmrag.auth.Secret`, its dict form or ``"env:NAME"`` (resolved
    now, so a missing variable fails at start-up); ``None`` leaves the API open. ``tenants``
    maps each tenant's name to its key, in the same forms: a request with a tenant's key
    sees, indexes and deletes that tenant's items only; ``api_key`` is then the admin key
    (every tenant's items; leave it out for none), and a request without a known key gets
    401. Uploads are saved under ``upload_dir`` (default ``<store.path>/uploads``; a
    tenant's in ``upload_dir/<tenant>``) and indexed from there.
    ``POST /index/path`` accepts only paths inside ``allowed_roots`` (none: disabled). The
    store is opened and the embedder loaded when the app starts; the store is closed when it
    stops (the app owns the pipeline from then on). ``index_on_start`` (files or directories
    the operator names) are indexed by a job queued when the app starts.

    Example:
        >>> from mmrag.integrations.server import create_app                     # doctest: +SKIP
        >>> from fastapi.testclient import TestClient                          # doctest: +SKIP
        >>> with TestClient(create_app("mmrag.toml")) as client:               # doctest: +SKIP
        ...     client.get("/api/v1/search", params={"q": "revenue"}).json()["hits"][0]["citation"]
        'report.pdf p.3'
    """
    if isinstance(pipeline_or_config, Pipeline):
        pipeline = pipeline_or_config
    else:
        pipeline = Pipeline.from_config(pipeline_or_config)
    if max_upload_mb <= 0:
        raise ConfigError(f"max_upload_mb must be > 0, got {max_upload_mb}")
    key, tenant_keys = resolve_keys(api_key, tenants)
    roots = []
    for root in allowed_roots:
        real = Path(os.path.realpath(Path(root).expanduser()))
        if not real.is_dir():
            raise ConfigError(f"allowed root {root} is not a directory")
        roots.append(real)
    uploads = Path(upload_dir or Path(pipeline.config.store.path).expanduser() / "uploads")
    service = Service(
        pipeline,
        api_key=key,
        tenant_keys=tenant_keys,
        max_upload_bytes=int(max_upload_mb * 2**20),
        upload_dir=uploads.resolve(),
        allowed_roots=roots,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.open()
        service.jobs.start()
        if index_on_start:
            service.jobs.submit([os.path.abspath(Path(p).expanduser()) for p in index_on_start])
        try:
            yield
        finally:
            service.jobs.stop()
            pipeline.close()

    app = FastAPI(
        title="mmrag",
        version=version(),
        summary="Multimodal RAG over PDFs, images and videos, with page-level citations.",
        description=_DESCRIPTION,
        lifespan=lifespan,
        responses={
            "4XX": {"model": ErrorOut, "description": "A client error; see `error.message`."},
            "5XX": {"model": ErrorOut, "description": "A server error; see `error.message`."},
        },
    )
    app.state.service = service
    app.add_middleware(BodyLimit, limit=service.max_upload_bytes)
    install_error_handlers(app)
    install_auth(app, service)
    _install_health(app, service)
    install_index_routes(app, service)
    install_search_routes(app, service)
    if STATIC_DIR.is_dir():

        @app.get("/", include_in_schema=False)
        def page() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _install_health(app: FastAPI, service: Service) -> None:
    from mmrag.store.records import SearchFilter

    @app.get(f"{API_PREFIX}/health", response_model=HealthOut, tags=["server"])
    def health(request: Request) -> HealthOut:
        """Liveness, version and what this server offers (no API key needed). On a server
        with tenants, `items` counts the items of the key sent (`null` without one)."""
        pipe = service.ready()
        known = getattr(request.state, "authenticated", False)
        tenant = getattr(request.state, "tenant", None) if known else None
        items: int | None = None
        if tenant is not None:
            items = pipe.store.count(SearchFilter(tenant=tenant))
        elif known or not service.tenants:
            items = pipe.store.count()
        return HealthOut(
            version=version(),
            auth_required=service.auth_required,
            tenant=tenant,
            ask_available=service.ask_available,
            generator=model_name(pipe.config.generator),
            stand_ins=dict(service.stand_ins),
            items=items,
            max_upload_mb=float(megabytes(service.max_upload_bytes)),
            paths_allowed=bool(service.allowed_roots),
        )
