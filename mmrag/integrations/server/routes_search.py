"""The retrieval routes: search, ask (an answer with citations) and the page / frame image of
a hit (optionally downscaled).

Each acts for the caller's tenant: the search filter is restricted to the tenant's items (the
engine applies it at every stage), and an image is served only for the tenant's own item (any
other id answers exactly as a missing one does, so ids cannot be probed)."""

import asyncio
import io
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse

from mmrag.integrations.server.routes_index import check_path_length
from mmrag.integrations.server.schemas import AnswerOut, AskIn, SearchOut
from mmrag.integrations.server.service import API_PREFIX, Service, caller

__all__ = ["event_stream", "install_search_routes"]

logger = logging.getLogger(__name__)

_ITEM_ID = r"^[0-9a-fA-F-]{36}$"
_THUMB_MAX = 2048


def install_search_routes(app: FastAPI, service: Service) -> None:
    """``GET /search``, ``POST /ask`` and ``GET /items/{id}/image``."""
    from mmrag.store.assets import AssetNotFoundError
    from mmrag.store.records import SearchFilter

    prefix = API_PREFIX

    @app.get(f"{prefix}/search", response_model=SearchOut, tags=["search"])
    def search(
        request: Request,
        response: Response,
        q: str = Query(min_length=1, max_length=4000, description="The text query."),
        k: int = Query(5, ge=1, le=100, description="Number of hits."),
        source: list[str] | None = Query(None, description="Only these sources (repeatable)."),
        modality: list[Literal["pdf_page", "image", "video_frame", "text"]] | None = Query(
            None, description="Only these modalities (repeatable)."
        ),
        plan: str | None = Query(None, description="Retrieval plan, e.g. `global@100 -> full@5`."),
        rerank: bool = Query(True, description="Apply the configured reranker, if any."),
        regions: bool | None = Query(
            None, description="Each hit's page regions that carry the match (default: k <= 20)."
        ),
        filters: list[str] | None = Query(
            None,
            alias="filter",
            description="A condition on the user metadata (repeatable, all must hold): "
            "`key=value` (repeat a key to match any of its values), `key>=number`, "
            "`key<=number`, e.g. `filter=dept=hr&filter=year>=2020`.",
        ),
        tenant: str | None = Depends(caller),
    ) -> SearchOut:
        """The best pages / frames for a text query, with their scores at each stage and
        their user metadata. Only your own items are searched. `took_s` is the search alone;
        when the models had to load first, the `Server-Timing` header says how long
        (`load;dur=<ms>`, then `search;dur=<ms>`)."""
        pipe, load = _ready(service)
        for named in source or ():
            check_path_length(named, "source")
        base = SearchFilter.build(source=source or None, modality=modality or None)
        where = SearchFilter.parse(filters or (), base=base).for_tenant(tenant)
        started = time.perf_counter()
        hits = pipe.search(q, k=k, plan=plan, filter=where, rerank=rerank, regions=regions)
        took = time.perf_counter() - started
        response.headers["Server-Timing"] = _server_timing({"load": load, "search": took})
        root = request.scope.get("root_path", "")
        return SearchOut(
            query=q, hits=[service.hit_out(h, root) for h in hits], took_s=round(took, 4)
        )

    @app.post(
        f"{prefix}/ask",
        response_model=AnswerOut,
        tags=["search"],
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    def ask(
        body: AskIn,
        request: Request,
        stream: bool = Query(
            False, description="Stream the answer as server-sent events (see above)."
        ),
        tenant: str | None = Depends(caller),
    ) -> AnswerOut | Response:
        """Answer a question from your indexed pages (narrowed by `source`, `modality` and
        the metadata `filter`), citing the pages / frames it used.

        **Streaming**: with `Accept: text/event-stream` (or `?stream=true`) the answer comes
        as server-sent events while it is generated: `event: token` with
        `data: {"text": "<the next piece>"}` (any number), then one `event: answer` whose
        data is this route's JSON body (text, sources, citations, usage, timings), or one
        `event: error` with `data: {"error": {"code", "message"}, "status": <the status the
        JSON route would answer>}`. A request that is refused before generation starts (bad
        body or filter, no key, no generator) is refused with the JSON error and its status,
        as without streaming. Read it with `fetch` (EventSource cannot POST), e.g.
        `curl -N -H 'Accept: text/event-stream' -d '{"question": "…"}' …/api/v1/ask`."""
        pipe, opened = _ready(service)
        base = SearchFilter.build(source=body.source or None, modality=body.modality or None)
        where = SearchFilter.parse(body.filter or (), base=base).for_tenant(tenant)
        root = request.scope.get("root_path", "")

        def answer_out(on_token: Callable[[str], None] | None = None) -> AnswerOut:
            with service.ask_lock:  # one generation at a time: the model is shared
                cold, started = _cold(pipe, "generator"), time.perf_counter()
                service.load_generator()
                load = opened + (time.perf_counter() - started if cold else 0.0)
                answer = pipe.ask(
                    body.question, k=body.k, plan=body.plan, filter=where, on_token=on_token
                )
            return AnswerOut(
                text=answer.text,
                citations=[service.hit_out(h, root) for h in answer.citations],
                sources=[service.hit_out(h, root) for h in answer.sources],
                usage=dict(answer.usage),
                timings=_with_load(answer.timings, load),
                notes=list(answer.notes),
            )

        if stream or "text/event-stream" in request.headers.get("accept", ""):
            service.require_generator()  # refused now, as JSON, rather than as an event
            return event_stream(answer_out)
        return answer_out()

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
        tenant: str | None = Depends(caller),
    ) -> Response:
        """The page / frame image of one of your indexed items (PNG or JPEG, as stored)."""
        item_id = item_id.lower()
        pipe = service.ready()
        if tenant is None:
            image = pipe.assets.get(item_id)
        else:  # another tenant's item answers exactly as a missing one
            missing = HTTPException(404, f"no page image for item {item_id}")
            if not service.owns(tenant, item_id):
                raise missing
            try:
                image = pipe.assets.get(item_id)
            except AssetNotFoundError:
                raise missing from None
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


def event_stream(produce: Callable[[Callable[[str], None]], AnswerOut]) -> StreamingResponse:
    """``produce(on_token)`` run in a worker thread, its tokens and result as server-sent events.

    Events: ``token`` (``{"text": piece}``) for each piece handed to ``on_token``, then
    ``answer`` (the :class:`AnswerOut`), or ``error`` (``{"error": {code, message}, "status"}``)
    if it raised. The worker runs to its end even when the client leaves (the generation
    cannot be interrupted; it holds the ask lock until it is done): what it emits then is
    dropped.
    """

    async def events() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        gone = threading.Event()

        def emit(message: tuple[str, Any] | None) -> None:
            if gone.is_set():
                return
            try:
                loop.call_soon_threadsafe(queue.put_nowait, message)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                gone.set()

        def work() -> None:
            try:
                result = produce(lambda piece: emit(("token", {"text": piece})))
                emit(("answer", result.model_dump(mode="json")))
            except Exception as error:  # reported to the client as an error event
                emit(("error", _error_event(error)))
            finally:
                emit(None)

        threading.Thread(target=work, name="mmrag-ask-stream", daemon=True).start()
        try:
            while (message := await queue.get()) is not None:
                name, data = message
                yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
        finally:
            gone.set()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _error_event(error: Exception) -> dict[str, Any]:
    """The ``error`` event of a failed streamed answer: the JSON error body the route would
    have answered, and its status (as the error handlers map them)."""
    from mmrag.errors import ConfigError, FeatureNotAvailableError, MissingDependencyError
    from mmrag.store.contract import StoreCorruptError, StoreLockedError, StoreVersionError

    unavailable = (
        StoreLockedError,
        StoreCorruptError,
        StoreVersionError,
        MissingDependencyError,
        FeatureNotAvailableError,
    )
    if isinstance(error, unavailable):
        status, code, message = 503, "unavailable", str(error)
    elif isinstance(error, ConfigError):
        status, code, message = 400, "bad_request", str(error)
    else:
        logger.exception("a streamed answer failed", exc_info=error)
        status, code, message = 500, "internal_error", f"{type(error).__name__}: {error}"
    return {"error": {"code": code, "message": message}, "status": status}


# -- timings: model loading is a step of its own ----------------------------------------------


def _cold(pipe: Any, *roles: str) -> bool:
    """Whether a model of ``roles`` is configured and not loaded yet."""
    return any(not getattr(getattr(pipe, role), "is_loaded", True) for role in roles)


def _ready(service: Service) -> tuple[Any, float]:
    """The service's pipeline (store open, embedder and reranker loaded) and the seconds
    spent loading them in this request (0 when they were loaded already)."""
    cold = _cold(service.pipeline, "embedder", "reranker")
    started = time.perf_counter()
    pipe = service.ready()
    return pipe, time.perf_counter() - started if cold else 0.0


def _with_load(timings: dict[str, float], load: float) -> dict[str, float]:
    """An answer's timings with ``load`` added (first; ``total`` includes it): the loads of
    this request outside ``Pipeline.ask`` (models loaded by the server, on first use)."""
    out = {k: float(v) for k, v in timings.items()}
    if load > 0:
        out = {"load": out.pop("load", 0.0) + load, **out}
        out["total"] = out.get("total", 0.0) + load
    return out


def _server_timing(steps: dict[str, float]) -> str:
    """An HTTP ``Server-Timing`` header value (milliseconds), steps that took no time left out."""
    return ", ".join(
        f"{name};dur={seconds * 1000:.1f}" for name, seconds in steps.items() if seconds > 0
    )
