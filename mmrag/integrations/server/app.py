"""The FastAPI app: routes, auth, error handlers, upload limit."""

import hmac
import io
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from mmrag.auth import Secret
from mmrag.config import PipelineConfig
from mmrag.errors import (
    ConfigError,
    FeatureNotAvailableError,
    MissingDependencyError,
    MmragError,
)
from mmrag.pipeline.pipeline import Pipeline
from mmrag.types import Hit

try:
    from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        f"the HTTP server needs FastAPI ({exc}); install it with: pip install 'mmrag[server]'"
    ) from exc


from mmrag.integrations.server.jobs import JobManager, _LockedStore
from mmrag.integrations.server.schemas import (
    AnswerOut,
    AskIn,
    DeletedOut,
    ErrorOut,
    HealthOut,
    HitOut,
    IndexPathIn,
    JobOut,
    SearchOut,
    SourcesOut,
)

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_ITEM_ID = r"^[0-9a-fA-F-]{36}$"
_CHUNK = 1 << 20
_THUMB_MAX = 2048

# -- the app ------------------------------------------------------------------------------------


class _Service:
    """What the routes share: the pipeline, its locks, the jobs and the settings."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        api_key: str | None,
        max_upload_bytes: int,
        upload_dir: Path,
        allowed_roots: list[Path],
    ) -> None:
        self.pipeline = pipeline
        self.api_key = api_key
        self.max_upload_bytes = max_upload_bytes
        self.upload_dir = upload_dir
        self.allowed_roots = allowed_roots
        self.store_lock = threading.RLock()
        self.ask_lock = threading.Lock()  # one generation at a time (the model is shared)
        self.open_lock = threading.Lock()
        self.jobs = JobManager(pipeline)
        self._opened = False

    def open(self) -> None:
        """Open the store behind the lock, load the embedder and reranker (once, thread-safely)."""
        with self.open_lock:
            if self._opened:
                return
            pipe = self.pipeline
            store = pipe.store
            if pipe.config.store.backend == "embedded" and not isinstance(store, _LockedStore):
                # One in-process shard: serialise its calls. (A Qdrant server needs no lock.)
                pipe.wrap_store(lambda inner: _LockedStore(inner, self.store_lock))  # type: ignore[arg-type,return-value]
            for component in (pipe.embedder, pipe.reranker):  # searches use both
                loader = getattr(component, "load", None)
                if callable(loader):
                    loader()
            self._opened = True

    def ready(self) -> Pipeline:
        if not self._opened:
            self.open()
        return self.pipeline

    @property
    def ask_available(self) -> bool:
        return self.pipeline.config.generator is not None

    def load_generator(self) -> None:
        """Load the generator's model (call under ``ask_lock``); 503 if it cannot be had."""
        spec = self.pipeline.config.generator
        if spec is None:
            raise FeatureNotAvailableError(
                "no generator is configured, so questions cannot be answered; add a "
                "[generator] section to the server's config (or use /search)"
            )
        generator = self.pipeline.generator
        loader = getattr(generator, "load", None)
        if callable(loader) and not getattr(generator, "is_loaded", True):
            try:
                loader()
            except OSError as error:
                model = spec.init_parameters.get("model", spec.type)
                raise FeatureNotAvailableError(
                    f"the generator model {model} could not be loaded, so questions cannot be "
                    f"answered (use /search): {error}"
                ) from error

    def check_path(self, path: str) -> str | None:
        """Why ``path`` may not be indexed (outside the allowed roots), or ``None``."""
        real = os.path.realpath(path)
        for root in self.allowed_roots:
            if real == str(root) or real.startswith(str(root) + os.sep):
                return None
        return f"{path} resolves to {real}, outside the allowed roots"

    def hit_out(self, hit: Hit, root_path: str) -> HitOut:
        return HitOut(**hit.to_dict(), image_url=f"{root_path}{API_PREFIX}/items/{hit.id}/image")


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}


def _error(status: int, message: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"code": code or _STATUS_CODES.get(status, "error"), "message": message}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, declared or not."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (
            f"the request body is larger than the server's upload limit of "
            f"{_megabytes(self.limit)} MB; upload fewer or smaller files"
        )
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _error(413, message)(scope, receive, send)
            return
        total = 0

        async def limited() -> dict[str, Any]:
            nonlocal total
            event = await receive()
            if event["type"] == "http.request":
                total += len(event.get("body", b""))
                if total > self.limit:
                    raise HTTPException(413, message)
            return event

        await self.app(scope, limited, send)


_DESCRIPTION = """
Index PDFs, images and videos; search them; ask questions answered with citations to the page
or video second they came from, with the page images.

* Indexing runs as background **jobs** (one at a time): `POST /api/v1/index` (upload) or
  `POST /api/v1/index/path` (a path on the server), then poll `GET /api/v1/jobs/{id}`.
* When the server has an API key, send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`.
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
) -> FastAPI:
    """The FastAPI app serving ``pipeline_or_config`` (a Pipeline, a config, or a config file).

    ``api_key`` is a :class:`~mmrag.auth.Secret`, its dict form or ``"env:NAME"`` (resolved
    now, so a missing variable fails at start-up); ``None`` leaves the API open. Uploads are
    saved under ``upload_dir`` (default ``<store.path>/uploads``) and indexed from there.
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
    key = None
    if api_key is not None:
        secret = api_key if isinstance(api_key, Secret) else Secret.coerce(api_key)
        key = secret.resolve_value()
        if not key:
            raise ConfigError(f"the API key {secret!r} resolved to an empty value")
    roots = []
    for root in allowed_roots:
        real = Path(os.path.realpath(Path(root).expanduser()))
        if not real.is_dir():
            raise ConfigError(f"allowed root {root} is not a directory")
        roots.append(real)
    uploads = Path(upload_dir or Path(pipeline.config.store.path).expanduser() / "uploads")
    service = _Service(
        pipeline,
        api_key=key,
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
        version=_version(),
        summary="Multimodal RAG over PDFs, images and videos, with page-level citations.",
        description=_DESCRIPTION,
        lifespan=lifespan,
        responses={
            "4XX": {"model": ErrorOut, "description": "A client error; see `error.message`."},
            "5XX": {"model": ErrorOut, "description": "A server error; see `error.message`."},
        },
    )
    app.state.service = service
    app.add_middleware(_BodyLimit, limit=service.max_upload_bytes)
    _install_error_handlers(app)
    _install_auth(app, service)
    _install_routes(app, service)
    if STATIC_DIR.is_dir():

        @app.get("/", include_in_schema=False)
        def page() -> FileResponse:
            return FileResponse(STATIC_DIR / "index.html")

        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _model_name(spec: Any) -> str | None:
    if spec is None:
        return None
    return str(spec.init_parameters.get("model", spec.type))


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.3g}"


def _version() -> str:
    from mmrag import __version__

    return __version__


def _install_error_handlers(app: FastAPI) -> None:
    from mmrag.store.assets import AssetNotFoundError
    from mmrag.store.contract import StoreLockedError

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return _error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return _error(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(MmragError)
    async def mmrag_error(request: Request, exc: MmragError) -> JSONResponse:
        if isinstance(exc, AssetNotFoundError):
            return _error(404, str(exc))
        if isinstance(exc, (StoreLockedError, MissingDependencyError, FeatureNotAvailableError)):
            return _error(503, str(exc))
        if isinstance(exc, ConfigError):
            return _error(400, str(exc))
        logger.exception("request %s %s failed", request.method, request.url.path)
        return _error(500, f"{type(exc).__name__}: {exc}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("request %s %s failed", request.method, request.url.path)
        return _error(500, f"internal error while handling {request.url.path}: {exc}")


def _install_auth(app: FastAPI, service: _Service) -> None:
    open_paths = {f"{API_PREFIX}/health"}

    @app.middleware("http")
    async def require_key(request: Request, call_next: Any) -> Any:
        path = request.url.path
        if service.api_key is None or not path.startswith(API_PREFIX) or path in open_paths:
            return await call_next(request)
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if not given:
            return _error(401, "this server needs an API key: send X-API-Key or Bearer")
        if not hmac.compare_digest(given.encode(), service.api_key.encode()):
            return _error(401, "the API key is not valid")
        return await call_next(request)


def _install_routes(app: FastAPI, service: _Service) -> None:
    from mmrag.store.records import SearchFilter

    prefix = API_PREFIX

    @app.get(f"{prefix}/health", response_model=HealthOut, tags=["server"])
    def health() -> HealthOut:
        """Liveness, version and what this server offers (no API key needed)."""
        pipe = service.ready()
        return HealthOut(
            version=_version(),
            auth_required=service.api_key is not None,
            ask_available=service.ask_available,
            generator=_model_name(pipe.config.generator),
            items=pipe.store.count(),
            max_upload_mb=float(_megabytes(service.max_upload_bytes)),
            paths_allowed=bool(service.allowed_roots),
        )

    @app.post(f"{prefix}/index", response_model=JobOut, status_code=202, tags=["index"])
    def index_upload(
        files: list[UploadFile] = File(description="PDFs, images or videos to index."),
        force: bool = Query(False, description="Re-index what is already stored."),
    ) -> JobOut:
        """Upload files and queue a job that indexes them; poll `GET /jobs/{id}`."""
        if not files:
            raise HTTPException(400, "no files were uploaded; send them as multipart `files`")
        service.upload_dir.mkdir(parents=True, exist_ok=True)
        staging = service.upload_dir / f".incoming-{uuid.uuid4().hex}"
        staging.mkdir()
        saved: list[Path] = []
        try:
            names = [_safe_name(f.filename) for f in files]
            total = 0
            for upload, name in zip(files, names, strict=True):
                target = staging / name
                with target.open("wb") as out:
                    while chunk := upload.file.read(_CHUNK):
                        total += len(chunk)
                        if total > service.max_upload_bytes:
                            raise HTTPException(
                                413,
                                f"{upload.filename}: the upload is larger than the limit of "
                                f"{_megabytes(service.max_upload_bytes)} MB",
                            )
                        out.write(chunk)
                saved.append(target)
            finals = []
            for path in saved:  # new versions of a file replace the old (and its index points)
                final = service.upload_dir / path.name
                os.replace(path, final)
                finals.append(str(final))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        service.ready()
        return service.jobs.submit(list(dict.fromkeys(finals)), force=force).to_out()

    @app.post(f"{prefix}/index/path", response_model=JobOut, status_code=202, tags=["index"])
    def index_path(body: IndexPathIn) -> JobOut:
        """Queue a job that indexes a file or directory on the server (inside allowed roots)."""
        if not service.allowed_roots:
            raise HTTPException(
                403,
                "indexing server paths is disabled; start the server with --allow-path DIR "
                "(or allowed_roots=[...]) to allow a directory",
            )
        raw = body.path.strip()
        if not raw or "\x00" in raw:
            raise HTTPException(400, "path must be a non-empty file or directory path")
        if ".." in Path(raw).parts:
            raise HTTPException(400, f"{raw}: '..' is not allowed in paths")
        if any(ch in raw for ch in "*?["):
            raise HTTPException(400, f"{raw}: glob patterns are not accepted; name a directory")
        candidate = Path(raw).expanduser()
        if not candidate.is_absolute():
            candidate = service.allowed_roots[0] / candidate
        refusal = service.check_path(str(candidate))
        if refusal is not None:
            raise HTTPException(403, refusal)
        if not candidate.exists():
            raise HTTPException(404, f"{raw}: no such file or directory on the server")
        service.ready()
        job = service.jobs.submit([str(candidate)], force=body.force, check=service.check_path)
        return job.to_out()

    @app.get(f"{prefix}/jobs", response_model=list[JobOut], tags=["index"])
    def list_jobs() -> list[JobOut]:
        """Every remembered indexing job, newest first."""
        return [job.to_out() for job in service.jobs.all()]

    @app.get(f"{prefix}/jobs/{{job_id}}", response_model=JobOut, tags=["index"])
    def get_job(job_id: str) -> JobOut:
        """An indexing job's status, progress and (when finished) report."""
        job = service.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no indexing job {job_id!r} (jobs are kept in memory)")
        return job.to_out()

    @app.get(f"{prefix}/search", response_model=SearchOut, tags=["search"])
    def search(
        request: Request,
        q: str = Query(min_length=1, max_length=4000, description="The text query."),
        k: int = Query(5, ge=1, le=100, description="Number of hits."),
        source: list[str] | None = Query(None, description="Only these sources (repeatable)."),
        modality: list[Literal["pdf_page", "image", "video_frame", "text"]] | None = Query(
            None, description="Only these modalities (repeatable)."
        ),
        plan: str | None = Query(None, description="Retrieval plan, e.g. `global@100 -> full@5`."),
        rerank: bool = Query(True, description="Apply the configured reranker, if any."),
    ) -> SearchOut:
        """The best pages / frames for a text query, with their scores at each stage."""
        pipe = service.ready()
        where = SearchFilter.build(source=source or None, modality=modality or None)
        started = time.perf_counter()
        hits = pipe.search(q, k=k, plan=plan, filter=where, rerank=rerank)
        root = request.scope.get("root_path", "")
        return SearchOut(
            query=q,
            hits=[service.hit_out(h, root) for h in hits],
            took_s=round(time.perf_counter() - started, 4),
        )

    @app.post(f"{prefix}/ask", response_model=AnswerOut, tags=["search"])
    def ask(body: AskIn, request: Request) -> AnswerOut:
        """Answer a question from the indexed pages, citing the pages / frames it used."""
        pipe = service.ready()
        where = SearchFilter.build(source=body.source or None, modality=body.modality or None)
        with service.ask_lock:  # one generation at a time: the model is shared
            service.load_generator()
            answer = pipe.ask(body.question, k=body.k, plan=body.plan, filter=where)
        root = request.scope.get("root_path", "")
        return AnswerOut(
            text=answer.text,
            citations=[service.hit_out(h, root) for h in answer.citations],
            sources=[service.hit_out(h, root) for h in answer.sources],
            usage=dict(answer.usage),
            timings={k: float(v) for k, v in answer.timings.items()},
        )

    @app.get(f"{prefix}/sources", response_model=SourcesOut, tags=["index"])
    def sources() -> SourcesOut:
        """The sources (files) in the index."""
        return SourcesOut(sources=service.ready().sources())

    @app.delete(f"{prefix}/sources", response_model=DeletedOut, tags=["index"])
    def delete_source(
        source: str = Query(min_length=1, description="The source, as GET /sources lists it."),
    ) -> DeletedOut:
        """Remove a source's pages / frames and their images (and its uploaded file)."""
        pipe = service.ready()
        if source not in pipe.sources():
            raise HTTPException(404, f"{source}: not in the index (see GET {prefix}/sources)")
        removed = pipe.delete(source)
        uploaded = Path(source)
        if uploaded.parent == service.upload_dir and uploaded.is_file():
            uploaded.unlink()
        return DeletedOut(source=source, removed=removed)

    @app.get(
        f"{prefix}/items/{{item_id}}/image",
        tags=["search"],
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}},
    )
    def item_image(
        item_id: str = PathParam(pattern=_ITEM_ID, description="The hit's `id`."),
        max_side: int | None = Query(
            None, ge=16, le=_THUMB_MAX, description="Downscale so no side exceeds this (thumbs)."
        ),
    ) -> Response:
        """The page / frame image of an indexed item (PNG or JPEG, as stored)."""
        image = service.ready().assets.get(item_id.lower())
        fmt = "JPEG" if image.format == "JPEG" else "PNG"
        if max_side is not None and max(image.size) > max_side:
            image.thumbnail((max_side, max_side))
        buffer = io.BytesIO()
        if fmt == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(buffer, format=fmt)
        return Response(
            buffer.getvalue(),
            media_type=f"image/{fmt.lower()}",
            headers={"Cache-Control": "private, max-age=86400, immutable"},
        )


_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+-]")


def _safe_name(filename: str | None) -> str:
    """A plain file name for an upload: no directories, no leading dots, no odd characters."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = _UNSAFE.sub("_", base).strip(" .")[:200]
    if not clean or clean in {".", ".."}:
        raise HTTPException(400, f"upload file name {filename!r} is empty or not usable")
    return clean
