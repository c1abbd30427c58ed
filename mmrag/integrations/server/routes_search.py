"""The retrieval routes: search, ask (an answer with citations) and the page / frame image of
a hit (optionally downscaled).

Each acts for the caller's tenant: the search filter is restricted to the tenant's items (the
engine applies it at every stage), and an image is served only for the tenant's own item (any
other id answers exactly as a missing one does, so ids cannot be probed)."""

import io
import time
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import Response

from mmrag.integrations.server.schemas import AnswerOut, AskIn, SearchOut
from mmrag.integrations.server.service import API_PREFIX, Service, caller

__all__ = ["install_search_routes"]

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
        q: str = Query(min_length=1, max_length=4000, description="The text query."),
        k: int = Query(5, ge=1, le=100, description="Number of hits."),
        source: list[str] | None = Query(None, description="Only these sources (repeatable)."),
        modality: list[Literal["pdf_page", "image", "video_frame", "text"]] | None = Query(
            None, description="Only these modalities (repeatable)."
        ),
        plan: str | None = Query(None, description="Retrieval plan, e.g. `global@100 -> full@5`."),
        rerank: bool = Query(True, description="Apply the configured reranker, if any."),
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
        their user metadata. Only your own items are searched."""
        pipe = service.ready()
        base = SearchFilter.build(source=source or None, modality=modality or None)
        where = SearchFilter.parse(filters or (), base=base).for_tenant(tenant)
        started = time.perf_counter()
        hits = pipe.search(q, k=k, plan=plan, filter=where, rerank=rerank)
        root = request.scope.get("root_path", "")
        return SearchOut(
            query=q,
            hits=[service.hit_out(h, root) for h in hits],
            took_s=round(time.perf_counter() - started, 4),
        )

    @app.post(f"{prefix}/ask", response_model=AnswerOut, tags=["search"])
    def ask(body: AskIn, request: Request, tenant: str | None = Depends(caller)) -> AnswerOut:
        """Answer a question from your indexed pages (narrowed by `source`, `modality` and
        the metadata `filter`), citing the pages / frames it used."""
        pipe = service.ready()
        base = SearchFilter.build(source=body.source or None, modality=body.modality or None)
        where = SearchFilter.parse(body.filter or (), base=base).for_tenant(tenant)
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
