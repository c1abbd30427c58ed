"""The retriever: :class:`MmragRetriever`, a LangChain ``BaseRetriever`` over a
:class:`~mmrag.pipeline.pipeline.Pipeline` (sync, and async through a worker thread), with
per-call ``k``, ``plan``, ``filter``, ``image`` and ``rerank``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError
from mmrag.integrations.langchain.documents import ImageMode, check_image_mode, hit_to_document
from mmrag.integrations.langchain.tool import (
    DEFAULT_TOOL_DESCRIPTION,
    DEFAULT_TOOL_NAME,
    create_mmrag_tool,
)
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.plan import Plan, Stage, parse_plan
from mmrag.store.records import SearchFilter
from mmrag.types import IndexReport

__all__ = ["MmragRetriever"]

_FILTER_KEYS = ("source", "modality", "pages", "metadata", "ranges", "where")


def _widen(plan: Plan, k: int) -> Plan:
    """``plan`` with every stage keeping at least ``k`` candidates (so it can return ``k``)."""

    def stage(s: Stage) -> Stage:
        if s.fuse:
            members = tuple(stage(m) for m in s.fuse)
            return Stage(using=s.using, limit=max(m.limit for m in members), fuse=members)
        return Stage(using=s.using, limit=max(s.limit, k))

    return Plan(
        stages=tuple(stage(s) for s in plan.stages), rerank=tuple(stage(s) for s in plan.rerank)
    )


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
        ranges = {k: tuple(v) for k, v in (value.get("ranges") or {}).items()}
        built = SearchFilter.build(
            source=value.get("source"),
            modality=value.get("modality"),
            pages=tuple(pages) if pages is not None else None,  # type: ignore[arg-type]
            metadata=value.get("metadata"),
            ranges=ranges,  # type: ignore[arg-type]
        )
        where = value.get("where") or []
        return SearchFilter.parse([where] if isinstance(where, str) else where, base=built)
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
    range; either end may be ``None``), ``metadata`` (your own fields: ``{"dept": "hr"}``; a
    list matches any of its values), ``ranges`` (``{"year": (2020, None)}``), and ``where``
    (``["dept=hr", "year>=2020"]``, as ``mmrag search --filter`` takes them). As LangChain's
    ``search_kwargs``: ``retriever.invoke(q, filter={"metadata": {"dept": "hr"}})``.
    ``tenant`` restricts every search to one tenant's documents (and :meth:`add_sources`
    indexes for it). Each document's metadata carries the item's own fields (see
    :func:`hit_to_document`).

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
    tenant: str | None = None
    """Only this tenant's documents are searched (and :meth:`add_sources` indexes for it)."""

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
        check_image_mode(image)
        where = _coerce_filter(filter) if filter is not None else self.filter
        if self.tenant is not None:
            where = (where or SearchFilter()).for_tenant(self.tenant)
        with self.pipeline.lock:  # one call at a time per pipeline (Pipeline.lock)
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

    def add_sources(
        self,
        sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        metadata: Mapping[str, Any] | Callable[[str], Mapping[str, Any] | None] | None = None,
        force: bool = False,
    ) -> IndexReport:
        """Index files, folders or globs into the retriever's pipeline, with your own fields
        (``metadata``: a dict, or a function of each file's path; ``<file>.meta.json``
        sidecars too) and the retriever's ``tenant``; the fields come back in each
        document's metadata and can be filtered on.

        Example:
            >>> retriever.add_sources(["reports/"], metadata={"dept": "finance"})  # doctest: +SKIP
            >>> retriever.invoke("revenue", filter={"where": ["dept=finance"]})  # doctest: +SKIP
        """
        with self.pipeline.lock:
            return self.pipeline.index(sources, metadata=metadata, tenant=self.tenant, force=force)

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
