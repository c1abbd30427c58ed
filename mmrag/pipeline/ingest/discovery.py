"""Find the files to ingest and decide what each one is, from its content.

:func:`discover` expands paths, directories (recursively) and glob patterns into a list of
:class:`Source` objects in a stable order: the order of the inputs, and within a directory or
glob, "natural" path order (``scan2.png`` before ``scan10.png``). Hidden files and folders
(``.name``), temporary and partial files (``~$doc.docx``, ``x.pdf.part``, ``.crdownload``,
``.tmp``, editor backups ``name~``) and OS clutter (``Thumbs.db``, ``__MACOSX``) are skipped when
walking a directory or glob; a file named explicitly is always taken. The same file reached twice
is listed once.

The type is decided by the first bytes (magic numbers): a PDF named ``scan.jpg`` is a PDF. The
extension is only a fallback when the content is not recognised (so a damaged ``.pdf`` still goes
to the PDF reader, which then explains what is wrong with it), and tells the text documents
(``.txt``, ``.md``, ``.html``) and the Office documents in a ZIP or OLE container (``.docx``,
``.pptx``, ``.xlsx``, ``.doc`` …) apart: :mod:`mmrag.pipeline.ingest.documents` turns those into
PDF pages. An Office document is a supported type only where LibreOffice is installed.

Example:
    >>> from mmrag.pipeline.ingest.discovery import discover
    >>> for source in discover(["reports/", "photos/*.jpg"]):  # doctest: +SKIP
    ...     print(source.path, source.kind, source.format)
    reports/annual.pdf pdf pdf
    photos/cat.jpg image jpeg
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal

from mmrag.pipeline.ingest.documents import (
    OFFICE_FORMATS,
    TEXT_FORMATS,
    describe_document,
    document_format,
    find_soffice,
    is_office,
)
from mmrag.pipeline.ingest.errors import SourceNotFoundError
from mmrag.types import canonical_source

__all__ = [
    "Source",
    "SourceKind",
    "describe_format",
    "detect_kind",
    "discover",
    "expand",
    "is_skipped_name",
    "is_unsupported",
]

_SNIFF_BYTES = 1024


class SourceKind(str, Enum):
    """Which reader handles a source."""

    PDF = "pdf"
    IMAGE = "image"
    VIDEO = "video"  # any audio/video container; one without a video stream is an error
    DOCUMENT = "document"  # text, Markdown, HTML, Office: converted to PDF pages

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Source:
    """One file to ingest: its canonical path (absolute, normalised, symlinks resolved: see
    :func:`mmrag.types.canonical_source`), what it is, and how that was decided.

    ``kind`` is ``None`` when the file is not a supported type (``format`` then says what it
    seems to be, e.g. ``"zip"``, ``"text"``, or ``"docx"`` where LibreOffice is not installed),
    or when it is empty or unreadable.

    Example:
        >>> from pathlib import Path
        >>> Source(Path("a.pdf"), SourceKind.PDF, "pdf", 1234, "content").kind
        <SourceKind.PDF: 'pdf'>
    """

    path: Path
    kind: SourceKind | None
    format: str | None
    size: int
    detected_by: Literal["content", "extension", "none"]
    explicit: bool = True

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __str__(self) -> str:
        return os.fspath(self.path)


# -- what a file is ------------------------------------------------------------------------------

_EXTENSIONS: dict[str, tuple[SourceKind, str]] = {
    ".pdf": (SourceKind.PDF, "pdf"),
    **{
        ext: (SourceKind.IMAGE, fmt)
        for ext, fmt in {
            ".jpg": "jpeg",
            ".jpeg": "jpeg",
            ".jpe": "jpeg",
            ".jfif": "jpeg",
            ".png": "png",
            ".gif": "gif",
            ".webp": "webp",
            ".tif": "tiff",
            ".tiff": "tiff",
            ".bmp": "bmp",
            ".dib": "bmp",
            ".jp2": "jpeg2000",
            ".avif": "avif",
        }.items()
    },
    **{
        ext: (SourceKind.VIDEO, ext.lstrip("."))
        for ext in (
            ".mp4",
            ".m4v",
            ".mov",
            ".mkv",
            ".webm",
            ".avi",
            ".wmv",
            ".asf",
            ".flv",
            ".mpg",
            ".mpeg",
            ".m2ts",
            ".mts",
            ".ts",
            ".3gp",
            ".ogv",
            ".vob",
        )
    },
}

#: Extensions of the text and Office documents (an empty one is a failure, not unsupported).
_DOCUMENT_SUFFIXES = set(TEXT_FORMATS) | set(OFFICE_FORMATS)

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def _sniff(head: bytes) -> tuple[SourceKind | None, str] | None:
    """``(kind, format)`` from the first bytes of a file, or ``None`` if not recognised."""
    if b"%PDF-" in head[:_SNIFF_BYTES]:
        return SourceKind.PDF, "pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return SourceKind.IMAGE, "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return SourceKind.IMAGE, "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return SourceKind.IMAGE, "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return SourceKind.IMAGE, "tiff"
    if head.startswith(b"BM") and len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00":
        return SourceKind.IMAGE, "bmp"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return SourceKind.IMAGE, "jpeg2000"
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff = head[8:12]
        if riff == b"WEBP":
            return SourceKind.IMAGE, "webp"
        if riff == b"AVI ":
            return SourceKind.VIDEO, "avi"
        if riff == b"WAVE":
            return SourceKind.VIDEO, "wav"  # audio only: the video reader says so
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return SourceKind.IMAGE, "avif"
        if brand in _HEIF_BRANDS:
            return None, "heif"
        return SourceKind.VIDEO, "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return SourceKind.VIDEO, "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return SourceKind.VIDEO, "matroska"
    if head.startswith(b"FLV\x01"):
        return SourceKind.VIDEO, "flv"
    if head.startswith(b"OggS"):
        return SourceKind.VIDEO, "ogg"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return SourceKind.VIDEO, "asf"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return SourceKind.VIDEO, "mpeg"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return SourceKind.VIDEO, "mpegts"
    if head.startswith(b"ID3") or head.startswith(b"fLaC"):
        return SourceKind.VIDEO, "mp3" if head.startswith(b"ID3") else "flac"
    # Recognised, but not something mmrag reads:
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return None, "zip"
    if head.startswith(b"\x1f\x8b"):
        return None, "gzip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return None, "7z"
    if head.startswith(b"Rar!"):
        return None, "rar"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return None, "ole"
    if head.startswith(b"{\\rtf"):
        return None, "rtf"
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start >= len(head) - 4  # a character cut at the end of the sample
    return True


_FORMAT_NAMES = {
    "zip": "a ZIP archive",
    "gzip": "a gzip archive",
    "7z": "a 7-Zip archive",
    "rar": "a RAR archive",
    "ole": "an old Microsoft Office document (.doc/.xls/.ppt): export it to PDF first",
    "rtf": "an RTF document: export it to PDF first",
    "heif": "a HEIF/HEIC image, which Pillow cannot read: convert it to JPEG or PNG",
    "text": "a text file of a kind mmrag does not read (it reads .txt, .md and .html)",
    "unknown": "data of an unknown type",
}


def describe_format(fmt: str | None) -> str:
    """A plain-words name for a format that mmrag does not read (for error messages)."""
    if is_office(fmt):
        assert fmt is not None
        return describe_document(fmt, available=find_soffice() is not None)
    return _FORMAT_NAMES.get(fmt or "unknown", f"a {fmt} file")


def detect_kind(
    path: str | os.PathLike[str],
) -> tuple[SourceKind | None, str | None, Literal["content", "extension", "none"]]:
    """``(kind, format, detected_by)`` for a file, from its first bytes, else its extension.

    Text and Office documents are ``SourceKind.DOCUMENT`` (``format`` ``"text"``,
    ``"markdown"``, ``"html"``, ``"docx"`` …); an Office document where LibreOffice is not
    installed has kind ``None`` (not readable here).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "looks_like.jpg"
        >>> _ = p.write_bytes(b"%PDF-1.7\\n...")
        >>> detect_kind(p)
        (<SourceKind.PDF: 'pdf'>, 'pdf', 'content')
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError:
        return None, None, "none"  # reading it later raises the precise error
    if not head:
        return None, None, "none"
    sniffed = _sniff(head)
    suffix = Path(path).suffix.lower()
    if sniffed is None or sniffed[0] is None:
        is_text = sniffed is None and _looks_like_text(head)
        document = document_format(sniffed[1] if sniffed else None, suffix, head, is_text)
        if document is not None:
            how: Literal["content", "extension"] = "content" if sniffed else "extension"
            if is_office(document) and find_soffice() is None:
                return None, document, how
            return SourceKind.DOCUMENT, document, how
    if sniffed is not None:
        return sniffed[0], sniffed[1], "content"
    by_extension = _EXTENSIONS.get(suffix)
    if by_extension is not None:
        return by_extension[0], by_extension[1], "extension"
    return None, "text" if _looks_like_text(head) else "unknown", "none"


def is_unsupported(source: Source) -> bool:
    """Whether ``source`` is of a type mmrag does not read here: a README in a code folder,
    an archive, a ``.docx`` without LibreOffice. An empty file of a supported type by its
    extension (``empty.pdf``) is not: reading it fails with the precise reason."""
    if source.kind is not None:
        return False
    if source.size > 0:
        return True
    suffix = source.path.suffix.lower()
    return source.size == 0 and suffix not in _EXTENSIONS and suffix not in _DOCUMENT_SUFFIXES


# -- which files -----------------------------------------------------------------------------------

_TEMP_SUFFIXES = {
    ".part",
    ".partial",
    ".crdownload",
    ".download",
    ".tmp",
    ".temp",
    ".swp",
    ".swo",
    ".lock",
}
_CLUTTER = {"thumbs.db", "desktop.ini", "icon\r", "ehthumbs.db"}
_SKIPPED_DIRS = {"__macosx", "__pycache__"}
_GLOB_CHARS = re.compile(r"[*?\[]")
_DIGITS = re.compile(r"(\d+)")


#: A JSON file of user metadata beside a source: ``report.pdf`` → ``report.pdf.meta.json``.
SIDECAR_SUFFIX = ".meta.json"


def is_skipped_name(name: str) -> bool:
    """Whether a file found in a directory or glob is hidden, temporary or OS clutter, or a
    metadata sidecar (``*.meta.json``, read with its source, not indexed itself).

    Example:
        >>> [is_skipped_name(n) for n in (".x.pdf", "~$doc.pdf", "x.pdf.meta.json", "x.pdf")]
        [True, True, True, False]
    """
    lowered = name.lower()
    return (
        name.startswith((".", "~$", "~lock."))
        or name.endswith("~")
        or (name.startswith("#") and name.endswith("#"))
        or os.path.splitext(lowered)[1] in _TEMP_SUFFIXES
        or lowered in _CLUTTER
        or lowered.endswith(SIDECAR_SUFFIX)
    )


def _natural_key(path: str) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    parts = Path(path).parts
    return tuple(
        (
            *(
                (0, int(chunk)) if chunk.isdigit() else (1, chunk.casefold())
                for chunk in _DIGITS.split(part)
                if chunk
            ),
            (2, part),  # ties between case variants: a deterministic order all the same
        )
        for part in parts
    )


def _walk(root: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d.lower() not in _SKIPPED_DIRS]
        for name in files:
            if not is_skipped_name(name):
                found.append(os.path.join(folder, name))
    return sorted(found, key=_natural_key)


def _make_source(path: str, explicit: bool) -> Source:
    kind, fmt, detected_by = detect_kind(path)
    try:
        size = os.path.getsize(path)
    except OSError:
        size = -1
    return Source(Path(canonical_source(path)), kind, fmt, size, detected_by, explicit)


def expand(source: str | os.PathLike[str]) -> list[Source]:
    """The files one input stands for: itself, a directory's files, or a glob's matches.

    Raises:
        SourceNotFoundError: the path does not exist, or the pattern matches nothing.
    """
    text = os.fspath(source)
    if os.path.isdir(text):
        return [_make_source(path, explicit=False) for path in _walk(text)]
    if os.path.lexists(text):
        return [_make_source(text, explicit=True)]
    if _GLOB_CHARS.search(text):
        matches = sorted(glob.glob(text, recursive=True), key=_natural_key)
        paths: list[str] = []
        for match in matches:
            if os.path.isdir(match):
                paths.extend(_walk(match))
            elif not is_skipped_name(os.path.basename(match)):
                paths.append(match)
        if not paths:
            raise SourceNotFoundError(text, "the pattern matches no file")
        return [_make_source(path, explicit=False) for path in paths]
    raise SourceNotFoundError(text)


def as_inputs(
    sources: Iterable[str | os.PathLike[str] | Source] | str | os.PathLike[str] | Source,
) -> list[str | os.PathLike[str] | Source]:
    """Accept one path as well as an iterable of them (a bare string is one path)."""
    if isinstance(sources, (str, os.PathLike, Source)):
        return [sources]
    return list(sources)


def discover(
    sources: Iterable[str | os.PathLike[str] | Source] | str | os.PathLike[str],
) -> list[Source]:
    """Expand paths, directories and globs into the files to ingest, in a stable order.

    Each file appears once (the first time it is reached). Files of unsupported type are
    listed too, with ``kind=None``, so the caller can report them.

    Raises:
        SourceNotFoundError: an input does not exist or a pattern matches nothing
            (:func:`~mmrag.pipeline.ingest.iter_items` reports these and carries on instead).

    Example:
        >>> from mmrag.pipeline.ingest import discover
        >>> [s.path.name for s in discover(["docs/"])]  # doctest: +SKIP
        ['intro.pdf', 'scan2.png', 'scan10.png']
    """
    seen: set[str] = set()
    out: list[Source] = []
    for item in as_inputs(sources):
        for source in [item] if isinstance(item, Source) else expand(item):
            key = os.path.realpath(source.path)
            if key not in seen:
                seen.add(key)
                out.append(source)
    return out
