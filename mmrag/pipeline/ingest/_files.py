"""File identity for ingest: existence checks with typed errors, content hash, change stamp."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.pipeline.ingest.errors import (
    EmptyFileError,
    SourceChangedError,
    SourceNotFoundError,
    UnreadableFileError,
)

__all__ = ["FileStamp", "check_file", "file_sha256"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileStamp:
    """Size and modification time of a file, to notice that it changed after ingest."""

    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileStamp:
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns)

    def verify(self, path: str | os.PathLike[str]) -> None:
        """Raise :class:`SourceChangedError` if ``path`` is no longer the file that was read."""
        try:
            now = FileStamp.of(path)
        except FileNotFoundError:
            raise SourceNotFoundError(
                path, "the file was removed after it was ingested; ingest it again"
            ) from None
        if now != self:
            raise SourceChangedError(
                path,
                "the file changed on disk after it was ingested, so this page/frame may no "
                "longer match the indexed item; ingest the file again",
            )


class SlottedLoader:
    """Base of the per-item image loaders: picklable slot state (loaders cross into worker
    processes) and a check that the file has not changed since its Items were made."""

    __slots__ = ()
    path: str
    stamp: FileStamp | None

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def verify(self) -> None:
        """Raise ``SourceChangedError`` if the file changed since it was first read."""
        if self.stamp is not None:
            self.stamp.verify(self.path)


def check_file(path: str | os.PathLike[str]) -> int:
    """The size of ``path`` in bytes, or a typed error: missing, not a file, unreadable, empty."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceNotFoundError(path) from None
    except OSError as err:
        raise UnreadableFileError(path, f"cannot read the file: {err.strerror or err}") from err
    if os.path.isdir(path):
        raise UnreadableFileError(path, "this is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise UnreadableFileError(path, "permission denied: the file is not readable")
    if st.st_size == 0:
        raise EmptyFileError(path)
    return st.st_size


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of the file's bytes (hex), read in 1 MiB chunks (never whole in memory).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> _ = p.write_bytes(b"abc")
        >>> file_sha256(p)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except FileNotFoundError:
        raise SourceNotFoundError(path) from None
    except OSError as err:
        raise UnreadableFileError(path, f"cannot read the file: {err.strerror or err}") from err
    return digest.hexdigest()
