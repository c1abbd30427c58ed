"""Ingest: PDFs, images and video frames as one streaming source of Items.

The first stage of the pipeline. :func:`iter_items` turns paths, directories and globs into a
stream of :class:`~mmrag.types.Item` objects (PDF pages, images or their frames, sampled video
frames), each with its source hash, locator, size, text layer and a lazily loaded RGB image; a
bad file is reported and skipped. The per-format readers are also available on their own.

Importing this package is cheap: PyMuPDF, Pillow and PyAV load only when a reader is first used.

Example:
    >>> from mmrag.pipeline.ingest import IngestConfig, iter_items
    >>> from mmrag.types import IndexReport
    >>> report = IndexReport()
    >>> for item in iter_items(["docs/", "clips/*.mp4"], IngestConfig(dpi=144),
    ...                        report=report):  # doctest: +SKIP
    ...     print(item.citation(), item.width, item.height)
    ...     image = item.load_image()
    >>> report.summary()  # doctest: +SKIP
    '0 indexed, 0 skipped (already present), 1 failed'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mmrag.pipeline.ingest.errors import (
    CorruptFileError,
    EmptyFileError,
    EncryptedPDFError,
    ImageTooLargeError,
    IngestError,
    NoVideoStreamError,
    SourceChangedError,
    SourceNotFoundError,
    TruncatedFileError,
    UnreadableFileError,
    UnsupportedTypeError,
)
from mmrag.pipeline.ingest.options import IngestConfig

if TYPE_CHECKING:
    from mmrag.pipeline.ingest.discovery import Source, SourceKind, detect_kind, discover
    from mmrag.pipeline.ingest.images import iter_image_frames, to_rgb
    from mmrag.pipeline.ingest.pdf import iter_pdf_pages
    from mmrag.pipeline.ingest.source import iter_items, iter_source
    from mmrag.pipeline.ingest.video import iter_video_frames

__all__ = [
    "CorruptFileError",
    "EmptyFileError",
    "EncryptedPDFError",
    "ImageTooLargeError",
    "IngestConfig",
    "IngestError",
    "NoVideoStreamError",
    "Source",
    "SourceChangedError",
    "SourceKind",
    "SourceNotFoundError",
    "TruncatedFileError",
    "UnreadableFileError",
    "UnsupportedTypeError",
    "detect_kind",
    "discover",
    "iter_image_frames",
    "iter_items",
    "iter_pdf_pages",
    "iter_source",
    "iter_video_frames",
    "to_rgb",
]

_LAZY = {
    "Source": "discovery",
    "SourceKind": "discovery",
    "detect_kind": "discovery",
    "discover": "discovery",
    "iter_items": "source",
    "iter_source": "source",
    "iter_pdf_pages": "pdf",
    "iter_image_frames": "images",
    "to_rgb": "images",
    "iter_video_frames": "video",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
