"""Text, Markdown, HTML and Office documents become PDF pages, then go the PDF way.

A plain-text, Markdown or HTML file is laid out on A4 pages with PyMuPDF's
:class:`pymupdf.Story` (HTML and CSS layout, MuPDF's fallback fonts for non-Latin scripts):
Markdown is converted to HTML first (the ``markdown`` package when installed, else
``markdown-it-py``, else shown as preformatted text), plain text is shown preformatted. An Office
document (.docx, .pptx, .xlsx, .odt, .odp, .ods, .doc, .ppt, .xls, .rtf) is converted by
LibreOffice in headless mode (``soffice --headless --convert-to pdf``) when it is installed;
without it, the file is not supported and the reason names the package to install.

The PDF is written once per content, in a cache folder keyed by the file's SHA-256 (see
:func:`cache_dir`), so indexing the file again does not convert it again. The Items keep the
original file as their source (its canonical path) and its hash, with pages as locators, the
page text layer as ``text`` and ``details["converted_from"]`` naming the format.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> from mmrag.pipeline.ingest.documents import render_text_pdf
    >>> out = Path(tempfile.mkdtemp()) / "notes.pdf"
    >>> render_text_pdf("Revenue grew 12 % in 2024.", out, "text")
    1
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mmrag.pipeline.ingest.errors import CorruptFileError

if TYPE_CHECKING:
    from mmrag.pipeline.ingest.options import IngestConfig

__all__ = [
    "OFFICE_FORMATS",
    "TEXT_FORMATS",
    "cache_dir",
    "converted_pdf",
    "describe_document",
    "document_format",
    "find_soffice",
    "render_text_pdf",
]

logger = logging.getLogger(__name__)

TextFormat = Literal["text", "markdown", "html"]

#: Text files rendered to pages, by extension.
TEXT_FORMATS: dict[str, TextFormat] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdown": "markdown",
    ".mkd": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
}

#: Office documents converted by LibreOffice, by extension; the container they are in.
OFFICE_FORMATS: dict[str, tuple[str, str]] = {
    ".docx": ("docx", "zip"),
    ".docm": ("docx", "zip"),
    ".pptx": ("pptx", "zip"),
    ".ppsx": ("pptx", "zip"),
    ".xlsx": ("xlsx", "zip"),
    ".odt": ("odt", "zip"),
    ".odp": ("odp", "zip"),
    ".ods": ("ods", "zip"),
    ".doc": ("doc", "ole"),
    ".ppt": ("ppt", "ole"),
    ".xls": ("xls", "ole"),
    ".rtf": ("rtf", "rtf"),
}

#: The Debian / Ubuntu package with the LibreOffice part that converts each format.
_PACKAGES = {
    **dict.fromkeys(("docx", "odt", "doc", "rtf"), "libreoffice-writer-nogui"),
    **dict.fromkeys(("pptx", "odp", "ppt"), "libreoffice-impress-nogui"),
    **dict.fromkeys(("xlsx", "ods", "xls"), "libreoffice-calc-nogui"),
}
_NAMES = {
    "text": "a plain-text file",
    "markdown": "a Markdown file",
    "html": "an HTML page",
    "docx": "a Word document",
    "doc": "an old Word document",
    "odt": "an OpenDocument text",
    "rtf": "an RTF document",
    "pptx": "a PowerPoint presentation",
    "ppt": "an old PowerPoint presentation",
    "odp": "an OpenDocument presentation",
    "xlsx": "an Excel workbook",
    "xls": "an old Excel workbook",
    "ods": "an OpenDocument spreadsheet",
}
_ODF = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
}

#: Bump when the rendering of text documents changes (a new cache entry per version).
_RENDER_VERSION = 1


def document_format(container: str | None, suffix: str, head: bytes, is_text: bool) -> str | None:
    """The document format of a file (``"markdown"``, ``"docx"`` …) or ``None``.

    ``container`` is what the first bytes showed (``"zip"``, ``"ole"``, ``"rtf"``, or ``None``
    when not recognised), ``suffix`` the lower-case extension, ``is_text`` whether the first
    bytes decode as UTF-8 text.

    Example:
        >>> document_format(None, ".md", b"# Title", True)
        'markdown'
        >>> document_format("zip", ".docx", b"PK\\x03\\x04", False)
        'docx'
        >>> document_format(None, ".py", b"import os", True) is None
        True
    """
    if container == "rtf":
        return "rtf"
    if container == "zip":
        for mime, fmt in _ODF.items():
            if mime in head[:200]:
                return fmt
    if container in ("zip", "ole"):
        office = OFFICE_FORMATS.get(suffix)
        return office[0] if office is not None and office[1] == container else None
    if container is None and is_text:
        if suffix in TEXT_FORMATS:
            return TEXT_FORMATS[suffix]
        start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:15].lower()
        if start.startswith((b"<!doctype html", b"<html")):
            return "html"
    return None


def is_office(fmt: str | None) -> bool:
    """Whether ``fmt`` is converted by LibreOffice."""
    return fmt in _PACKAGES


def find_soffice() -> str | None:
    """The LibreOffice executable: ``$MMRAG_SOFFICE``, else ``soffice`` or ``libreoffice`` on
    ``PATH``, else the macOS application bundle; ``None`` when it is not installed."""
    candidates = [os.environ.get("MMRAG_SOFFICE") or "", "soffice", "libreoffice"]
    for name in candidates:
        found = shutil.which(name) if name else None
        if found:
            return found
    bundle = "/Applications/LibreOffice.app/Contents/MacOS/soffice"
    return bundle if os.path.isfile(bundle) and os.access(bundle, os.X_OK) else None


def describe_document(fmt: str, *, available: bool = True) -> str:
    """A plain-words name of a document format; when it is not ``available`` (no LibreOffice),
    what to install.

    Example:
        >>> describe_document("pptx", available=False)  # doctest: +ELLIPSIS
        'a PowerPoint presentation (.pptx), which mmrag converts to PDF with LibreOffice: ...'
    """
    name = f"{_NAMES.get(fmt, f'a {fmt} document')} (.{fmt})"
    if available or not is_office(fmt):
        return name
    return (
        f"{name}, which mmrag converts to PDF with LibreOffice: it is not installed (install it, "
        f"e.g. `apt-get install {_PACKAGES[fmt]}` on Debian / Ubuntu or from libreoffice.org, "
        "or set MMRAG_SOFFICE to its soffice program), or export the document to PDF"
    )


# -- the cache -----------------------------------------------------------------------------------


def cache_dir(config: IngestConfig | None = None) -> Path:
    """Where converted PDFs are kept: ``ingest.convert_cache``, else ``$MMRAG_CACHE_DIR/
    converted``, else ``$XDG_CACHE_HOME/mmrag/converted``, else ``~/.cache/mmrag/converted``."""
    if config is not None and config.convert_cache:
        return Path(config.convert_cache).expanduser()
    root = os.environ.get("MMRAG_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "converted"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "mmrag" / "converted"


def converted_pdf(path: str, fmt: str, sha256: str, config: IngestConfig) -> str:
    """The PDF of the document at ``path`` (content hash ``sha256``), converted on first use
    and then taken from the cache.

    Raises:
        CorruptFileError: the document cannot be decoded or converted (the reason says why).
    """
    folder = cache_dir(config)
    tag = "office" if is_office(fmt) else f"r{_RENDER_VERSION}"
    target = folder / f"{sha256}.{fmt}.{tag}.pdf"
    if target.is_file() and target.stat().st_size > 0:
        logger.debug("%s: converted PDF taken from the cache (%s)", path, target)
        return str(target)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CorruptFileError(
            path, f"cannot create the conversion cache {folder} ({err}); set ingest.convert_cache"
        ) from err
    with tempfile.TemporaryDirectory(prefix="convert-", dir=folder) as work:
        if is_office(fmt):
            out = _office_to_pdf(path, fmt, Path(work), config.office_timeout_s)
        else:
            out = Path(work) / "out.pdf"
            render_text_pdf(_read_text(path), out, fmt, base=os.path.dirname(path), source=path)
        os.replace(out, target)
    logger.info("%s: converted %s to PDF (%s)", path, fmt, target)
    return str(target)


def data_sha256(data: bytes) -> str:
    """The SHA-256 of some bytes (hex)."""
    return hashlib.sha256(data).hexdigest()


# -- text, Markdown and HTML ---------------------------------------------------------------------

_CSS = """
body { font-family: sans-serif; font-size: 11pt; line-height: 1.35; }
pre, code { font-family: monospace; font-size: 9.5pt; }
pre { white-space: pre-wrap; }
table { border-collapse: collapse; }
td, th { border: 0.5pt solid #888; padding: 2pt 4pt; }
h1 { font-size: 18pt; } h2 { font-size: 15pt; } h3 { font-size: 13pt; }
"""
_PAGE = (595.0, 842.0)  # A4, in points
_MARGIN = 54.0  # 3/4 inch
_COLUMNS = 84  # monospace 9.5 pt characters in the text width


def _read_text(path: str) -> str:
    with open(path, "rb") as handle:
        data = handle.read()
    return decode_text(data, path)


def decode_text(data: bytes, source: str) -> str:
    """Text from bytes: UTF-8 (a byte-order mark is dropped), else Windows-1252."""
    if b"\x00" in data[:4096]:
        raise CorruptFileError(source, "this is binary data, not text (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _wrap(text: str) -> str:
    """Plain text with long lines broken at the page width (a long word too)."""
    lines = []
    for line in text.expandtabs(4).splitlines():
        if len(line) <= _COLUMNS:
            lines.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())][: _COLUMNS // 2]
        lines.extend(
            textwrap.wrap(
                line,
                _COLUMNS,
                subsequent_indent=indent,
                break_long_words=True,
                break_on_hyphens=False,
            )
            or [""]
        )
    return "\n".join(lines)


def _markdown_html(text: str) -> str:
    try:
        import markdown

        return markdown.markdown(text, extensions=["tables", "fenced_code", "sane_lists"])
    except ImportError:
        pass
    try:
        from markdown_it import MarkdownIt

        return MarkdownIt("commonmark").enable("table").render(text)
    except ImportError:
        return f"<pre>{html.escape(_wrap(text))}</pre>"


def render_text_pdf(
    text: str,
    out: str | os.PathLike[str],
    fmt: TextFormat,
    *,
    base: str | None = None,
    source: str | None = None,
) -> int:
    """Lay out ``text`` (plain text, Markdown or HTML) on A4 pages and write the PDF to
    ``out``; returns the page count. ``base``: the folder relative images of HTML are read
    from (nothing is fetched from the network)."""
    import pymupdf

    if fmt == "html":
        body = text
    elif fmt == "markdown":
        body = _markdown_html(text)
    else:
        body = f"<pre>{html.escape(_wrap(text))}</pre>"
    width, height = _PAGE
    page = pymupdf.Rect(0, 0, width, height)
    box = pymupdf.Rect(_MARGIN, _MARGIN, width - _MARGIN, height - _MARGIN)
    pages = 0
    try:
        story = pymupdf.Story(html=body, user_css=_CSS, archive=base)
        writer = pymupdf.DocumentWriter(os.fspath(out))
        try:
            more = 1
            while more:
                device = writer.begin_page(page)
                more, _ = story.place(box)
                story.draw(device)
                writer.end_page()
                pages += 1
        finally:
            writer.close()
    except (RuntimeError, ValueError) as err:
        reason = f"cannot lay out the {fmt} as pages ({err})"
        raise CorruptFileError(source or "<text>", reason) from err
    return pages


# -- Office documents through LibreOffice ---------------------------------------------------------


def _office_to_pdf(path: str, fmt: str, work: Path, timeout_s: float) -> Path:
    """Convert with ``soffice --headless --convert-to pdf`` in ``work`` (its own profile, so
    conversions can run side by side); the PDF's path."""
    soffice = find_soffice()
    if soffice is None:
        from mmrag.pipeline.ingest.errors import UnsupportedTypeError

        raise UnsupportedTypeError(
            path, f"unsupported file type: this is {describe_document(fmt, available=False)}"
        )
    source = work / f"document{Path(path).suffix.lower() or '.' + fmt}"
    shutil.copyfile(path, source)  # a plain name: LibreOffice names its output after it
    profile = (work / "profile").as_uri()
    command = [
        soffice,
        "--headless",
        "--norestore",
        "--nologo",
        "--nolockcheck",
        f"-env:UserInstallation={profile}",
        "--convert-to",
        "pdf",
        "--outdir",
        str(work / "out"),
        str(source),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its helper processes are ended with it on a timeout
        cwd=work,
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise CorruptFileError(
            path,
            f"LibreOffice did not convert it within {timeout_s:g} s; raise "
            "ingest.office_timeout_s or export the document to PDF",
        ) from None
    result = work / "out" / f"{source.stem}.pdf"
    if process.returncode != 0 or not result.is_file() or result.stat().st_size == 0:
        said = output.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise CorruptFileError(
            path,
            f"LibreOffice could not convert it to PDF (exit status {process.returncode}"
            + (f": {' '.join(said)}" if said else "")
            + "); the file may be damaged or password-protected",
        )
    return result


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        process.kill()
    process.communicate()
