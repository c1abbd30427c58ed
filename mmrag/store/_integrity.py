"""The embedded store's folder, checked: its schema file, its expected point count, and what
an engine error on opening means (a lock held elsewhere, or damaged files).

A collection folder holds ``mmrag.json`` (the schema), ``shard/`` (the Qdrant Edge shard) and
``mmrag.state.json``: the number of points the shard held when the store last recorded it
(after :meth:`~mmrag.store.contract.VectorStore.optimize` and on ``close``), and whether that
number is still current (``clean``). A store marks the state not clean before its first write,
so a process that dies mid-job leaves no false alarm; a clean state whose count differs from the
shard's means part of the shard was lost (e.g. a truncated id-mapping file, which Qdrant Edge
reads without complaint).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mmrag.store._integrity import read_state, write_state
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_state(folder, 400, clean=True)
    >>> read_state(folder)
    StoreState(points=400, clean=True)
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmrag.errors import MmragError
from mmrag.store.contract import StoreCorruptError, StoreError, StoreLockedError, StoreVersionError
from mmrag.store.schema import CollectionSchema

__all__ = [
    "REBUILD",
    "SCHEMA_FILE",
    "SHARD_DIR",
    "STATE_FILE",
    "StoreState",
    "count_mismatch",
    "explain_open_error",
    "read_schema_file",
    "read_state",
    "write_json_atomic",
    "write_state",
]

SCHEMA_FILE = "mmrag.json"
STATE_FILE = "mmrag.state.json"
SHARD_DIR = "shard"

#: What to do with a collection that cannot be repaired.
REBUILD = (
    "rebuild it: `mmrag index PATHS --recreate` (deletes the collection and indexes again), "
    "or delete the folder"
)


@dataclass(frozen=True)
class StoreState:
    """The point count recorded beside the shard, and whether it is current (``clean``)."""

    points: int
    clean: bool


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text: byte {exc.object[exc.start]:#04x} at offset {exc.start}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    return data


def read_schema_file(folder: Path) -> CollectionSchema:
    """The schema in ``folder/mmrag.json``; raises :class:`StoreCorruptError` (naming the file
    and what to do) when it is unreadable, :class:`StoreVersionError` when another mmrag
    layout version wrote it."""
    path = folder / SCHEMA_FILE
    try:
        data = _read_json(path)
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise StoreCorruptError(
            f"{path} is unreadable ({_reason(exc)}). It records the embedder the collection "
            f"{folder} was built with; restore it from a backup, or {REBUILD}."
        ) from exc
    StoreVersionError.check(data, str(folder))
    try:
        return CollectionSchema.from_dict(data)
    except (TypeError, ValueError, MmragError) as exc:
        raise StoreCorruptError(
            f"{path} does not hold a valid collection schema ({exc}); restore it from a "
            f"backup, or {REBUILD}."
        ) from exc


def read_state(folder: Path) -> StoreState | None:
    """The recorded state of ``folder``'s shard (``None`` when none was recorded); raises
    :class:`StoreCorruptError` when the state file is unreadable."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        data = _read_json(path)
        points, clean = data["points"], data["clean"]
        if not isinstance(points, int) or not isinstance(clean, bool) or points < 0:
            raise ValueError(f"points {points!r}, clean {clean!r}")
    except (OSError, ValueError, KeyError) as exc:
        raise StoreCorruptError(
            f"{path} is unreadable ({_reason(exc)}), so the point count of {folder} cannot be "
            f"checked; delete the file (the store records it again when it is next closed)"
        ) from exc
    return StoreState(points, clean)


def write_state(folder: Path, points: int, *, clean: bool) -> None:
    """Record ``points`` as the shard's point count (atomically)."""
    write_json_atomic(folder / STATE_FILE, {"points": int(points), "clean": bool(clean)})


def count_mismatch(folder: Path, found: int, expected: int) -> StoreCorruptError:
    """The error of a shard holding ``found`` points where ``expected`` were recorded."""
    return StoreCorruptError(
        f"the embedded store {folder} is damaged: its shard holds {found} points, but "
        f"{expected} were stored when it was last closed (recorded in {STATE_FILE}); part of "
        f"the shard's files is missing or truncated. Restore the folder from a backup, or "
        f"{REBUILD}."
    )


def explain_open_error(exc: Exception, folder: Path, *, creating: bool = False) -> StoreError:
    """What an engine error on loading (or creating) the shard in ``folder`` means.

    Only the write-ahead log's file lock held elsewhere is a lock conflict (Qdrant Edge reports
    it as ``Can't init WAL: Kind(WouldBlock)``, in this process and across processes alike);
    a garbled WAL or segment is reported as damage.
    """
    message = str(exc)
    if "WouldBlock" in message:
        return StoreLockedError(
            f"the embedded store {folder} is already open, by another process or by "
            "another store object in this process (Qdrant Edge locks the folder while it is "
            "open). Close the other one first, or, to share one index between processes, "
            f"run a Qdrant server and use store.backend = 'server'. ({message})"
        )
    if creating:
        return StoreError(
            f"cannot create the embedded store {folder}: {message}. Check that the folder is "
            "writable and the disk has space."
        )
    if "PermissionDenied" in message or "Permission denied" in message:
        return StoreError(
            f"cannot open the embedded store {folder}: permission denied ({message}); give "
            "this user read and write access to the folder."
        )
    return StoreCorruptError(
        f"the embedded store {folder} is damaged: Qdrant Edge cannot open its shard "
        f"({message}). Restore the folder from a backup, or {REBUILD}. `mmrag doctor` checks "
        "the rest of the store."
    )


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON next to ``path`` and rename it into place (never a half-written file)."""
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
