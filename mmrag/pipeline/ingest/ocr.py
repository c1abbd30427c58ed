"""OCR for pages, images and video frames without a text layer, with Tesseract.

``ingest.ocr`` chooses when it runs: ``"off"`` (the default), ``"on"`` (every page, image and
frame; a PDF page's text layer is replaced) or ``"auto"`` (only where there is no text layer:
scanned PDF pages, images, video frames). The recognised text becomes ``Item.text``, so it feeds
the BM25 text channel exactly like a PDF text layer, and the words with their boxes go to
``Item.details["words"]`` as ``[[x0, y0, x1, y1, "word"], ...]`` in the page's own coordinates
(PDF points for PDF pages, pixels of the Item's image for images and frames), with
``details["text_source"] = "ocr"``.

Tesseract runs as a subprocess (``tesseract`` on ``PATH``: Debian/Ubuntu ``apt-get install
tesseract-ocr``, macOS ``brew install tesseract``); its models come with the system package, and
nothing is downloaded at run time. Each call is single-threaded (``OMP_THREAD_LIMIT=1``), which is
faster than Tesseract's own threading on a busy machine and lets the PDF worker processes
(``ingest.workers``) run pages side by side.

Example:
    >>> from PIL import Image, ImageDraw
    >>> from mmrag.pipeline.ingest.ocr import ocr_image, ocr_wanted
    >>> ocr_wanted("auto", "a text layer"), ocr_wanted("auto", "  "), ocr_wanted("off", None)
    (False, True, False)
    >>> image = Image.new("RGB", (400, 80), "white")
    >>> ImageDraw.Draw(image).text((10, 20), "Hello", fill="black", font_size=40)
    >>> result = ocr_image(image)  # doctest: +SKIP
    >>> result.text, result.words[0][4]  # doctest: +SKIP
    ('Hello', 'Hello')
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from mmrag.errors import MissingDependencyError

__all__ = [
    "OCR_HINT",
    "OcrMode",
    "OcrResult",
    "apply_ocr",
    "ocr_available",
    "ocr_image",
    "ocr_wanted",
    "require_ocr",
]

logger = logging.getLogger(__name__)

OcrMode = Literal["off", "on", "auto"]

#: What to do when Tesseract is missing.
OCR_HINT = (
    "OCR needs the Tesseract program on PATH: `apt-get install tesseract-ocr` (Debian, Ubuntu), "
    "`brew install tesseract` (macOS), or set ingest.ocr = 'off' (or 'auto', which skips OCR "
    "when Tesseract is missing)"
)

_MIN_CONFIDENCE = 30.0  # Tesseract's word confidence (0-100) below which a word is noise
_warned_missing = False


@dataclass(frozen=True)
class OcrResult:
    """The text Tesseract read in an image: ``text`` (lines joined by newlines, paragraphs by a
    blank line) and ``words`` (``[x0, y0, x1, y1, word]``, boxes divided by the ``scale`` given
    to :func:`ocr_image`, rounded to 0.1).

    Example:
        >>> OcrResult("Hello world", [[10.0, 5.0, 40.0, 15.0, "Hello"]]).text
        'Hello world'
    """

    text: str
    words: list[list[Any]] = field(default_factory=list)


def ocr_wanted(mode: str, text: str | None) -> bool:
    """Whether OCR should run on a page whose text layer is ``text`` (None: it has none)."""
    if mode == "on":
        return True
    return mode == "auto" and not (text and text.strip())


def ocr_available() -> bool:
    """Whether the ``tesseract`` program is on ``PATH``."""
    return shutil.which("tesseract") is not None


def require_ocr(mode: str) -> bool:
    """Check that OCR can run in ``mode``: whether it will run at all.

    ``"on"`` without Tesseract raises :class:`~mmrag.errors.MissingDependencyError` with the
    install hint; ``"auto"`` without it logs the hint once and returns False.
    """
    global _warned_missing
    if mode == "off":
        return False
    if ocr_available():
        return True
    if mode == "on":
        raise MissingDependencyError(f"ingest.ocr = 'on': {OCR_HINT}")
    if not _warned_missing:
        _warned_missing = True
        logger.warning("ingest.ocr = 'auto' does nothing: %s", OCR_HINT)
    return False


def ocr_image(
    image: Image.Image, languages: str = "eng", *, scale: float = 1.0, dpi: int | None = None
) -> OcrResult:
    """Read the text of ``image`` with Tesseract; word boxes in pixels divided by ``scale``.

    ``dpi``: the image's resolution when known (a rendered PDF page), else Tesseract estimates it.
    Raises :class:`~mmrag.errors.MissingDependencyError` when Tesseract is not installed.
    """
    exe = shutil.which("tesseract")
    if exe is None:
        raise MissingDependencyError(OCR_HINT)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG", compress_level=1)
    command = [exe, "stdin", "stdout", "-l", languages]
    if dpi:
        command += ["--dpi", str(int(dpi))]
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    done = subprocess.run(
        [*command, "tsv"], input=buffer.getvalue(), capture_output=True, env=env, check=False
    )
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"tesseract failed: {message[-1] if message else done.returncode}")
    return _parse_tsv(done.stdout.decode("utf-8", errors="replace"), scale)


def _parse_tsv(tsv: str, scale: float) -> OcrResult:
    words: list[list[Any]] = []
    lines: list[str] = []
    current: list[str] = []
    key: tuple[str, str, str] | None = None
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5":  # level 5: a word
            continue
        word = cells[11].strip()
        try:
            confidence = float(cells[10])
        except ValueError:
            continue
        if not word or confidence < _MIN_CONFIDENCE or not any(c.isalnum() for c in word):
            continue
        line_key = (cells[2], cells[3], cells[4])  # block, paragraph, line
        if key is not None and line_key != key:
            lines.append(" ".join(current))
            if line_key[:2] != key[:2]:
                lines.append("")  # a new paragraph
            current = []
        key = line_key
        current.append(word)
        left, top, width, height = (int(c) for c in cells[6:10])
        words.append(
            [
                round(left / scale, 1),
                round(top / scale, 1),
                round((left + width) / scale, 1),
                round((top + height) / scale, 1),
                word,
            ]
        )
    if current:
        lines.append(" ".join(current))
    return OcrResult("\n".join(lines).strip(), words)


def apply_ocr(
    image: Image.Image,
    details: dict[str, Any],
    languages: str = "eng",
    *,
    scale: float = 1.0,
    dpi: int | None = None,
) -> str | None:
    """OCR ``image``, record its words in ``details``; the text (None when nothing was read)."""
    result = ocr_image(image, languages, scale=scale, dpi=dpi)
    details["text_source"] = "ocr"
    details["words"] = result.words
    return result.text or None
