"""LangChain ``Document`` s as indexable :class:`~mmrag.types.Item` s.

A document's text is laid out on A4 pages as a plain-text file is
(:func:`~mmrag.pipeline.ingest.documents.render_text_pdf`) and each page is rendered on demand,
like a PDF page, at the ingest settings' ``dpi`` / ``max_side``. Its id becomes the source
``langchain://<id>`` (the id percent-encoded), so a document is one source: adding it again
with other content replaces it, and deleting it removes all its pages.

What comes back is what went in: page 1 carries the document's exact text (``Item.text``; later
pages their own text layer), the user's metadata is stored as filterable fields
(``Item.metadata``: the keys and values :func:`~mmrag.fields.check_metadata` accepts) and, when
that is not all of it (nested values, ``None``, other keys), also whole as JSON in
``Item.details`` (:data:`DETAILS_KEY`).

Example:
    >>> from langchain_core.documents import Document
    >>> from mmrag.integrations.langchain.pages import document_items, document_source
    >>> doc = Document(id="a1", page_content="Revenue grew 12%.", metadata={"dept": "finance"})
    >>> [item] = document_items(doc, dpi=36)
    >>> item.source, item.page, item.metadata, item.load_image().size
    ('langchain://a1', 1, {'dept': 'finance'}, (298, 421))
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from mmrag.fields import check_metadata
from mmrag.types import Item, Modality

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from PIL import Image

__all__ = [
    "DETAILS_KEY",
    "SCHEME",
    "document_id_of",
    "document_items",
    "document_source",
    "split_metadata",
    "stored_metadata",
]

#: The source scheme of documents added through the LangChain vector store.
SCHEME = "langchain://"
#: ``Item.details[DETAILS_KEY]``: ``{"id": <document id>}`` plus ``"metadata"`` (the JSON of
#: the whole metadata) when the filterable fields are not all of it.
DETAILS_KEY = "langchain_document"

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def document_source(doc_id: str) -> str:
    """The source of the document ``doc_id``: ``langchain://`` + the id percent-encoded.

    Example:
        >>> document_source("report/2024 v2")
        'langchain://report%2F2024%20v2'
    """
    return SCHEME + quote(doc_id, safe="")


def document_id_of(source: str) -> str | None:
    """The document id of a ``langchain://`` source (``None`` for any other source).

    Example:
        >>> document_id_of("langchain://report%2F2024%20v2"), document_id_of("/docs/a.pdf")
        ('report/2024 v2', None)
    """
    return unquote(source[len(SCHEME) :]) if source.startswith(SCHEME) else None


def split_metadata(metadata: Mapping[str, Any], where: str = "document") -> tuple[dict, str | None]:
    """``(fields, whole)``: the filterable fields of ``metadata`` and, when they are not all of
    it, the JSON of the whole (``None`` otherwise). Raises ``ValueError`` when ``metadata`` is
    not JSON-serialisable.

    Example:
        >>> split_metadata({"dept": "hr", "year": 2024})
        ({'dept': 'hr', 'year': 2024}, None)
        >>> split_metadata({"dept": "hr", "author": {"name": "Ann"}})
        ({'dept': 'hr'}, '{"author": {"name": "Ann"}, "dept": "hr"}')
    """
    try:
        whole = json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{where}: its metadata must be JSON-serialisable (strings, numbers, booleans, None, "
            f"lists and dicts of them): {error}"
        ) from error
    fields: dict[str, Any] = {}
    for key, value in metadata.items():
        try:
            fields.update(check_metadata({key: value}, where))
        except ValueError:
            continue  # kept in the JSON only: not filterable
    return fields, (None if fields == dict(metadata) else whole)


def stored_metadata(item: Item) -> dict[str, Any]:
    """The metadata a document was added with, from its stored item."""
    marker = (item.details or {}).get(DETAILS_KEY) or {}
    whole = marker.get("metadata")
    return json.loads(whole) if isinstance(whole, str) else dict(item.metadata)


def document_items(
    document: Document,
    *,
    tenant: str | None = None,
    dpi: int = 144,
    max_side: int | None = None,
    first_page_only: bool = False,
) -> Iterator[Item]:
    """The items of ``document`` (its ``id`` must be set): one per rendered page, or only the
    first page with ``first_page_only`` (a text embedding model embeds the whole text once).

    The content hash covers the text and the whole metadata, so changing either replaces the
    document's points when it is indexed again; adding it unchanged skips it.
    """
    import pymupdf

    doc_id = document.id
    if not isinstance(doc_id, str) or not doc_id:
        raise ValueError(f"a document needs a non-empty string id; got {doc_id!r}")
    text = document.page_content
    fields, whole = split_metadata(document.metadata, f"document {doc_id!r}")
    digest = hashlib.sha256(
        json.dumps([text, whole or fields], sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()
    marker: dict[str, Any] = {"id": doc_id}
    if whole is not None:
        marker["metadata"] = whole
    pdf = _layout(text, document_source(doc_id))
    with pymupdf.open(stream=pdf, filetype="pdf") as laid_out:
        count = 1 if first_page_only else laid_out.page_count
        texts = [text] + [laid_out[i].get_text().strip() for i in range(1, count)]
        rect = laid_out[0].rect
    from mmrag.pipeline.ingest.pdf_render import page_zoom

    zoom = page_zoom(rect.width, rect.height, dpi, max_side)
    size = (rect * pymupdf.Matrix(zoom, zoom)).irect
    for index in range(count):
        yield Item(
            source=document_source(doc_id),
            source_sha256=digest,
            modality=Modality.TEXT,
            page=index + 1,
            width=size.width,
            height=size.height,
            text=texts[index],
            metadata=fields,
            details={DETAILS_KEY: marker, "page_count": count, "render_dpi": dpi},
            tenant=tenant,
            image_loader=_PageLoader(pdf, index, zoom),
        )


class _PageLoader:
    """Renders page ``index`` of the laid-out PDF bytes (a picklable callable)."""

    def __init__(self, pdf: bytes, index: int, zoom: float) -> None:
        self.pdf, self.index, self.zoom = pdf, index, zoom

    def __call__(self) -> Image.Image:
        import pymupdf
        from PIL import Image

        with pymupdf.open(stream=self.pdf, filetype="pdf") as doc:
            matrix = pymupdf.Matrix(self.zoom, self.zoom)
            pix = doc[self.index].get_pixmap(matrix=matrix, alpha=False)
            return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


def _layout(text: str, source: str) -> bytes:
    """``text`` laid out on as many A4 pages as it needs (as a plain-text file is: see
    :func:`~mmrag.pipeline.ingest.documents.render_text_pdf`), as PDF bytes."""
    from mmrag.pipeline.ingest.documents import render_text_pdf

    with tempfile.TemporaryDirectory(prefix="mmrag-langchain-") as folder:
        out = Path(folder) / "document.pdf"
        render_text_pdf(_UNPRINTABLE.sub(" ", text), out, "text", source=source)
        return out.read_bytes()
