"""Typed ingest errors: one class per way a source can be unusable.

Every class is an :class:`mmrag.errors.IngestError`, so it carries ``source`` (the file) and
``reason`` (plain words, ending with what to do where there is something to do). Most take a
default reason, so ``EmptyFileError("scan.pdf")`` is enough. They pickle with their two arguments,
so they cross process boundaries unchanged when PDF pages render in worker processes.

Example:
    >>> from mmrag.pipeline.ingest.errors import EmptyFileError, EncryptedPDFError
    >>> str(EmptyFileError("scan.pdf"))
    'scan.pdf: the file is empty (0 bytes)'
    >>> err = EncryptedPDFError("secret.pdf")
    >>> "pdf_password" in err.reason
    True
"""

from __future__ import annotations

from os import PathLike

from mmrag.errors import IngestError

__all__ = [
    "CorruptFileError",
    "EmptyFileError",
    "EncryptedPDFError",
    "ImageTooLargeError",
    "IngestError",
    "NoVideoStreamError",
    "SourceChangedError",
    "SourceNotFoundError",
    "TruncatedFileError",
    "UnreadableFileError",
    "UnsupportedTypeError",
]

_Source = str | PathLike[str]


class SourceNotFoundError(IngestError):
    """A path does not exist, or a glob pattern matches no file."""

    def __init__(self, source: _Source, reason: str = "no such file or directory") -> None:
        super().__init__(source, reason)


class UnreadableFileError(IngestError):
    """The file exists but cannot be read (permissions, a device, an I/O error)."""


class EmptyFileError(IngestError):
    """The file has no bytes at all."""

    def __init__(self, source: _Source, reason: str = "the file is empty (0 bytes)") -> None:
        super().__init__(source, reason)


class UnsupportedTypeError(IngestError):
    """The file's content is not a PDF, a supported image format or a video container."""


class CorruptFileError(IngestError):
    """The file claims a supported type but cannot be decoded."""


class TruncatedFileError(CorruptFileError):
    """The file ends before its format says it should: an interrupted download or copy."""


class EncryptedPDFError(IngestError):
    """The PDF needs a password that was not given, or the given one is wrong."""

    def __init__(
        self,
        source: _Source,
        reason: str = (
            "the PDF is encrypted (password-protected); give its password as ingest.pdf_password "
            "(MMRAG_INGEST__PDF_PASSWORD in the environment; it is never saved to a config file)"
        ),
    ) -> None:
        super().__init__(source, reason)


class ImageTooLargeError(IngestError):
    """The image has more pixels than the decompression-bomb limit allows."""


class NoVideoStreamError(IngestError):
    """A media file has no video stream (e.g. audio only), so there are no frames to take."""


class SourceChangedError(IngestError):
    """The file changed on disk between ingest and a later ``Item.load_image()``."""
