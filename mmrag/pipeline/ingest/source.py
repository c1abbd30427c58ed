"""One stream of Items from many files: discovery, then the right reader for each file.

:func:`iter_items` is the ingest stage's entry point. It expands the inputs lazily, one input at
a time, reads each file with the PDF, image, video or document reader (text, Markdown, HTML and
Office documents become PDF pages: :mod:`mmrag.pipeline.ingest.documents`), and yields Items in
a stable order. A file that cannot be read is recorded in the :class:`~mmrag.types.IndexReport`
and logged with its reason, and the stream carries on with the next file (``strict=True`` raises
instead). A file of unsupported type found in a folder or glob (a ``.zip``, a ``.py``) is
skipped and counted in ``IndexReport.unsupported``, not failed (``ingest.fail_unsupported``
fails it); a file named explicitly fails.

One prefetch window bounds the rendered images held across the whole stream, and one worker
pool (``IngestConfig.workers``) serves every PDF of the run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mmrag.errors import IngestError
from mmrag.pipeline.ingest._files import check_file, file_sha256
from mmrag.pipeline.ingest._prefetch import PrefetchWindow
from mmrag.pipeline.ingest.discovery import (
    Source,
    SourceKind,
    as_inputs,
    describe_format,
    detect_kind,
    expand,
    is_unsupported,
)
from mmrag.pipeline.ingest.errors import UnsupportedTypeError
from mmrag.pipeline.ingest.options import IngestConfig
from mmrag.types import IndexReport, Item, canonical_source

if TYPE_CHECKING:
    from mmrag.pipeline.ingest.pdf_pool import PdfRenderPool

__all__ = ["SUPPORTED", "iter_items", "iter_source"]

logger = logging.getLogger(__name__)

#: What mmrag reads, in words (used in error messages).
SUPPORTED = (
    "PDF, images (JPEG, PNG, WebP, TIFF, BMP, GIF), video (MP4, MOV, MKV, WebM, AVI, …), text "
    "(.txt, .md, .html) and, with LibreOffice installed, Office documents (.docx, .pptx, .xlsx, "
    ".odt …)"
)


def _unsupported(source: Source) -> UnsupportedTypeError:
    if source.kind is SourceKind.DOCUMENT:  # ingest.documents is off
        from mmrag.pipeline.ingest.documents import describe_document

        what = describe_document(source.format or "text")
        reason = f"{what}, and reading documents is turned off (ingest.documents = false)"
        return UnsupportedTypeError(source.path, f"unsupported file type: this is {reason}")
    return UnsupportedTypeError(
        source.path,
        f"unsupported file type: this is {describe_format(source.format)}; mmrag ingests "
        f"{SUPPORTED}",
    )


def iter_source(
    source: Source | str | os.PathLike[str],
    config: IngestConfig | None = None,
    *,
    window: PrefetchWindow | None = None,
    pool: PdfRenderPool | None = None,
) -> Iterator[Item]:
    """The Items of one file, with the reader its content calls for (typed errors raised).

    Example:
        >>> from mmrag.pipeline.ingest.source import iter_source
        >>> items = list(iter_source("scan.pdf"))  # doctest: +SKIP
    """
    config = config or IngestConfig()
    if not isinstance(source, Source):
        path = canonical_source(source)
        size = check_file(path)
        kind, fmt, detected_by = detect_kind(path)
        source = Source(Path(path), kind, fmt, size, detected_by)
    window = window or PrefetchWindow(config.prefetch)
    path = os.fspath(source.path)
    check_file(path)  # missing / empty / unreadable, before anything else
    if source.kind is None or (source.kind is SourceKind.DOCUMENT and not config.documents):
        raise _unsupported(source)
    digest = file_sha256(path)
    if source.kind is SourceKind.DOCUMENT:
        yield from document_items(path, source.format or "text", digest, config, window, pool)
    elif source.kind is SourceKind.PDF:
        from mmrag.pipeline.ingest.pdf import pdf_items

        yield from pdf_items(path, config, window=window, pool=pool, sha256=digest)
    elif source.kind is SourceKind.IMAGE:
        from mmrag.pipeline.ingest.images import image_items

        yield from image_items(path, config, window=window, sha256=digest)
    else:
        from mmrag.pipeline.ingest.video import video_items

        yield from video_items(path, config, window=window, sha256=digest)


def document_items(
    path: str,
    fmt: str,
    digest: str,
    config: IngestConfig,
    window: PrefetchWindow,
    pool: PdfRenderPool | None = None,
) -> Iterator[Item]:
    """The pages of a text, Markdown, HTML or Office document: converted to PDF (cached by
    content hash), read as PDF pages, with ``path`` as their source and its hash."""
    from mmrag.pipeline.ingest.documents import converted_pdf
    from mmrag.pipeline.ingest.pdf import pdf_items

    pdf = converted_pdf(path, fmt, digest, config)
    for item in pdf_items(pdf, config, window=window, pool=pool, sha256=digest):
        details = {**item.details, "converted_from": fmt}
        details.pop("title", None)
        yield dataclasses.replace(item, source=path, details=details)


def _record(report: IndexReport | None, source: object, error: IngestError) -> None:
    if report is not None:
        report.add_failure(str(source), error)
    logger.warning(
        "Skipping %s: %s",
        source,
        error.reason,
        extra={"source": str(source), "reason": error.reason, "error_type": type(error).__name__},
    )


def iter_items(
    sources: Iterable[str | os.PathLike[str] | Source] | str | os.PathLike[str],
    config: IngestConfig | None = None,
    *,
    report: IndexReport | None = None,
    strict: bool = False,
    skip: Callable[[Source], bool] | None = None,
) -> Iterator[Item]:
    """Stream the Items of many files: PDF pages, images (or their frames), video frames.

    ``sources`` are paths, directories (walked recursively), glob patterns, or
    :class:`~mmrag.pipeline.ingest.discovery.Source` objects from
    :func:`~mmrag.pipeline.ingest.discovery.discover`; a single path works too. Items come in
    input order, then natural path order within a directory, then page / frame order.

    With ``strict=False`` (the default) a file that fails is recorded in ``report`` (when
    given) with the error's reason, logged as a warning naming the file, and skipped; a file
    that fails part-way keeps the Items already yielded. With ``strict=True`` the typed error
    (a :class:`mmrag.errors.IngestError`) propagates. ``skip(source)`` returning ``True`` passes
    over a file before it is opened (a resumed job skips documents it has stored completely).

    Example:
        >>> from mmrag.pipeline.ingest import IngestConfig, iter_items
        >>> from mmrag.types import IndexReport
        >>> report = IndexReport()
        >>> for item in iter_items(["reports/", "clips/*.mp4"], IngestConfig(dpi=100),
        ...                        report=report):  # doctest: +SKIP
        ...     image = item.load_image()
        >>> [(f.source, f.reason) for f in report.failed]  # doctest: +SKIP
        [('reports/broken.pdf', 'the PDF is truncated: ...')]
    """
    config = config or IngestConfig()
    window = PrefetchWindow(config.prefetch)
    pool = None
    seen: set[str] = set()
    passed: set[str] = set()  # unsupported files skipped
    try:
        for entry in as_inputs(sources):
            try:
                found = [entry] if isinstance(entry, Source) else expand(entry)
            except IngestError as err:
                if strict:
                    raise
                _record(report, err.source, err)
                continue
            for source in found:
                key = os.path.realpath(source.path)
                if key in seen:
                    continue
                if (
                    not source.explicit
                    and not config.fail_unsupported
                    and (is_unsupported(source) or _documents_off(source, config))
                ):
                    if key not in passed:  # not `seen`: named explicitly later, it fails
                        passed.add(key)
                        error = _unsupported(source)
                        logger.info("Passing over %s: %s", source.path, error.reason)
                        if report is not None:
                            report.add_unsupported(os.fspath(source.path), error)
                    continue
                seen.add(key)
                if skip is not None and skip(source):
                    continue
                if (
                    pool is None
                    and source.kind is SourceKind.PDF
                    and config.workers > 0
                    and config.prefetch > 0
                ):
                    from mmrag.pipeline.ingest.pdf_pool import PdfRenderPool

                    pool = PdfRenderPool(config.workers, start_method=config.worker_start_method)
                try:
                    yield from iter_source(source, config, window=window, pool=pool)
                except IngestError as err:
                    if strict:
                        raise
                    _record(report, source.path, err)
    finally:
        if pool is not None:
            pool.close()


def _documents_off(source: Source, config: IngestConfig) -> bool:
    return source.kind is SourceKind.DOCUMENT and not config.documents
