"""Opening a PDF with PyMuPDF: header and truncation checks, recovery, passwords; typed errors.

Used by the page reader (:mod:`mmrag.pipeline.ingest.pdf`) and the render worker processes
(:mod:`mmrag.pipeline.ingest._pdf_worker`) alike.

Example:
    >>> from mmrag.pipeline.ingest.pdf_open import open_pdf                 # doctest: +SKIP
    >>> doc = open_pdf("report.pdf")                                         # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pymupdf

from mmrag.pipeline.ingest._files import check_file
from mmrag.pipeline.ingest.errors import CorruptFileError, EncryptedPDFError, TruncatedFileError
from mmrag.pipeline.ingest.pdf_render import MUPDF_ERRORS

__all__ = ["open_pdf"]

logger = logging.getLogger("mmrag.pipeline.ingest.pdf")

_HEAD_BYTES = 1024  # the %PDF- header may follow some junk (PDF 1.7, 7.5.2 / Acrobat: 1024)
_TAIL_BYTES = 4096  # %%EOF must be near the end; a little trailing garbage is tolerated


def _has_pdf_header(head: bytes) -> bool:
    return b"%PDF-" in head[:_HEAD_BYTES]


def open_pdf(
    path: str | os.PathLike[str],
    password: str | None = None,
    *,
    recover_truncated: bool = False,
    quiet: bool = False,
) -> pymupdf.Document:
    """Open a PDF with PyMuPDF, turning every way it can fail into a typed ingest error.

    Damage that PyMuPDF repairs is logged as a warning (at debug level with ``quiet``, for
    re-opening a file that was already reported).

    Raises:
        CorruptFileError: not a PDF, or PyMuPDF cannot parse it, or it has no pages.
        TruncatedFileError: no ``%%EOF`` marker at the end (unless ``recover_truncated``).
        EncryptedPDFError: a password is needed and was not given, or is wrong.
    """
    size = check_file(path)
    with Path(path).open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
    if not _has_pdf_header(head):
        raise CorruptFileError(path, "not a PDF: there is no %PDF- header at the start of the file")
    if b"%%EOF" not in tail:
        if not recover_truncated:
            raise TruncatedFileError(
                path,
                "the PDF is truncated: it has no %%EOF end marker, so the download or copy was "
                "probably cut short; fetch it again, or set ingest.recover_truncated_pdfs = true "
                "(MMRAG_INGEST__RECOVER_TRUNCATED_PDFS=true) to index the pages that survive",
            )
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "%s: the PDF is truncated (no %%EOF); indexing what can be recovered",
            path,
        )
    try:
        doc = pymupdf.open(os.fspath(path), filetype="pdf")
    except MUPDF_ERRORS as err:
        raise CorruptFileError(path, f"PyMuPDF cannot open the PDF ({err})") from err
    try:
        if doc.needs_pass:
            if password is None:
                raise EncryptedPDFError(path)
            if not doc.authenticate(password):
                raise EncryptedPDFError(
                    path,
                    "the PDF is encrypted and ingest.pdf_password does not open it; "
                    "check the password",
                )
        if doc.page_count == 0:
            raise CorruptFileError(path, "the PDF has no pages")
    except BaseException:
        doc.close()
        raise
    if doc.is_repaired:
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "%s: the PDF's cross-reference table was damaged and was repaired",
            path,
        )
    return doc
