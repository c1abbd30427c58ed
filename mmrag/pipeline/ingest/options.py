"""Ingest settings: one pydantic model, the ``[ingest]`` section of the pipeline config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["IngestConfig"]


class IngestConfig(BaseModel):
    """How sources become Items: PDF rendering, image decoding, video sampling.

    Example:
        >>> from mmrag.pipeline.ingest.options import IngestConfig
        >>> IngestConfig(dpi=100, max_side=1024).dpi
        100
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dpi: int = Field(144, ge=18, le=1200, description="PDF render resolution (dots per inch).")
    max_side: int | None = Field(
        None, ge=16, description="Downscale pages and images so the longer side is at most this."
    )
    crop_margins: bool = Field(False, description="Crop uniform page margins before embedding.")
    skip_blank_pages: bool = Field(False, description="Skip PDF pages with no visible content.")
    pdf_password: str | None = Field(
        None, description="Password for encrypted PDFs (never saved to a config file)."
    )
    workers: int = Field(0, ge=0, description="Render PDFs in this many worker processes (0: none).")
    video_fps: float = Field(1.0, gt=0, description="Uniform video sampling rate (frames/s).")
    video_scene_threshold: float | None = Field(
        None, gt=0, le=1, description="Also keep frames where the scene changes by this much."
    )
    max_frames_per_video: int = Field(256, ge=1, description="Cap on frames taken per video.")
    max_image_pixels: int = Field(
        178_956_970, ge=1, description="Decompression-bomb limit (pixels) for images."
    )
