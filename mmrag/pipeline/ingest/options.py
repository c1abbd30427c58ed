"""Ingest settings: one pydantic model, the ``[ingest]`` section of the pipeline config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DEFAULT_MAX_PAGE_PIXELS", "IngestConfig"]

#: The default pixel budget of a rendered page: 2048 x 2048 (about 4.2 megapixels).
DEFAULT_MAX_PAGE_PIXELS = 2048 * 2048


class IngestConfig(BaseModel):
    """How sources become Items: PDF rendering, image decoding, video sampling.

    ``dpi``, ``max_side`` and ``max_page_pixels`` combine: a page renders at ``dpi`` unless that
    would make its longer side exceed ``max_side`` or its area exceed ``max_page_pixels``, in
    which case it renders directly at the smaller zoom (never big then downscaled). The default
    pixel budget (2048 x 2048) leaves ordinary pages untouched (an A4 or Letter page at 144 dpi
    is about 2 megapixels) and lets a poster or a 200-inch PDF page render, downscaled, instead
    of failing. ``max_side`` also bounds images and video frames.

    In a config file these are the keys of ``[ingest]``, e.g. ``ingest.max_page_pixels``
    (``MMRAG_INGEST__MAX_PAGE_PIXELS`` in the environment).

    Example:
        >>> from mmrag.pipeline.ingest.options import IngestConfig
        >>> IngestConfig(dpi=100, max_side=1024).dpi
        100
        >>> IngestConfig(video_fps=None, video_scene_threshold=0.2).video_fps is None
        True
        >>> IngestConfig(ocr="auto").ocr
        'auto'
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # -- PDF -------------------------------------------------------------------------------------
    dpi: int = Field(144, ge=18, le=1200, description="PDF render resolution (dots per inch).")
    max_side: int | None = Field(
        None, ge=16, description="Downscale pages and images so the longer side is at most this."
    )
    max_page_pixels: int | None = Field(
        DEFAULT_MAX_PAGE_PIXELS,
        ge=16 * 16,
        description="Render a PDF page (and a text, Markdown, HTML or Office page) at a lower "
        "zoom when it would have more pixels than this at `dpi` (2048 x 2048 by default; the "
        "embedders see at most about 1-2 megapixels). None: no limit (a page too large for "
        "MuPDF then fails).",
    )
    crop_margins: bool = Field(
        False,
        description="Crop the blank margins around a page's content (pixels that match the "
        "page background) before embedding.",
    )
    skip_blank_pages: bool = Field(False, description="Skip PDF pages with no visible content.")
    blank_ink_ratio: float = Field(
        0.0005,
        ge=0,
        lt=1,
        description="A page with no text counts as blank when at most this fraction of its "
        "pixels differs from the background (tolerates scanner specks).",
    )
    extract_text: bool = Field(True, description="Keep each PDF page's text layer on its Item.")
    ocr: Literal["off", "on", "auto"] = Field(
        "off",
        description="Read text with Tesseract OCR: 'auto' only where there is no text layer "
        "(scanned PDF pages, images, video frames), 'on' everywhere (replacing a PDF text "
        "layer), 'off' never. The text feeds the BM25 text channel like a text layer; word "
        "boxes go to Item.details['words']. About 1.5 s per A4 page on one CPU core, hence off "
        "by default. Needs the `tesseract` program (apt-get install tesseract-ocr).",
    )
    ocr_languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract language packs, joined by '+' (e.g. 'eng+deu'; each needs its "
        "tesseract-ocr-LANG package).",
    )
    pdf_password: str | None = Field(
        None,
        repr=False,
        exclude=True,
        description="Password for encrypted PDFs (never saved to a config file).",
    )
    recover_truncated_pdfs: bool = Field(
        False,
        description="Index the pages PyMuPDF can recover from a truncated PDF (no end-of-file "
        "marker) instead of reporting the file as truncated.",
    )
    workers: int = Field(
        0, ge=0, description="Render PDFs in this many worker processes (0: none)."
    )
    worker_start_method: Literal["forkserver", "spawn", "fork"] | None = Field(
        None,
        description="How worker processes start; default forkserver where the platform has it, "
        "else spawn. fork starts fastest but is unsafe in multi-threaded programs.",
    )
    prefetch: int = Field(
        32,
        ge=0,
        description="Rendered pages / decoded frames kept for Items whose load_image() has not "
        "run yet; older ones are dropped and re-rendered on demand. A consumer that loads each "
        "Item as it arrives holds one; set this to at least the batch size of a consumer that "
        "collects a batch before loading. 0: decode nothing ahead, every load_image() re-opens "
        "the file (and workers are not used).",
    )
    # -- images ----------------------------------------------------------------------------------
    max_image_pixels: int = Field(
        178_956_970, ge=1, description="Decompression-bomb limit (pixels) for images."
    )
    max_frames_per_image: int = Field(
        256, ge=1, description="Cap on frames taken from an animated GIF / WebP or multi-page TIFF."
    )
    # -- video -----------------------------------------------------------------------------------
    video_fps: float | None = Field(
        1.0, gt=0, description="Uniform video sampling rate (frames/s); None: scene changes only."
    )
    video_scene_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Also keep frames where the scene changes by this much (mean absolute "
        "difference of small RGB thumbnails, 0..1; cuts are typically 0.1-0.3).",
    )
    max_frames_per_video: int = Field(
        256,
        ge=1,
        description="Cap on frames taken per video; uniform sampling slows down to spread them "
        "over the whole video.",
    )
    # -- discovery -------------------------------------------------------------------------------
    fail_unsupported: bool = Field(
        False,
        description="Report files of unsupported type found in directories or globs (a README "
        "without a text reader, a .docx without LibreOffice, a .zip …) as failures. By default "
        "they are skipped and counted (IndexReport.unsupported; `mmrag index --strict` fails "
        "them); a file named explicitly always fails.",
    )
    # -- text, Markdown, HTML and Office documents -----------------------------------------------
    documents: bool = Field(
        True,
        description="Render .txt, .md and .html files to pages (text layer kept), and convert "
        "Office documents (.docx, .pptx, .xlsx, .odt …) to PDF with LibreOffice when it is "
        "installed. False: treat them as unsupported.",
    )
    convert_cache: str | None = Field(
        None,
        description="Folder of the PDFs converted from text and Office documents, by content "
        "hash (a file is not converted again when re-indexed). Default: $MMRAG_CACHE_DIR/"
        "converted, else $XDG_CACHE_HOME/mmrag/converted, else ~/.cache/mmrag/converted.",
    )
    office_timeout_s: float = Field(
        300.0, gt=0, description="Seconds LibreOffice may take to convert one document."
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_skip_unsupported(cls, data: Any) -> Any:
        """``skip_unsupported`` (before 0.x: default False) is now the default behaviour;
        ``skip_unsupported = false`` means ``fail_unsupported = true``."""
        if isinstance(data, dict) and "skip_unsupported" in data:
            data = dict(data)
            skip = data.pop("skip_unsupported")
            data.setdefault("fail_unsupported", not skip)
        return data

    @property
    def skip_unsupported(self) -> bool:
        """Whether unsupported files found in folders are skipped (not ``fail_unsupported``)."""
        return not self.fail_unsupported

    @model_validator(mode="after")
    def _needs_a_video_sampler(self) -> IngestConfig:
        if self.video_fps is None and self.video_scene_threshold is None:
            raise ValueError(
                "video sampling needs video_fps, video_scene_threshold or both; got neither"
            )
        return self
