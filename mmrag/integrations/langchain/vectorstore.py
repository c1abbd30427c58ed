"""The vector store: :class:`MmragVectorStore`, a LangChain ``VectorStore`` over a
:class:`~mmrag.pipeline.pipeline.Pipeline`.

Two vector spaces, chosen at construction:

- **mmrag's** (``MmragVectorStore(pipeline)`` or ``MmragVectorStore(config=...)``): each text
  document is rendered to pages and embedded as images by the pipeline's multimodal
  embedder, and searched with its retrieval plan (and reranker), next to the PDF pages, images
  and video frames indexed from files (:meth:`MmragVectorStore.add_sources`).
- **LangChain's** (``MmragVectorStore(embedding=my_embeddings)``, LangChain's convention): a
  document's text is embedded by that model (:class:`LangChainEmbedder`), one vector per
  document, cosine similarity; ``similarity_search_by_vector`` and relevance scores work.

Either way the store is an mmrag index: page images in the asset store, filters, tenants,
``mmrag search`` / ``mmrag sources`` on the same folder.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError, MmragError
from mmrag.integrations.langchain.documents import ImageMode, check_image_mode, hit_to_document
from mmrag.integrations.langchain.embeddings import LangChainEmbedder
from mmrag.integrations.langchain.pages import (
    DETAILS_KEY,
    document_id_of,
    document_items,
    document_source,
    split_metadata,
    stored_metadata,
)
from mmrag.integrations.langchain.retriever import _coerce_filter, _widen
from mmrag.pipeline.indexing import index_items
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.contract import PENDING_FIELD
from mmrag.store.plan import parse_plan
from mmrag.store.records import Record, SearchFilter
from mmrag.types import Embedding, Hit, IndexReport, Item

__all__ = ["MmragVectorStore"]

_SEARCH_OPTIONS = ("plan", "rerank")
_FETCH_ROUNDS = 4  # widen the search this many times (x4 each) to find k distinct documents


class MmragVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over an mmrag :class:`~mmrag.pipeline.pipeline.Pipeline`.

    **Ids.** A document added here is identified by its LangChain id (``Document.id``, the
    ``ids=`` argument, or a new UUID): it is stored as the source ``langchain://<id>``, one
    point per rendered page (one per document with a LangChain ``embedding``), and
    ``delete(ids)`` / ``get_by_ids(ids)`` take that id. Adding a document again with the same id
    replaces it (unchanged, it is skipped). A page indexed from a file (:meth:`add_sources`,
    ``mmrag index``) is a document of its own whose id is its point id.

    **What comes back.** A document added here comes back exactly as added: its text and its
    metadata (JSON-serialisable values; tuples come back as lists), nothing else. Its metadata
    fields whose values are strings, numbers, booleans or lists of them (and whose keys are
    identifiers) are also stored as filterable fields. A page from a file comes back as
    :class:`~mmrag.integrations.langchain.MmragRetriever` returns it (its text, and metadata
    with ``source``, ``page``, ``citation`` … and, with ``image``, the page image).

    **Search.** ``similarity_search(query, k, filter=...)`` runs the pipeline's search (its plan,
    reranker and the store's ``tenant``), one document per result (its best page); ``filter``
    is what the retriever takes (a :class:`~mmrag.store.records.SearchFilter`, or a dict with
    ``metadata``, ``where``, ``source``, ``modality``, ``pages``, ``ranges``). Scores: higher is
    better (cosine similarity with a LangChain ``embedding``, MaxSim otherwise). Every call holds
    the pipeline's lock (:attr:`Pipeline.lock <mmrag.pipeline.pipeline.Pipeline.lock>`); the
    async methods run the sync ones in a worker thread.

    Example:
        >>> from langchain_core.documents import Document
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from mmrag.integrations.langchain import MmragVectorStore
        >>> store = MmragVectorStore(embedding=DeterministicFakeEmbedding(size=8),
        ...                          config={"store": {"path": "/tmp/lc_idx"}})  # doctest: +SKIP
        >>> store.add_documents([Document("Revenue grew 12%.", metadata={"dept": "finance"})],
        ...                     ids=["r1"])                                       # doctest: +SKIP
        ['r1']
        >>> store.similarity_search("revenue", k=1, filter={"where": ["dept=finance"]})
        ...                                                                      # doctest: +SKIP
        [Document(id='r1', metadata={'dept': 'finance'}, page_content='Revenue grew 12%.')]
        >>> retriever = store.as_retriever(search_kwargs={"k": 3})              # doctest: +SKIP
    """

    def __init__(
        self,
        pipeline: Pipeline | None = None,
        *,
        embedding: Embeddings | None = None,
        config: PipelineConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        tenant: str | None = None,
        plan: str | None = None,
        rerank: bool = True,
        image: ImageMode = "none",
    ) -> None:
        if pipeline is not None and (embedding is not None or config is not None):
            raise ConfigError(
                "pass either a pipeline, or embedding= and/or config= to build one (to use a "
                "LangChain embedding with your own pipeline: "
                "Pipeline(config, embedder=LangChainEmbedder(embedding)))"
            )
        if pipeline is None:
            if isinstance(config, Mapping):
                config = PipelineConfig.from_dict(config)
            elif config is not None and not isinstance(config, PipelineConfig):
                config = PipelineConfig.load(config)
            embedder = LangChainEmbedder(embedding) if embedding is not None else None
            pipeline = Pipeline(config, embedder=embedder)  # type: ignore[arg-type]
        check_image_mode(image)
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ConfigError(f"tenant must be a non-empty string, got {tenant!r}")
        self.pipeline = pipeline
        self.tenant = tenant
        self.plan = None if plan is None else str(parse_plan(plan))
        self.rerank = rerank
        self.image: ImageMode = image

    # -- what the store is ------------------------------------------------------------------------

    @property
    def embeddings(self) -> Embeddings | None:
        """The LangChain embedding model of a store built with ``embedding=``; ``None`` when the
        pipeline's own (multimodal) embedder embeds: its space is not a LangChain one."""
        embedder = self.pipeline.embedder
        return embedder.embeddings if isinstance(embedder, LangChainEmbedder) else None

    def close(self) -> None:
        """Close the pipeline's store (releases the embedded folder's lock)."""
        self.pipeline.close()

    def __enter__(self) -> MmragVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- adding -----------------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add texts (and their metadata) as documents; returns their ids."""
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(metadatas)} metadatas")
        documents = [
            Document(page_content=text, metadata=dict(metadatas[i]) if metadatas else {})
            for i, text in enumerate(texts)
        ]
        return self.add_documents(documents, ids=ids, **kwargs)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Render, embed and store ``documents``; returns their ids (``ids=``, else each
        ``Document.id``, else a new UUID). A document whose id is stored already is replaced
        (skipped when unchanged). The documents themselves are not modified."""
        ids = kwargs.pop("ids", None)
        _check_options(kwargs, ())
        documents = list(documents)
        if ids is None:
            ids = [doc.id or str(uuid.uuid4()) for doc in documents]
        ids = list(ids)
        if len(ids) != len(documents):
            raise ValueError(f"got {len(documents)} documents but {len(ids)} ids")
        for doc_id in ids:
            if not isinstance(doc_id, str) or not doc_id:
                raise ValueError(f"document ids must be non-empty strings; got {doc_id!r}")
        ready = [doc.model_copy(update={"id": i}) for doc, i in zip(documents, ids, strict=True)]
        if not ready:
            return []
        for doc in ready:  # reject bad metadata before anything is written
            split_metadata(doc.metadata, f"document {doc.id!r}")
        with self.pipeline.lock:
            report = self._index(ready)
        if report.failed:
            failures = "; ".join(f"{f.source}: {f.reason}" for f in report.failed)
            raise MmragError(
                f"{len(report.failed)} of {len(ready)} documents could not be indexed (the "
                f"others are stored): {failures}"
            )
        return ids

    def _index(self, documents: Sequence[Document]) -> IndexReport:
        pipe = self.pipeline
        ingest = pipe.config.ingest
        text_space = isinstance(pipe.embedder, LangChainEmbedder)

        def items() -> Iterator[Item]:  # consumed (laid out, rendered) by the job's ingest thread
            for doc in documents:
                yield from document_items(
                    doc,
                    tenant=self.tenant,
                    dpi=ingest.dpi,
                    max_side=ingest.max_side,
                    first_page_only=text_space,
                )

        return index_items(
            items(),
            embedder=pipe.embedder,
            store=pipe.store,
            pooler=pipe.pooler,
            assets=pipe.assets,
        )

    def add_sources(
        self,
        sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        metadata: Mapping[str, Any] | Callable[[str], Mapping[str, Any] | None] | None = None,
        force: bool = False,
    ) -> IndexReport:
        """Index files, folders and globs (PDF pages, images, video frames) into the same
        index, with your own ``metadata`` and the store's ``tenant``; each page is then a
        document of the store (its id: its point id)."""
        with self.pipeline.lock:
            return self.pipeline.index(sources, metadata=metadata, tenant=self.tenant, force=force)

    # -- reading and deleting ----------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents of ``ids`` (in that order; ids not stored are left out)."""
        with self.pipeline.lock:
            found = self._find(ids, first_pages_only=True)
            docs = {i: self._document(records[0]) for i, records in found.items() if records}
        return [docs[i] for i in dict.fromkeys(ids) if i in docs]

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete the documents of ``ids`` (every page, and their page images); ids not stored
        are ignored. ``ids`` is required (``pipeline.recreate()`` empties the whole index)."""
        _check_options(kwargs, ())
        if ids is None:
            raise ValueError(
                "delete needs the ids of the documents to delete (to empty the whole index: "
                "store.pipeline.recreate())"
            )
        with self.pipeline.lock:
            found = self._find(ids, first_pages_only=False, pending=True)
            points = sorted({r.id for records in found.values() for r in records})
            if points:
                self.pipeline.store.delete(points)
                self.pipeline.assets.delete(points)
        return True

    def _find(
        self, ids: Sequence[str], *, first_pages_only: bool, pending: bool = False
    ) -> dict[str, list[Record]]:
        """The stored records of each id: a document added here (its pages, all versions) or,
        for an id that is a point id, that point (from a file)."""
        store = self.pipeline.store
        wanted = {document_source(i): i for i in ids}
        out: dict[str, list[Record]] = {i: [] for i in ids}
        if wanted:
            where = SearchFilter(
                sources=tuple(wanted), page_range=(1, 1) if first_pages_only else None
            ).for_tenant(self.tenant)
            for record in store.iter_records(where):
                if pending or not record.payload.get(PENDING_FIELD):
                    out[wanted[record.payload["source"]]].append(record)
        points = [i for i in ids if not out[i] and _is_uuid(i)]
        for record in store.retrieve(points) if points else []:
            payload = record.payload
            if document_id_of(str(payload.get("source", ""))) is not None:
                continue  # a page of a document added here: its id is the document's
            if payload.get("tenant") != self.tenant and self.tenant is not None:
                continue
            if pending or not payload.get(PENDING_FIELD):
                out[record.id].append(record)
        return out

    # -- search -----------------------------------------------------------------------------------

    def similarity_search(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents most similar to ``query`` (see the class for ``filter``;
        ``plan`` and ``rerank`` override the store's)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """:meth:`similarity_search` with each document's score (higher is better)."""
        _check_options(kwargs, _SEARCH_OPTIONS)
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"the query must be a non-empty string; got {query!r}")
        where = self._where(filter)
        plan = kwargs.get("plan", self.plan)
        rerank = bool(kwargs.get("rerank", self.rerank))
        pipe = self.pipeline

        def search(n: int) -> list[Hit]:
            resolved = pipe.plan(plan)
            if n > resolved.limit:
                resolved = _widen(resolved, n)
            return pipe.search(query, k=n, plan=str(resolved), filter=where, rerank=rerank)

        with pipe.lock:
            return self._distinct(search, k)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to a query vector of the store's space (a LangChain
        ``embedding``'s ``embed_query``, or a single-vector mmrag embedder's query vector).

        A multi-vector (ColPali-style) index has no single query vector: a query is a matrix
        of token vectors scored by MaxSim, so this raises ``NotImplementedError`` there.
        """
        _check_options(kwargs, ())
        pipe = self.pipeline
        if pipe.embedder.kind != "single":
            raise NotImplementedError(
                "this index is embedded by a multi-vector (late-interaction) model: a query is a "
                "matrix of token vectors scored by MaxSim, not one list of floats; search with "
                "text (similarity_search), or build the store with a LangChain embedding"
            )
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        where = self._where(filter)
        from mmrag.pipeline.retrieval import Retriever

        def search(n: int) -> list[Hit]:
            retriever = Retriever(
                pipe.store,
                f"dense@{n}",
                top_k=n,
                assets=pipe.assets,
                hnsw_ef=pipe.config.retrieval.hnsw_ef,
            )
            canonical = where.canonical() if where is not None else None
            return retriever.search(Embedding(dense=vector), filter=canonical)

        with pipe.lock:
            if vector.shape[0] != pipe.store.schema.dim:
                raise ValueError(
                    f"the vector has {vector.shape[0]} dimensions; this index's have "
                    f"{pipe.store.schema.dim}"
                )
            return [doc for doc, _ in self._distinct(search, k)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        if self.pipeline.embedder.kind == "single":
            return lambda score: min(1.0, max(0.0, (1.0 + score) / 2.0))  # cosine → [0, 1]
        raise NotImplementedError(
            "relevance scores in [0, 1] need a bounded similarity; this index scores by MaxSim "
            "(a sum over query tokens, unbounded): use similarity_search_with_score"
        )

    def _where(self, filter: Any) -> SearchFilter | None:
        where = _coerce_filter(filter)
        if self.tenant is not None:
            where = (where or SearchFilter()).for_tenant(self.tenant)
        return where

    def _distinct(self, search: Callable[[int], list[Hit]], k: int) -> list[tuple[Document, float]]:
        """The best ``k`` distinct documents: a document's pages count once (its best)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer; got {k!r}")
        fetch = k
        for _ in range(_FETCH_ROUNDS):
            hits = search(fetch)
            found = self._documents(hits)
            if len(found) >= k or len(hits) < fetch:
                break
            fetch *= 4
        return found[:k]

    def _documents(self, hits: Sequence[Hit]) -> list[tuple[Document, float]]:
        best: dict[str, Hit] = {}
        for hit in hits:  # best first: keep each document's first hit
            doc_id = _added_id(hit.item)
            best.setdefault(doc_id if doc_id is not None else hit.id, hit)
        later = {  # a document's text is on its first page
            key: dataclasses.replace(hit.item, page=1).id
            for key, hit in best.items()
            if _added_id(hit.item) is not None and hit.item.page != 1
        }
        firsts = {r.id: r for r in self.pipeline.store.retrieve(list(later.values()))}
        out = []
        for key, hit in best.items():
            if key in later:
                record = firsts.get(later[key])
                if record is None:
                    continue  # replaced or deleted meanwhile
                doc = self._document(record)
            else:
                doc = self._document(Record(hit.id, hit.item.to_payload()), hit)
            out.append((doc, float(hit.score)))
        return out

    def _document(self, record: Record, hit: Hit | None = None) -> Document:
        item = hit.item if hit is not None else Item.from_payload(record.payload)
        doc_id = _added_id(item)
        if doc_id is not None:
            return Document(id=doc_id, page_content=item.text or "", metadata=stored_metadata(item))
        scored = hit or Hit(id=record.id, score=0.0, item=item)
        assets = self.pipeline.assets if self.image != "none" else None
        doc = hit_to_document(
            scored, assets=assets, image=self.image, include_stage_scores=hit is not None
        )
        if hit is None:
            doc.metadata.pop("score", None)
        return doc

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MmragVectorStore:
        """A store (``kwargs``: the constructor's: ``pipeline``, ``config``, ``tenant`` …) with
        ``texts`` added; ``embedding=None`` embeds them as rendered pages with the pipeline's
        embedder."""
        store = cls(embedding=embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> MmragVectorStore:
        """A store with ``documents`` added (see :meth:`from_texts`)."""
        ids = kwargs.pop("ids", None)
        store = cls(embedding=embedding, **kwargs)
        store.add_documents(documents, ids=ids)
        return store


def _added_id(item: Item) -> str | None:
    """The LangChain id of an item of a document added through the store, else ``None``."""
    if not (item.details or {}).get(DETAILS_KEY):
        return None
    return document_id_of(item.source)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _check_options(kwargs: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        extra = f"; it takes {', '.join(allowed)}" if allowed else ""
        raise TypeError(f"MmragVectorStore got unexpected argument(s) {', '.join(unknown)}{extra}")
