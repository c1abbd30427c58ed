"""LangChain integration: a ``BaseRetriever`` over a :class:`~mmrag.pipeline.pipeline.Pipeline`,
and a retrieval tool for agents.

:class:`MmragRetriever` returns LangChain ``Document`` s, one per retrieved page, image or video
frame: the page's text layer as ``page_content`` (a short stand-in such as
``"Video frame: talk.mp4 @ 0:12.5"`` when the item has no text), and metadata that says where it
came from (``source``, ``page``, ``page_label``, ``timestamp_s``, ``frame_index``, ``modality``,
``citation``), how it scored (``score``, ``stage_scores``) and, by option, the page image itself
(``image_base64`` or ``image_uri``, with ``image_mime``). It is synchronous and asynchronous (the
store and the embedder are not async: ``ainvoke`` runs the search in a worker thread), and passes
LangChain's standard retriever tests (``langchain-tests``).

:func:`create_mmrag_tool` (or :meth:`MmragRetriever.as_tool`) wraps it as a tool whose output is
the retrieved text with a numbered citation per document; with
``response_format="content_and_artifact"`` (the default) the ``ToolMessage`` also carries the
``Document`` s as its artifact, so an agent can show the cited page images.

This module imports LangChain; ``import mmrag`` never imports it.

Example:
    >>> from mmrag.integrations.langchain import MmragRetriever               # doctest: +SKIP
    >>> retriever = MmragRetriever.from_config("mmrag.toml", k=3, image="uri")  # doctest: +SKIP
    >>> for doc in retriever.invoke("How much did revenue grow in 2024?"):   # doctest: +SKIP
    ...     print(doc.metadata["citation"], doc.metadata["score"], doc.metadata["image_uri"])
    >>> tool = retriever.as_tool(name="search_reports")                      # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
    Callbacks,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.assets import AssetNotFoundError
from mmrag.store.plan import Plan, Stage, parse_plan
from mmrag.store.records import SearchFilter
from mmrag.types import Hit, Item, Modality

__all__ = [
    "ImageMode",
    "MmragRetriever",
    "create_mmrag_tool",
    "format_documents",
    "hit_to_document",
]

logger = logging.getLogger(__name__)

#: How a Document carries its page image: not at all, inline as base64, or as the asset's URI.
ImageMode = Literal["none", "base64", "uri"]

_IMAGE_MODES = ("none", "base64", "uri")
_FILTER_KEYS = ("source", "modality", "pages", "metadata")
_MODALITY_LABELS = {
    Modality.PDF_PAGE: "PDF page",
    Modality.IMAGE: "Image",
    Modality.VIDEO_FRAME: "Video frame",
    Modality.TEXT: "Text",
}
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg"}
_EXTENSION_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}

DEFAULT_TOOL_NAME = "search_documents"
DEFAULT_TOOL_DESCRIPTION = (
    "Search the indexed documents (PDF pages, images and video frames) for passages relevant "
    "to a query. Returns the best matches, each numbered with its citation (file and page, or "
    "video timestamp) followed by its text. Cite the numbers you use."
)

# One lock per pipeline: the embedder loads lazily and the embedded store is one folder, so
# searches through one pipeline (sync callers in threads, ainvoke's worker threads) run one at
# a time.
_LOCKS: weakref.WeakKeyDictionary[Pipeline, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _pipeline_lock(pipeline: Pipeline) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(pipeline)
        if lock is None:
            lock = _LOCKS[pipeline] = threading.Lock()
        return lock


# -- hits as Documents ---------------------------------------------------------------------------


def _stand_in(modality: str, citation: str) -> str:
    """The ``page_content`` of an item with no text: what it is and where it is."""
    try:
        label = _MODALITY_LABELS[Modality(modality)]
    except ValueError:
        label = str(modality)
    return f"{label}: {citation}"


def _image_bytes(image: Any, format: str | None) -> tuple[bytes, str]:
    """Encode a stored page image in its own format (PNG unless it was stored as JPEG)."""
    fmt = format if format in _MIME else "PNG"
    buffer = io.BytesIO()
    if fmt == "JPEG":
        rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
        rgb.save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue(), _MIME[fmt]


def hit_to_document(
    hit: Hit,
    *,
    assets: Any = None,
    image: ImageMode = "none",
    include_stage_scores: bool = True,
) -> Document:
    """One retrieved :class:`~mmrag.types.Hit` as a LangChain ``Document``.

    ``assets`` (an :class:`~mmrag.store.assets.AssetStore`) is needed for ``image="base64"``
    (the stored page image, PNG or JPEG, base64-encoded in ``image_base64``) and ``image="uri"``
    (its URL in ``image_uri``); both set ``image_mime``. A hit whose image is not stored gets
    neither key (and a warning in the log).

    Example:
        >>> from mmrag.types import Hit, Item
        >>> item = Item(source="a.pdf", source_sha256="ab" * 32, modality="pdf_page", page=2,
        ...             text="Revenue grew 12%.")
        >>> doc = hit_to_document(Hit(id=item.id, score=0.8, item=item))
        >>> doc.page_content, doc.metadata["citation"], doc.metadata["page"]
        ('Revenue grew 12%.', 'a.pdf p.2', 2)
    """
    if image not in _IMAGE_MODES:
        raise ConfigError(f"image must be one of {', '.join(_IMAGE_MODES)}; got {image!r}")
    item: Item = hit.item
    citation = hit.citation()
    text = (item.text or "").strip()
    metadata: dict[str, Any] = {
        "id": hit.id,
        "source": item.source,
        "modality": item.modality.value,
        "page": item.page,
        "page_label": item.page_label,
        "frame_index": item.frame_index,
        "timestamp_s": item.timestamp_s,
        "width": item.width,
        "height": item.height,
        "citation": citation,
        "score": float(hit.score),
    }
    if include_stage_scores:
        metadata["stage_scores"] = {k: float(v) for k, v in hit.stage_scores.items()}
    if item.metadata:
        metadata["item_metadata"] = dict(item.metadata)
    if image != "none":
        if assets is None:
            raise ConfigError(f"image={image!r} needs the asset store (pass assets=...)")
        metadata.update(_image_metadata(hit.id, citation, assets, image))
    return Document(
        id=hit.id,
        page_content=text or _stand_in(item.modality.value, citation),
        metadata=metadata,
    )


def _image_metadata(item_id: str, citation: str, assets: Any, image: ImageMode) -> dict[str, str]:
    if image == "uri":
        if not assets.exists(item_id):
            logger.warning("no page image stored for %s (item %s)", citation, item_id)
            return {}
        url = str(assets.url(item_id))
        extension = url.rsplit(".", 1)[-1].lower()
        return {"image_uri": url, "image_mime": _EXTENSION_MIME.get(extension, "image/png")}
    try:
        stored = assets.get(item_id)
    except AssetNotFoundError:
        logger.warning("no page image stored for %s (item %s)", citation, item_id)
        return {}
    data, mime = _image_bytes(stored, getattr(stored, "format", None))
    return {"image_base64": base64.b64encode(data).decode("ascii"), "image_mime": mime}


# -- the retriever -------------------------------------------------------------------------------


def _widen(plan: Plan, k: int) -> Plan:
    """``plan`` with every stage keeping at least ``k`` candidates (so it can return ``k``)."""

    def stage(s: Stage) -> Stage:
        if s.fuse:
            members = tuple(stage(m) for m in s.fuse)
            return Stage(using=s.using, limit=max(m.limit for m in members), fuse=members)
        return Stage(using=s.using, limit=max(s.limit, k))

    return Plan(stages=tuple(stage(s) for s in plan.stages))


def _coerce_filter(value: Any) -> SearchFilter | None:
    if value is None or isinstance(value, SearchFilter):
        return value
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(_FILTER_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown filter key(s) {', '.join(map(repr, unknown))}; allowed: "
                f"{', '.join(_FILTER_KEYS)} (or pass a SearchFilter)"
            )
        pages = value.get("pages")
        return SearchFilter.build(
            source=value.get("source"),
            modality=value.get("modality"),
            pages=tuple(pages) if pages is not None else None,  # type: ignore[arg-type]
            metadata=value.get("metadata"),
        )
    raise ConfigError(
        f"filter must be a SearchFilter or a dict with keys {', '.join(_FILTER_KEYS)}; "
        f"got {type(value).__name__}"
    )


class MmragRetriever(BaseRetriever):
    """A LangChain retriever over an mmrag :class:`~mmrag.pipeline.pipeline.Pipeline`.

    Each ``Document`` is one page, image or video frame (see :func:`hit_to_document` for its
    content and metadata). ``k`` (default: the config's ``retrieval.top_k``), ``plan``,
    ``filter``, ``image`` and ``rerank`` can also be given per call, e.g.
    ``invoke(query, k=3)``. When ``k``
    is larger than the plan's last stage keeps, every stage is widened to at least ``k``, so the
    retriever returns ``k`` documents whenever the index has them.

    ``filter`` is a :class:`~mmrag.store.records.SearchFilter` or a dict with the keys of
    ``SearchFilter.build``: ``source``, ``modality``, ``pages`` (an inclusive ``(first, last)``
    range; either end may be ``None``), ``metadata``.

    The retriever does not own its pipeline: close it with ``retriever.pipeline.close()`` (or
    use the pipeline as a context manager) when done.

    Example:
        >>> from mmrag.integrations.langchain import MmragRetriever               # doctest: +SKIP
        >>> from mmrag.pipeline.pipeline import Pipeline                        # doctest: +SKIP
        >>> pipe = Pipeline.from_config("mmrag.toml")                           # doctest: +SKIP
        >>> retriever = MmragRetriever(pipeline=pipe, k=4, image="base64",
        ...                            filter={"modality": ["pdf_page", "image"]})  # doctest: +SKIP
        >>> docs = retriever.invoke("solar panel efficiency", k=2)              # doctest: +SKIP
        >>> docs[0].metadata["citation"], docs[0].metadata["image_mime"]        # doctest: +SKIP
        ('acme_solar_annual_report_2024.pdf p.3', 'image/png')
        >>> docs = await retriever.ainvoke("rooftop installation")              # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Pipeline
    """The pipeline whose index is searched."""
    k: int | None = Field(default=None, ge=1)
    """How many documents to return (default: the pipeline config's ``retrieval.top_k``)."""
    plan: str | None = None
    """The retrieval plan, e.g. ``"global@200 -> rows@50 -> full@10"`` (default: the config's)."""
    filter: SearchFilter | None = None
    """Restrict results by source, modality, page range or user metadata."""
    image: ImageMode = "none"
    """Attach the page image: ``"none"``, ``"base64"`` (inline) or ``"uri"`` (the asset's URL)."""
    include_stage_scores: bool = True
    """Put the score of every retrieval stage in ``metadata["stage_scores"]``."""
    rerank: bool = True
    """Apply the pipeline's reranker, when its config has one."""

    @field_validator("plan")
    @classmethod
    def _valid_plan(cls, value: str | None) -> str | None:
        return None if value is None else str(parse_plan(value))

    @field_validator("filter", mode="before")
    @classmethod
    def _valid_filter(cls, value: Any) -> SearchFilter | None:
        return _coerce_filter(value)

    @classmethod
    def from_config(
        cls,
        config: PipelineConfig | Mapping[str, Any] | str | os.PathLike[str],
        **fields: Any,
    ) -> MmragRetriever:
        """A retriever over a new pipeline built from a config object, dict, or TOML/JSON file.

        ``fields`` are the retriever's own (``k``, ``plan``, ``filter``, ``image`` …).

        Example:
            >>> retriever = MmragRetriever.from_config({"store": {"path": "/tmp/idx"}}, k=3)
            >>> retriever.k, retriever.pipeline.config.store.path
            (3, '/tmp/idx')
        """
        if isinstance(config, Mapping):
            config = PipelineConfig.from_dict(config)
        return cls(pipeline=Pipeline.from_config(config), **fields)

    # -- search ----------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        plan: str | None = None,
        filter: SearchFilter | Mapping[str, Any] | None = None,
        image: ImageMode | None = None,
        rerank: bool | None = None,
    ) -> list[Document]:
        """The documents for ``query``; keyword arguments override the retriever's fields.

        This is what ``invoke`` runs (without LangChain's callbacks and tracing).
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"the query must be a non-empty string; got {query!r}")
        k = k if k is not None else (self.k or self.pipeline.config.retrieval.top_k)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")
        image = image if image is not None else self.image
        if image not in _IMAGE_MODES:
            raise ConfigError(f"image must be one of {', '.join(_IMAGE_MODES)}; got {image!r}")
        where = _coerce_filter(filter) if filter is not None else self.filter
        with _pipeline_lock(self.pipeline):
            resolved = self.pipeline.plan(plan if plan is not None else self.plan)
            if k > resolved.limit:
                resolved = _widen(resolved, k)
            hits = self.pipeline.search(
                query,
                k=k,
                plan=str(resolved),
                filter=where,
                rerank=self.rerank if rerank is None else rerank,
            )
            assets = self.pipeline.assets if image != "none" else None
            return [
                hit_to_document(
                    hit,
                    assets=assets,
                    image=image,
                    include_stage_scores=self.include_stage_scores,
                )
                for hit in hits
            ]

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        plan: str | None = None,
        filter: SearchFilter | Mapping[str, Any] | None = None,
        image: ImageMode | None = None,
        rerank: bool | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        _check_kwargs(kwargs)
        return self.search(query, k=k, plan=plan, filter=filter, image=image, rerank=rerank)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        plan: str | None = None,
        filter: SearchFilter | Mapping[str, Any] | None = None,
        image: ImageMode | None = None,
        rerank: bool | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        _check_kwargs(kwargs)
        # The store and the embedder are synchronous: search in a worker thread, so the event
        # loop stays free while the query is embedded and the plan runs.
        return await run_in_executor(
            None, self.search, query, k=k, plan=plan, filter=filter, image=image, rerank=rerank
        )

    # -- as a tool -------------------------------------------------------------------------------

    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
        response_format: Literal["content", "content_and_artifact"] = "content_and_artifact",
        max_chars: int | None = 2000,
    ) -> BaseTool:
        """This retriever as an agent tool (see :func:`create_mmrag_tool`).

        The tool's input is fixed (one ``query`` string), so ``args_schema`` and ``arg_types``
        (accepted for compatibility with ``Runnable.as_tool``) must be left unset.

        Example:
            >>> tool = retriever.as_tool(name="search_reports")                 # doctest: +SKIP
            >>> print(tool.invoke({"query": "revenue 2024"}))                   # doctest: +SKIP
            [1] acme_solar_annual_report_2024.pdf p.2 (score 17.31)
            Revenue grew 23% ...
        """
        if args_schema is not None or arg_types is not None:
            raise ValueError(
                "the mmrag retriever tool takes one 'query' string; args_schema and arg_types "
                "cannot be changed (use create_mmrag_tool with name/description instead)"
            )
        return create_mmrag_tool(
            self,
            name=name or DEFAULT_TOOL_NAME,
            description=description or DEFAULT_TOOL_DESCRIPTION,
            response_format=response_format,
            max_chars=max_chars,
        )


def _check_kwargs(kwargs: Mapping[str, Any]) -> None:
    unknown = sorted(set(kwargs) - {"verbose"})  # LangChain passes `verbose` through
    if unknown:
        raise TypeError(
            f"MmragRetriever got unexpected argument(s) {', '.join(unknown)}; per-call "
            "arguments are k, plan, filter, image and rerank"
        )


# -- the tool ------------------------------------------------------------------------------------


class _ToolInput(BaseModel):
    query: str = Field(
        description="What to look for: a question or keywords describing the page or scene."
    )


def format_documents(documents: Sequence[Document], *, max_chars: int | None = 2000) -> str:
    """The tool's text: each document numbered, with its citation and score, then its text.

    ``max_chars`` cuts each document's text (``None``: no limit). Documents without text show
    a note instead of repeating their citation.

    Example:
        >>> from langchain_core.documents import Document
        >>> doc = Document(page_content="Revenue grew 12%.",
        ...                metadata={"citation": "a.pdf p.2", "score": 0.81})
        >>> print(format_documents([doc]))
        [1] a.pdf p.2 (score 0.810)
        Revenue grew 12%.
    """
    if not documents:
        return "No matching pages, images or video frames were found."
    blocks = []
    for number, doc in enumerate(documents, 1):
        meta = doc.metadata
        citation = meta.get("citation") or meta.get("source") or "unknown source"
        score = meta.get("score")
        header = f"[{number}] {citation}" + (f" (score {score:.3f})" if score is not None else "")
        text = doc.page_content
        if text == _stand_in(str(meta.get("modality", "")), citation):
            text = "(no text: visual content only)"
        elif max_chars is not None and len(text) > max_chars:
            text = text[:max_chars].rstrip() + " …"
        blocks.append(f"{header}\n{text}")
    return "\n\n".join(blocks)


def create_mmrag_tool(
    retriever: MmragRetriever,
    *,
    name: str = DEFAULT_TOOL_NAME,
    description: str = DEFAULT_TOOL_DESCRIPTION,
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact",
    max_chars: int | None = 2000,
) -> BaseTool:
    """A tool that searches with ``retriever`` and answers with cited text.

    The content is :func:`format_documents` of the hits (``[1] report.pdf p.3 (score …)`` then
    the page text). With ``response_format="content_and_artifact"`` the ``ToolMessage`` also
    carries the ``Document`` s (with their images, if the retriever attaches them) as its
    ``artifact``.

    Example:
        >>> tool = create_mmrag_tool(retriever, name="search_reports")          # doctest: +SKIP
        >>> message = tool.invoke({"type": "tool_call", "id": "1", "name": "search_reports",
        ...                        "args": {"query": "revenue 2024"}})           # doctest: +SKIP
        >>> message.artifact[0].metadata["citation"]                            # doctest: +SKIP
        'acme_solar_annual_report_2024.pdf p.2'
    """
    if response_format not in ("content", "content_and_artifact"):
        raise ValueError(
            f"response_format must be 'content' or 'content_and_artifact'; got {response_format!r}"
        )

    def search(query: str, callbacks: Callbacks = None) -> str | tuple[str, list[Document]]:
        docs = retriever.invoke(query, config={"callbacks": callbacks})
        content = format_documents(docs, max_chars=max_chars)
        return (content, docs) if response_format == "content_and_artifact" else content

    async def asearch(query: str, callbacks: Callbacks = None) -> str | tuple[str, list[Document]]:
        docs = await retriever.ainvoke(query, config={"callbacks": callbacks})
        content = format_documents(docs, max_chars=max_chars)
        return (content, docs) if response_format == "content_and_artifact" else content

    return StructuredTool(
        name=name,
        description=description,
        func=search,
        coroutine=asearch,
        args_schema=_ToolInput,
        response_format=response_format,
    )
