"""Items from memory: bytes, PIL images, text and LangChain ``Document`` objects.

What :meth:`mmrag.pipeline.pipeline.Pipeline.index_data` indexes. Each entry becomes a source
named ``memory://<name>`` (the canonical form: the name as given after the scheme, never
resolved as a path), with the SHA-256 of its content, so the point ids follow the same rules as
a file's: the same name and content give the same ids (indexing again skips them), new content
under a name replaces what the name held, and the name deletes it
(``pipe.delete("memory://<name>")``).

============================  =========================================================
entry                         becomes
============================  =========================================================
``(name, bytes)``             the file those bytes are: PDF pages, an image (or its
                              frames), video frames, or a text / Markdown / HTML / Office
                              document's pages (the name's extension helps tell text
                              formats apart: ``notes.md``)
``(name, PIL.Image)``         one image (``modality="image"``)
``PIL.Image``                 one image named after its ``filename``, else
                              ``image-<first 16 hex digits of its pixel hash>``
``(name, str)``               a plain-text document, laid out on pages (text layer kept)
LangChain ``Document``        its ``page_content`` as a plain-text document; named by its
                              ``id``, else ``document-<first 16 hex digits of the text's
                              hash>``; its ``metadata`` become the items' own fields
============================  =========================================================

Bytes and text go through the same readers as files (written to a private folder that lives as
long as the :class:`DataIngest`); a PIL image is used as it is (converted to RGB). Office
documents given as bytes are converted once (the shared conversion cache); text given as a
string or a Document is laid out in the private folder, leaving no file behind.

Example:
    >>> from PIL import Image
    >>> from mmrag.pipeline.ingest.memory import DataIngest
    >>> from mmrag.types import IndexReport
    >>> report = IndexReport()
    >>> with DataIngest([("red.png", Image.new("RGB", (8, 4), "red"))]) as data:
    ...     [(item.source, item.modality.value, item.width) for item in data.items(report)]
    [('memory://red.png', 'image', 8)]
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import IngestError
from mmrag.fields import check_metadata
from mmrag.pipeline.ingest.errors import UnsupportedTypeError
from mmrag.pipeline.ingest.options import IngestConfig
from mmrag.types import IndexReport, Item, Modality

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["MEMORY_SCHEME", "DataIngest", "memory_source"]

#: The scheme of sources indexed from memory.
MEMORY_SCHEME = "memory://"

_MAX_NAME = 1024


def memory_source(name: str) -> str:
    """The canonical source of an entry named ``name``: ``memory://<name>`` (a name that
    already starts with ``memory://`` is kept).

    Example:
        >>> memory_source("reports/q1.pdf"), memory_source("memory://q1.pdf")
        ('memory://reports/q1.pdf', 'memory://q1.pdf')
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an entry's name must be a non-empty string, got {name!r}")
    if name.startswith(MEMORY_SCHEME):
        name = name[len(MEMORY_SCHEME) :]
    if len(name) > _MAX_NAME or any(ord(c) < 32 for c in name) or not name.strip():
        raise ValueError(
            f"an entry's name must be 1-{_MAX_NAME} printable characters, got {name[:80]!r}"
        )
    return MEMORY_SCHEME + name


@dataclasses.dataclass(frozen=True)
class _Entry:
    source: str
    payload: bytes | Image.Image
    suffix: str = ""
    metadata: Mapping[str, Any] | None = None
    text: bool = False  # given as text: its pages are laid out again, not cached on disk


def _is_image(value: object) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(value, Image.Image)


def _is_document(value: object) -> bool:
    return isinstance(getattr(value, "page_content", None), str) and isinstance(
        getattr(value, "metadata", None), Mapping
    )


def _pixel_sha256(image: Image.Image) -> str:
    digest = hashlib.sha256(f"{image.mode};{image.width}x{image.height};".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def _entry(value: object) -> _Entry:
    """One input as an entry (a ``TypeError`` names what is accepted)."""
    if _is_document(value):
        text: str = value.page_content  # type: ignore[attr-defined]
        data = text.encode("utf-8")
        name = getattr(value, "id", None) or f"document-{hashlib.sha256(data).hexdigest()[:16]}"
        fields = {k: v for k, v in value.metadata.items() if v is not None}  # type: ignore[attr-defined]
        return _Entry(memory_source(str(name)), data, ".txt", fields, text=True)
    if _is_image(value):
        filename = os.path.basename(getattr(value, "filename", "") or "")
        name = filename or f"image-{_pixel_sha256(value)[:16]}"  # type: ignore[arg-type]
        return _Entry(memory_source(name), value)  # type: ignore[arg-type]
    if isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[0], str):
        name, payload = value
        source = memory_source(name)
        suffix = Path(name).suffix.lower()
        if isinstance(payload, bytes | bytearray | memoryview):
            return _Entry(source, bytes(payload), suffix)
        if isinstance(payload, str):
            return _Entry(source, payload.encode("utf-8"), suffix or ".txt", text=True)
        if _is_image(payload):
            return _Entry(source, payload)
    raise TypeError(
        "index_data takes (name, bytes), (name, str) or (name, PIL.Image) pairs, PIL images and "
        f"LangChain Documents; got {type(value).__name__}"
    )


class DataIngest:
    """Items from in-memory entries (see the module doc), with the private folder their bytes
    are read from; use it as a context manager (the folder is removed on exit).

    ``metadata_of(source)`` gives the fields a LangChain ``Document`` brought (checked: a
    ``None`` value is left out; anything else a filter cannot store fails the entry).

    Example:
        >>> from mmrag.pipeline.ingest.memory import DataIngest
        >>> from mmrag.types import IndexReport
        >>> with DataIngest([("notes.txt", "The zebra count rose.")]) as data:
        ...     [item.citation() for item in data.items(IndexReport())]
        ['memory://notes.txt p.1']
    """

    def __init__(self, data: Iterable[Any], config: IngestConfig | None = None) -> None:
        self._data = data
        self.config = config or IngestConfig()
        self._folder: Path | None = None
        self._metadata: dict[str, dict[str, Any]] = {}
        self.sources: set[str] = set()

    def __enter__(self) -> DataIngest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the private folder (the Items' images must have been loaded)."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def metadata_of(self, source: str) -> dict[str, Any]:
        """The fields the entry ``source`` brought (a LangChain Document's metadata)."""
        return self._metadata.get(source, {})

    def items(self, report: IndexReport | None = None) -> Iterator[Item]:
        """The Items of every entry, in order; an entry that cannot be read is recorded in
        ``report`` (its source and reason) and the others go on."""
        from mmrag.pipeline.ingest._prefetch import PrefetchWindow

        window = PrefetchWindow(self.config.prefetch)
        for value in self._data:
            entry = _entry(value)
            self.sources.add(entry.source)
            try:
                if entry.metadata:
                    where = f"{entry.source}: the Document's metadata"
                    self._metadata[entry.source] = check_metadata(entry.metadata, where)
                if isinstance(entry.payload, bytes):
                    yield from self._file_items(entry, window)
                else:
                    yield self._image_item(entry)
            except (IngestError, ValueError) as error:
                if report is None:
                    raise
                report.add_failure(entry.source, error)

    def _image_item(self, entry: _Entry) -> Item:
        from mmrag.imaging import fit_size
        from mmrag.pipeline.ingest.images import to_rgb

        image = entry.payload
        assert not isinstance(image, bytes)
        digest = _pixel_sha256(image)
        rgb = to_rgb(image)
        size = fit_size(rgb.width, rgb.height, self.config.max_side)
        if size != rgb.size:
            rgb = rgb.resize(size)
        rgb = rgb.copy() if rgb is image else rgb  # the caller may change theirs later
        return Item(
            source=entry.source,
            source_sha256=digest,
            modality=Modality.IMAGE,
            width=rgb.width,
            height=rgb.height,
            details={"from_memory": "image"},
            image_loader=lambda: rgb,
        )

    def _file_items(self, entry: _Entry, window: Any) -> Iterator[Item]:
        from mmrag.pipeline.ingest.discovery import Source, detect_kind
        from mmrag.pipeline.ingest.source import iter_source

        data = entry.payload
        assert isinstance(data, bytes)
        if not data:
            from mmrag.pipeline.ingest.errors import EmptyFileError

            raise EmptyFileError(entry.source, "the entry is empty (0 bytes)")
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="mmrag-data-"))
        digest = hashlib.sha256(data).hexdigest()
        path = self._folder / f"{digest}{entry.suffix if len(entry.suffix) <= 16 else ''}"
        if not path.exists():
            path.write_bytes(data)
        kind, fmt, detected_by = detect_kind(path)
        if kind is None:
            from mmrag.pipeline.ingest.discovery import describe_format

            raise UnsupportedTypeError(
                entry.source, f"unsupported data: this is {describe_format(fmt)}"
            )
        source = Source(path, kind, fmt, len(data), detected_by)
        config = self.config
        if entry.text:  # cheap to lay out again: no PDF per chunk left in the shared cache
            config = config.model_copy(update={"convert_cache": str(self._folder / "pdf")})
        for item in iter_source(source, config, window=window):
            yield dataclasses.replace(item, source=entry.source)
