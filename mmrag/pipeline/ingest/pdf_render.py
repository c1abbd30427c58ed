"""How one PDF page becomes pixels and text: zoom, display list, raster, crop, blank test.

Shared by the in-process path (:mod:`mmrag.pipeline.ingest.pdf`), the worker processes
(:mod:`mmrag.pipeline.ingest._pdf_worker`) and the on-demand re-render
(:class:`~mmrag.pipeline.ingest.pdf.PdfPageLoader`), so all three give identical pixels.

The page is interpreted once into a MuPDF display list; the text layer and the RGB pixmap both
come from it. Rasterising makes the same MuPDF calls as PyMuPDF's
``Page.get_pixmap(matrix=Matrix(zoom, zoom), alpha=False)``, through the low-level ``mupdf``
bindings that PyMuPDF ships, so the pixels are the same and no per-call Python wrapper is paid.

Example:
    >>> import pymupdf
    >>> from mmrag.pipeline.ingest.pdf_render import RenderSpec, image_from_samples, render_page
    >>> doc = pymupdf.open()
    >>> _ = doc.new_page(width=144, height=72)
    >>> pix, info = render_page(doc, 0, RenderSpec(dpi=72))
    >>> (info.width, info.height), info.text
    ((144, 72), '')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pymupdf
from PIL import Image

from mmrag.pipeline.ingest.ocr import apply_ocr, ocr_wanted

if TYPE_CHECKING:
    from mmrag.pipeline.ingest.options import IngestConfig

__all__ = [
    "MUPDF_ERRORS",
    "PageRender",
    "RenderSpec",
    "image_from_samples",
    "measure_page",
    "page_display_list",
    "page_zoom",
    "pixmap_samples",
    "rasterize",
    "render_page",
    "trim_cache",
]

#: What MuPDF raises on damaged input (FileDataError is a RuntimeError).
MUPDF_ERRORS: tuple[type[BaseException], ...] = (RuntimeError, pymupdf.mupdf.FzErrorBase)

_INK_TOLERANCE = 24  # a channel this far from the background colour counts as ink
_CROP_PAD_FRACTION = 0.01  # keep 1 % of the page's longer side around cropped content


@dataclass(frozen=True)
class RenderSpec:
    """The rendering settings a page needs (picklable: sent to worker processes)."""

    dpi: int = 144
    max_side: int | None = None
    max_pixels: int | None = None
    crop_margins: bool = False
    skip_blank_pages: bool = False
    blank_ink_ratio: float = 0.0005
    extract_text: bool = True
    ocr: str = "off"  # "off" | "on" | "auto" (see mmrag.pipeline.ingest.ocr)
    ocr_languages: str = "eng"

    @classmethod
    def from_config(cls, config: IngestConfig) -> RenderSpec:
        return cls(
            dpi=config.dpi,
            max_side=config.max_side,
            max_pixels=config.max_page_pixels,
            crop_margins=config.crop_margins,
            skip_blank_pages=config.skip_blank_pages,
            blank_ink_ratio=config.blank_ink_ratio,
            extract_text=config.extract_text,
            ocr=config.ocr,
            ocr_languages=config.ocr_languages,
        )

    @property
    def inspects_pixels(self) -> bool:
        """Whether the rendered pixels must be examined (cropping, blank detection)."""
        return self.crop_margins or self.skip_blank_pages

    @property
    def needs_pixels(self) -> bool:
        """Whether pages must be rasterised even when nobody keeps the image (pixels, OCR)."""
        return self.inspects_pixels or self.ocr != "off"


@dataclass(frozen=True)
class PageRender:
    """What rendering one page produced, without the pixels.

    ``box`` is the part of the full ``zoom`` rendering that the page's image keeps
    (``x0, y0, x1, y1`` in pixels): the whole pixmap unless margins were cropped. ``words``:
    the OCR words ``[x0, y0, x1, y1, word]`` in PDF points when OCR ran (``text`` is then the
    OCR text), else None.
    """

    index: int
    zoom: float
    full_width: int
    full_height: int
    box: tuple[int, int, int, int]
    text: str | None
    blank: bool = False
    words: list[list[Any]] | None = None

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def cropped(self) -> bool:
        return self.box != (0, 0, self.full_width, self.full_height)


def page_zoom(
    width_pt: float,
    height_pt: float,
    dpi: int,
    max_side: int | None,
    max_pixels: int | None = None,
) -> float:
    """The render zoom for a page of this size: ``dpi / 72``, lowered to fit ``max_side`` (the
    longer side, in pixels) and ``max_pixels`` (the area).

    Rendering happens directly at the smaller zoom (never big and then downscaled).

    Example:
        >>> page_zoom(612, 792, 144, None)
        2.0
        >>> round(page_zoom(612, 792, 144, 1000) * 792, 2)  # the longer side fits 1000 px
        999.99
        >>> zoom = page_zoom(14400, 14400, 144, None, 2048 * 2048)  # a 200-inch square page
        >>> int(14400 * zoom + 1) <= 2048
        True
    """
    zoom = dpi / 72.0
    if max_side is not None:
        longest = max(width_pt, height_pt)
        if longest * zoom > max_side:
            # A hair under the limit so float rounding never yields max_side + 1 pixels.
            zoom = (max_side - 0.01) / longest
    # The pixmap covers the page rounded outwards: up to one more pixel on each side.
    if (
        max_pixels is not None
        and width_pt > 0
        and height_pt > 0
        and (width_pt * zoom + 1) * (height_pt * zoom + 1) > max_pixels
    ):
        zoom = min(zoom, _fit_area(width_pt, height_pt, max_pixels))
    return zoom


def _fit_area(width_pt: float, height_pt: float, max_pixels: int) -> float:
    """The largest zoom whose outward-rounded raster, ``(w·z + 1)(h·z + 1)``, fits the budget."""
    # Solve w·h·z² + (w + h)·z + 1 = max_pixels for z.
    a, b, c = width_pt * height_pt, width_pt + height_pt, 1 - max_pixels
    return max((-b + (b * b - 4 * a * c) ** 0.5) / (2 * a) * 0.9999, 1e-6)


_mupdf = pymupdf.mupdf
_RGB = _mupdf.FzColorspace(_mupdf.FzColorspace.Fixed_RGB)


def page_display_list(doc: pymupdf.Document, index: int) -> Any:
    """The page's display list (contents, annotations and widgets), interpreted once."""
    page = _mupdf.fz_load_page(doc.this, index)
    return _mupdf.fz_new_display_list_from_page(page)


def _size_pt(display_list: Any) -> tuple[float, float]:
    bounds = _mupdf.fz_bound_display_list(display_list)
    return bounds.x1 - bounds.x0, bounds.y1 - bounds.y0


def rasterize(display_list: Any, zoom: float, into: memoryview | None = None) -> Any:
    """An RGB pixmap of the display list at ``zoom``, on white.

    This is what PyMuPDF's ``Page.get_pixmap(matrix=Matrix(zoom, zoom), alpha=False)`` does
    (same MuPDF calls, same pixels), without its per-call Python wrappers. With ``into`` (a
    writable buffer, e.g. a worker's shared-memory slot) large enough for the page, MuPDF draws
    straight into it; the pixmap then must not outlive the buffer.
    """
    ctm = _mupdf.FzMatrix(zoom, 0, 0, zoom, 0, 0)
    bbox = _mupdf.fz_round_rect(
        _mupdf.fz_transform_rect(_mupdf.fz_bound_display_list(display_list), ctm)
    )
    needed = (bbox.x1 - bbox.x0) * (bbox.y1 - bbox.y0) * 3
    if into is not None and needed <= len(into):
        data = _mupdf.python_mutable_buffer_data(into)
        pix = _mupdf.fz_new_pixmap_with_bbox_and_data(_RGB, bbox, _mupdf.FzSeparations(), 0, data)
    else:
        pix = _mupdf.fz_new_pixmap_with_bbox(_RGB, bbox, _mupdf.FzSeparations(), 0)
    _mupdf.fz_clear_pixmap_with_value(pix, 0xFF)
    device = _mupdf.fz_new_draw_device(ctm, pix)
    _mupdf.fz_run_display_list(
        display_list,
        device,
        _mupdf.FzMatrix(),
        _mupdf.FzRect(_mupdf.FzRect.Fixed_INFINITE),
        _mupdf.FzCookie(),
    )
    _mupdf.fz_close_device(device)
    return pix


def pixmap_samples(pix: Any) -> tuple[memoryview, int, int, int]:
    """``(samples, width, height, stride)`` of a pixmap from :func:`render_page`.

    The memoryview points into the pixmap: use it while ``pix`` is alive.
    """
    return (
        _mupdf.fz_pixmap_samples_memoryview(pix),
        _mupdf.fz_pixmap_width(pix),
        _mupdf.fz_pixmap_height(pix),
        _mupdf.fz_pixmap_stride(pix),
    )


#: Text outside the page box is dropped; ligatures are expanded ("ﬁ" -> "fi") and glyphs with no
#: Unicode mapping come out as U+FFFD, which suits search better than PyMuPDF's get_text default.
_TEXT_FLAGS = pymupdf.TEXT_MEDIABOX_CLIP


def _text_of(display_list: Any) -> str:
    options = _mupdf.FzStextOptions()
    options.flags = _TEXT_FLAGS
    stext = _mupdf.FzStextPage(display_list, options)
    return pymupdf.TextPage(stext).extractText().strip()


def _inspect(
    samples: Any, width: int, height: int, spec: RenderSpec, has_text: bool
) -> tuple[tuple[int, int, int, int], bool]:
    """The content box and whether the page is blank, from its RGB samples."""
    pixels = np.frombuffer(samples, dtype=np.uint8, count=width * height * 3)
    pixels = pixels.reshape(height, width, 3)
    corners = np.stack([pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]])
    background = np.median(corners.astype(np.int16), axis=0)
    low = np.clip(background - _INK_TOLERANCE, 0, 255).astype(np.uint8)
    high = np.clip(background + _INK_TOLERANCE, 0, 255).astype(np.uint8)
    # Channel by channel (a reduction over the last axis of size 3 is ten times slower).
    ink = np.zeros((height, width), dtype=bool)  # (height, width): differs from the background
    for channel in range(3):
        plane = pixels[..., channel]
        ink |= plane < low[channel]
        if high[channel] < 255:
            ink |= plane > high[channel]
    full = (0, 0, width, height)
    blank = not has_text and np.count_nonzero(ink) <= spec.blank_ink_ratio * ink.size
    if not spec.crop_margins or blank:
        return full, blank
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return full, blank
    pad = max(2, round(_CROP_PAD_FRACTION * max(width, height)))
    box = (
        max(0, int(cols[0]) - pad),
        max(0, int(rows[0]) - pad),
        min(width, int(cols[-1]) + 1 + pad),
        min(height, int(rows[-1]) + 1 + pad),
    )
    return box, blank


#: Empty MuPDF's cache after this many pages (see :func:`trim_cache`).
CACHE_TRIM_PAGES = 64


def trim_cache(pages_done: int) -> None:
    """Keep MuPDF's resource cache from growing with the length of the document.

    MuPDF keeps decoded images and parsed fonts in a process-wide store that only starts
    evicting at 256 MB, so a 2,000-page PDF with a picture on every page would grow the process
    by some 200 MB. Emptying the store every :data:`CACHE_TRIM_PAGES` pages keeps memory flat;
    a resource shared by many pages (a logo, a font) is decoded again once per 64 pages.
    """
    if pages_done % CACHE_TRIM_PAGES == 0:
        _mupdf.fz_empty_store()


def render_page(
    doc: pymupdf.Document, index: int, spec: RenderSpec, into: memoryview | None = None
) -> tuple[Any, PageRender]:
    """Render page ``index`` (0-based) at the spec's zoom: the RGB pixmap and what was found.

    The page is interpreted once into a display list; the text layer and the pixels both come
    from it. Turn the pixmap into an image with :func:`pixmap_samples` and
    :func:`image_from_samples` (which applies the crop box) while it is alive. ``into``: see
    :func:`rasterize`.
    """
    display_list = page_display_list(doc, index)
    width_pt, height_pt = _size_pt(display_list)
    zoom = page_zoom(width_pt, height_pt, spec.dpi, spec.max_side, spec.max_pixels)
    wants_text = spec.extract_text or spec.skip_blank_pages or spec.ocr == "auto"
    text = _text_of(display_list) if wants_text else None
    pix = rasterize(display_list, zoom, into)
    del display_list
    samples, width, height, stride = pixmap_samples(pix)
    box: tuple[int, int, int, int] = (0, 0, width, height)
    blank = False
    if spec.inspects_pixels:  # an RGB pixmap without alpha is packed: stride == width * 3
        box, blank = _inspect(samples, width, height, spec, bool(text))
    words = None
    if not blank and ocr_wanted(spec.ocr, text):
        details: dict[str, Any] = {}
        image = image_from_samples(samples, width, height, (0, 0, width, height), stride)
        text = apply_ocr(image, details, spec.ocr_languages, scale=zoom, dpi=round(zoom * 72))
        words = details["words"]
        del image
    return pix, PageRender(
        index=index,
        zoom=zoom,
        full_width=width,
        full_height=height,
        box=box,
        text=text if spec.extract_text or words is not None else None,
        blank=blank,
        words=words,
    )


def measure_page(doc: pymupdf.Document, index: int, spec: RenderSpec) -> PageRender:
    """What :func:`render_page` would report, without rendering (no cropping, no blank test)."""
    page = _mupdf.fz_load_page(doc.this, index)
    bounds = _mupdf.fz_bound_page(page)
    zoom = page_zoom(
        bounds.x1 - bounds.x0, bounds.y1 - bounds.y0, spec.dpi, spec.max_side, spec.max_pixels
    )
    size = _mupdf.fz_round_rect(
        _mupdf.fz_transform_rect(bounds, _mupdf.FzMatrix(zoom, 0, 0, zoom, 0, 0))
    )
    width, height = size.x1 - size.x0, size.y1 - size.y0
    text = None
    if spec.extract_text:
        text = _text_of(_mupdf.fz_new_display_list_from_page(page))
    return PageRender(index, zoom, width, height, (0, 0, width, height), text)


def image_from_samples(
    samples: Any,
    full_width: int,
    full_height: int,
    box: tuple[int, int, int, int],
    stride: int | None = None,
) -> Image.Image:
    """An RGB PIL image (a copy) of the ``box`` part of RGB ``samples`` (3 bytes per pixel).

    Cropping costs nothing extra: the raw decoder reads only the boxed rows via the stride.
    """
    x0, y0, x1, y1 = box
    stride = stride or full_width * 3
    view = memoryview(samples)[y0 * stride + x0 * 3 :]
    return Image.frombytes("RGB", (x1 - x0, y1 - y0), view, "raw", "RGB", stride, 1)
