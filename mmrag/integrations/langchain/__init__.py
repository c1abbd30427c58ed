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

:class:`MmragVectorStore` is a LangChain ``VectorStore`` over a pipeline (``add_documents``,
``similarity_search``, ``delete``, ``get_by_ids``, ``as_retriever``): text documents are
rendered to pages and embedded by the pipeline's multimodal embedder, or, given a LangChain
``embedding``, embedded by it (:class:`LangChainEmbedder`); it passes LangChain's standard
vector-store tests.

Modules: :mod:`~mmrag.integrations.langchain.retriever` (:class:`MmragRetriever`),
:mod:`~mmrag.integrations.langchain.vectorstore` (:class:`MmragVectorStore`),
:mod:`~mmrag.integrations.langchain.pages` (``Document`` s as rendered pages),
:mod:`~mmrag.integrations.langchain.embeddings` (:class:`LangChainEmbedder`),
:mod:`~mmrag.integrations.langchain.documents` (hits as ``Document`` s, with their page images)
and :mod:`~mmrag.integrations.langchain.tool` (the agent tool and its cited text).

This package imports LangChain; ``import mmrag`` never imports it.

Example:
    >>> from mmrag.integrations.langchain import MmragRetriever               # doctest: +SKIP
    >>> retriever = MmragRetriever.from_config("mmrag.toml", k=3, image="uri")  # doctest: +SKIP
    >>> for doc in retriever.invoke("How much did revenue grow in 2024?"):   # doctest: +SKIP
    ...     print(doc.metadata["citation"], doc.metadata["score"], doc.metadata["image_uri"])
    >>> tool = retriever.as_tool(name="search_reports")                      # doctest: +SKIP
"""

from mmrag.integrations.langchain.documents import ImageMode, hit_to_document
from mmrag.integrations.langchain.embeddings import LangChainEmbedder
from mmrag.integrations.langchain.retriever import MmragRetriever
from mmrag.integrations.langchain.tool import (
    DEFAULT_TOOL_DESCRIPTION,
    DEFAULT_TOOL_NAME,
    create_mmrag_tool,
    format_documents,
)
from mmrag.integrations.langchain.vectorstore import MmragVectorStore

__all__ = [
    "DEFAULT_TOOL_DESCRIPTION",
    "DEFAULT_TOOL_NAME",
    "ImageMode",
    "LangChainEmbedder",
    "MmragRetriever",
    "MmragVectorStore",
    "create_mmrag_tool",
    "format_documents",
    "hit_to_document",
]
