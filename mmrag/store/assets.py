"""The asset store: page and frame images keyed by item id, on any fsspec filesystem.

Rerankers and generators show the exact page a hit came from; the vector store keeps no pixels,
so the images live here: a local folder by default, or any fsspec URL (``s3://bucket/index``,
``gcs://…``, ``memory://…``) for clusters. Files are ``<root>/<id[:2]>/<id>.png`` (or ``.jpg``);
writes are atomic (a temporary file renamed into place on local disks, one PUT on object stores).

Example:
    >>> from PIL import Image
    >>> from mmrag.store.assets import AssetStore
    >>> assets = AssetStore("memory://doc-assets")
    >>> url = assets.put("6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59", Image.new("RGB", (8, 4), "red"))
    >>> assets.get("6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59").size
    (8, 4)
"""

from __future__ import annotations

import io
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from mmrag.errors import ConfigError
from mmrag.store.contract import StoreError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["AssetNotFoundError", "AssetStore"]

logger = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")
_EXTENSIONS = {"png": "png", "jpeg": "jpg"}


class AssetNotFoundError(StoreError, LookupError):
    """No image is stored for this item id."""


class AssetStore:
    """Images keyed by item id, on a folder or any fsspec URL.

    ``format`` is ``"png"`` (lossless, the default) or ``"jpeg"`` (``quality`` 1-95; smaller
    files for large collections). Reading finds an image in either format, so changing the
    format later does not orphan what is stored.

    Example:
        >>> from mmrag.store.assets import AssetStore
        >>> AssetStore("memory://pages", format="jpeg", quality=85).url("abc")
        'memory:///pages/ab/abc.jpg'
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        format: Literal["png", "jpeg"] = "png",
        quality: int = 90,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if format not in _EXTENSIONS:
            raise ConfigError(f"asset format must be 'png' or 'jpeg', got {format!r}")
        if not 1 <= quality <= 95:
            raise ConfigError(f"JPEG quality must be between 1 and 95, got {quality}")
        from fsspec.core import url_to_fs

        self._url = os.fspath(url)
        self._fs, root = url_to_fs(self._url, **dict(storage_options or {}))
        self._root = root.rstrip("/")
        self._local = "file" in _protocols(self._fs)
        self.format = format
        self.quality = quality

    def __repr__(self) -> str:
        return f"AssetStore({self._url!r}, format={self.format!r})"

    @property
    def root(self) -> str:
        """The store's root, as an fsspec URL."""
        return str(self._fs.unstrip_protocol(self._root))

    def _path(self, item_id: str, format: str | None = None) -> str:
        if not isinstance(item_id, str) or not _ID.match(item_id):
            raise ConfigError(
                f"asset key {item_id!r} is not an item id (letters, digits, '-' and '_' only)"
            )
        ext = _EXTENSIONS[format or self.format]
        return f"{self._root}/{item_id[:2]}/{item_id}.{ext}"

    def url(self, item_id: str) -> str:
        """The URL of ``item_id``'s image (where :meth:`put` writes it)."""
        return str(self._fs.unstrip_protocol(self._path(item_id)))

    def _find(self, item_id: str) -> str | None:
        for fmt in (self.format, *(f for f in _EXTENSIONS if f != self.format)):
            path = self._path(item_id, fmt)
            if self._fs.exists(path):
                return path
        return None

    def exists(self, item_id: str) -> bool:
        """True if an image is stored for ``item_id``."""
        return self._find(item_id) is not None

    def put(self, item_id: str, image: Image.Image) -> str:
        """Store ``image`` for ``item_id`` (overwriting), atomically; returns its URL."""
        path = self._path(item_id)
        data = self._encode(image)
        parent = path.rsplit("/", 1)[0]
        if self._local:
            self._fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.{item_id}.{uuid.uuid4().hex}.tmp"
            try:
                with open(tmp, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        else:
            self._fs.pipe_file(path, data)  # one PUT: atomic on object stores
        for other in _EXTENSIONS:  # an image stored in the other format is now stale
            if other != self.format:
                stale = self._path(item_id, other)
                if self._fs.exists(stale):
                    self._fs.rm(stale)
        return str(self._fs.unstrip_protocol(path))

    def _encode(self, image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        if self.format == "jpeg":
            rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
            rgb.save(buffer, format="JPEG", quality=self.quality, optimize=True)
        else:
            ok = (
                image
                if image.mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16")
                else (image.convert("RGB"))
            )
            ok.save(buffer, format="PNG")
        return buffer.getvalue()

    def get(self, item_id: str) -> Image.Image:
        """The stored image of ``item_id`` (fully loaded, in RGB or its stored mode)."""
        from PIL import Image

        path = self._find(item_id)
        if path is None:
            raise AssetNotFoundError(
                f"no page image for item {item_id} in {self.root}; index with page images "
                "enabled (or re-index the source) to store it"
            )
        data = self._fs.cat_file(path)
        image = Image.open(io.BytesIO(data))
        image.load()
        return image

    def copy(self, source_id: str, item_id: str) -> bool:
        """Store ``source_id``'s image for ``item_id`` too, byte for byte (a copy of a file
        indexed at another path); returns ``False`` when ``source_id`` has no image."""
        path = self._find(source_id)
        if path is None:
            return False
        ext = path.rsplit(".", 1)[-1]
        fmt = next(f for f, e in _EXTENSIONS.items() if e == ext)
        target = self._path(item_id, fmt)
        data = self._fs.cat_file(path)
        if self._local:
            parent = target.rsplit("/", 1)[0]
            self._fs.makedirs(parent, exist_ok=True)
            tmp = f"{parent}/.{item_id}.{uuid.uuid4().hex}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        else:
            self._fs.pipe_file(target, data)
        return True

    def keys(self) -> list[str]:
        """The item ids that have a stored image, sorted (each once, in whichever format).

        Example:
            >>> from PIL import Image
            >>> assets = AssetStore("memory://listed-assets")
            >>> _ = assets.put("abc1", Image.new("RGB", (2, 2)))
            >>> assets.keys()
            ['abc1']
        """
        if not self._fs.exists(self._root):
            return []
        extensions = set(_EXTENSIONS.values())
        found: set[str] = set()
        for path in self._fs.find(self._root):
            parent, _, name = str(path).rpartition("/")
            stem, dot, ext = name.rpartition(".")
            if dot and ext in extensions and _ID.match(stem) and parent.endswith(f"/{stem[:2]}"):
                found.add(stem)
        return sorted(found)

    def delete(self, ids: Iterable[str]) -> int:
        """Delete the images of ``ids`` (missing ones are ignored); returns how many were."""
        deleted = 0
        for item_id in ids:
            for fmt in _EXTENSIONS:
                path = self._path(item_id, fmt)
                if self._fs.exists(path):
                    self._fs.rm(path)
                    deleted += 1
        logger.debug("deleted %d page images from %s", deleted, self.root)
        return deleted


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
