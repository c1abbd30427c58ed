"""The retrieval tool for agents: :func:`create_mmrag_tool` wraps a retriever as a LangChain
tool whose output is the retrieved text with a numbered citation per document
(:func:`format_documents`), and optionally the ``Document`` s as the message's artifact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from langchain_core.callbacks import Callbacks
from langchain_core.documents import Document
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from mmrag.integrations.langchain.documents import stand_in

if TYPE_CHECKING:
    from mmrag.integrations.langchain.retriever import MmragRetriever

__all__ = [
    "DEFAULT_TOOL_DESCRIPTION",
    "DEFAULT_TOOL_NAME",
    "create_mmrag_tool",
    "format_documents",
]

DEFAULT_TOOL_NAME = "search_documents"
DEFAULT_TOOL_DESCRIPTION = (
    "Search the indexed documents (PDF pages, images and video frames) for passages relevant "
    "to a query. Returns the best matches, each numbered with its citation (file and page, or "
    "video timestamp) followed by its text. Cite the numbers you use."
)


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
        if text == stand_in(str(meta.get("modality", "")), citation):
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
