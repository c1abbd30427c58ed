"""PDF pages as Items, rendered with PyMuPDF, one page at a time.

Each page is interpreted once into a display list; the text layer and the RGB pixmap both come
from it. The pixmap becomes a PIL image that the page's Item hands out on its first
``load_image()`` (see :mod:`mmrag.pipeline.ingest._prefetch`); after that, or once the bounded
prefetch window has moved on, :class:`PdfPageLoader` re-opens the file and renders just that page.
Nothing holds more than a window of pages, so a 2,000-page PDF streams in constant memory.

With ``IngestConfig(workers=N)`` pages render in N worker processes
(:mod:`mmrag.pipeline.ingest.pdf_pool`) with the same functions, so the pixels are identical.

Example:
    >>> from mmrag.pipeline.ingest.pdf import iter_pdf_pages
    >>> from mmrag.pipeline.ingest.options import IngestConfig
    >>> for item in iter_pdf_pages("report.pdf", IngestConfig(dpi=100)):  # doctest: +SKIP
    ...     print(item.page, item.page_label, item.width, item.height, item.text[:40])
    ...     image = item.load_image()  # RGB PIL image, item.width x item.height
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pymupdf
from PIL import Image

from mmrag.pipeline.ingest._files import FileStamp, SlottedLoader, check_file, file_sha256
from mmrag.pipeline.ingest._prefetch import PrefetchWindow
from mmrag.pipeline.ingest.errors import (
    CorruptFileError,
)
from mmrag.pipeline.ingest.ocr import require_ocr
from mmrag.pipeline.ingest.options import IngestConfig
from mmrag.pipeline.ingest.pdf_labels import PageLabels
from mmrag.pipeline.ingest.pdf_open import open_pdf
from mmrag.pipeline.ingest.pdf_render import (
    MUPDF_ERRORS,
    PageRender,
    RenderSpec,
    image_from_samples,
    measure_page,
    page_display_list,
    page_zoom,
    pixmap_samples,
    rasterize,
    render_page,
    trim_cache,
)
from mmrag.types import Item, Modality

if TYPE_CHECKING:
    from mmrag.pipeline.ingest.pdf_pool import PdfRenderPool

__all__ = [
    "PageRender",
    "PdfPageLoader",
    "RenderSpec",
    "iter_pdf_pages",
    "open_pdf",
    "pdf_items",
    "render_page",
]

logger = logging.getLogger(__name__)

_RELOADS = itertools.count(1)  # pages re-rendered by PdfPageLoader, for trim_cache


class PdfPageLoader(SlottedLoader):
    """Renders one page from the file on demand, as an RGB PIL image (picklable).

    This is what an Item's ``load_image()`` falls back to once its prefetched image is gone. It
    checks that the file did not change since ingest (:class:`SourceChangedError` otherwise).

    Example:
        >>> loader = PdfPageLoader("report.pdf", index=0, zoom=2.0)
        >>> loader  # the password, if any, is never shown
        PdfPageLoader('report.pdf', page=1, zoom=2.0)
    """

    __slots__ = ("box", "index", "password", "path", "stamp", "zoom")

    def __init__(
        self,
        path: str | os.PathLike[str],
        index: int,
        zoom: float,
        box: tuple[int, int, int, int] | None = None,
        password: str | None = None,
        stamp: FileStamp | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.index = index
        self.zoom = zoom
        self.box = box
        self.password = password
        self.stamp = stamp

    def __repr__(self) -> str:
        return f"PdfPageLoader({self.path!r}, page={self.index + 1}, zoom={self.zoom!r})"

    def __call__(self) -> Image.Image:
        self.verify()
        doc = open_pdf(self.path, self.password, recover_truncated=True, quiet=True)
        try:
            pix = rasterize(page_display_list(doc, self.index), self.zoom)
            samples, width, height, stride = pixmap_samples(pix)
            box = self.box or (0, 0, width, height)
            image = image_from_samples(samples, width, height, box, stride)
            del pix
            trim_cache(next(_RELOADS))
            return image
        except MUPDF_ERRORS as err:
            raise CorruptFileError(
                self.path, f"page {self.index + 1} cannot be rendered ({err})"
            ) from err
        finally:
            doc.close()


def _render_in_process(
    doc: pymupdf.Document, path: str, spec: RenderSpec, keep_images: bool
) -> Iterator[tuple[PageRender, Image.Image | None]]:
    """Render pages one by one in this process (the default path)."""
    for index in range(doc.page_count):
        try:
            if not keep_images and not spec.needs_pixels:
                info = measure_page(doc, index, spec)
                trim_cache(index + 1)
                yield info, None
                continue
            pix, info = render_page(doc, index, spec)
            image = None
            if keep_images and not (info.blank and spec.skip_blank_pages):
                samples, width, height, stride = pixmap_samples(pix)
                image = image_from_samples(samples, width, height, info.box, stride)
            del pix
        except MUPDF_ERRORS as err:
            raise CorruptFileError(path, f"page {index + 1} cannot be rendered ({err})") from err
        trim_cache(index + 1)
        yield info, image


def iter_pdf_pages(
    path: str | os.PathLike[str], config: IngestConfig | None = None
) -> Iterator[Item]:
    """Stream the pages of one PDF as Items (``modality=pdf_page``), in page order.

    Each Item has ``page`` (1-based), ``page_label`` (when the PDF defines labels), the text
    layer in ``text``, ``width``/``height`` of the image that ``load_image()`` returns, and
    details ``page_count``, ``render_dpi`` (and ``crop_box`` when margins were cropped; with
    ``ingest.ocr``, ``text_source = "ocr"`` and ``words`` in PDF points on the pages OCR read).

    Raises typed errors (subclasses of :class:`mmrag.errors.IngestError`): ``EmptyFileError``,
    ``CorruptFileError``, ``TruncatedFileError``, ``EncryptedPDFError``, ``SourceNotFoundError``.

    Example:
        >>> from mmrag.pipeline.ingest import IngestConfig, iter_pdf_pages
        >>> pages = iter_pdf_pages("report.pdf", IngestConfig(dpi=100, max_side=1024))
        >>> first = next(pages)  # doctest: +SKIP
        >>> first.page, first.load_image().size == (first.width, first.height)  # doctest: +SKIP
        (1, True)
    """
    config = config or IngestConfig()
    window = PrefetchWindow(config.prefetch)
    pool = None
    if config.workers > 0 and config.prefetch > 0:
        from mmrag.pipeline.ingest.pdf_pool import PdfRenderPool

        pool = PdfRenderPool(config.workers, start_method=config.worker_start_method)
    try:
        yield from pdf_items(path, config, window=window, pool=pool)
    finally:
        if pool is not None:
            pool.close()


def pdf_items(
    path: str | os.PathLike[str],
    config: IngestConfig,
    *,
    window: PrefetchWindow,
    pool: PdfRenderPool | None = None,
    sha256: str | None = None,
) -> Iterator[Item]:
    """:func:`iter_pdf_pages` with a caller-owned prefetch window and worker pool."""
    source = os.fspath(path)
    check_file(source)
    stamp = FileStamp.of(source)
    digest = sha256 or file_sha256(source)
    spec = RenderSpec.from_config(config)
    if spec.ocr != "off" and not require_ocr(spec.ocr):  # auto without Tesseract: no OCR
        spec = dataclasses.replace(spec, ocr="off")
    password = config.pdf_password
    doc = open_pdf(source, password, recover_truncated=config.recover_truncated_pdfs)
    try:
        labels = PageLabels(doc.get_page_labels())
        page_count = doc.page_count
        title = (doc.metadata or {}).get("title") or None
        if pool is not None and window.keeps_images and page_count > 1:
            first = doc.load_page(0).rect
            zoom = page_zoom(first.width, first.height, spec.dpi, spec.max_side, spec.max_pixels)
            estimate = int(first.width * zoom + 2) * int(first.height * zoom + 2) * 3
            renders = pool.render(source, page_count, spec, password, stamp, estimate)
        else:
            renders = _render_in_process(doc, source, spec, window.keeps_images)
        for info, image in renders:
            if info.blank and spec.skip_blank_pages:
                logger.debug("%s: skipping blank page %d", source, info.index + 1)
                continue
            metadata: dict[str, Any] = {
                "page_count": page_count,
                "render_dpi": round(info.zoom * 72.0, 2),
            }
            if title:
                metadata["title"] = title
            if info.cropped:
                metadata["crop_box"] = list(info.box)
            if info.words is not None:
                metadata["text_source"] = "ocr"
                metadata["words"] = info.words
            fallback = PdfPageLoader(
                source, info.index, info.zoom, info.box if info.cropped else None, password, stamp
            )
            yield Item(
                source=source,
                source_sha256=digest,
                modality=Modality.PDF_PAGE,
                page=info.index + 1,
                page_label=labels.label(info.index) if labels else None,
                width=info.width,
                height=info.height,
                text=info.text,
                details=metadata,
                image_loader=window.wrap(image, fallback),
            )
    finally:
        doc.close()
