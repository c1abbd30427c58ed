"""Check a collection's integrity and say what to do about each problem (``mmrag doctor``).

:func:`check_store` opens the collection as stored (``schema=None``: no embedder model is
loaded) and runs these checks, each adding :class:`Finding` s to a :class:`DoctorReport`; a
check the store must be open for is skipped when opening fails.

=============  ===========================================================================
check          what
=============  ===========================================================================
``collection`` the collection exists
``schema``     ``mmrag.json`` is readable (embedded)
``version``    the collection's layout version is this mmrag's
``lock``       the folder is not open elsewhere (told apart from damaged files; embedded)
``shard``      the shard opens (embedded); ``connection``: the server answers (server)
``count``      the shard holds as many points as were recorded when it was last closed
``pending``    no points left unpublished by an interrupted indexing job
``vectors``    no NaN or infinite value in any stored vector
``tokens``     the token index holds the pages' ``distinct`` vectors, no more, no fewer
``images``     every point has its page image, every page image a point
=============  ===========================================================================

Example:
    >>> import tempfile
    >>> from mmrag.config import StoreConfig
    >>> from mmrag.store import CollectionSchema, open_store
    >>> from mmrag.store.doctor import check_store
    >>> config = StoreConfig(path=tempfile.mkdtemp(), collection="docs")
    >>> open_store(config, CollectionSchema(embedder_id="toy", kind="single", dim=4)).close()
    >>> report = check_store(config)
    >>> report.ok, [f.check for f in report.findings][:3]
    (True, ['schema', 'shard', 'count'])
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mmrag.store.contract import (
    PENDING_FIELD,
    StoreError,
    StoreLockedError,
    StoreUnavailableError,
    StoreVersionError,
)
from mmrag.store.records import SparseVector
from mmrag.store.token_index import EMBEDDED_FOLDER, SERVER_SUFFIX, TOKEN_VIEW

if TYPE_CHECKING:
    from mmrag.config import StoreConfig
    from mmrag.store.contract import VectorStore

__all__ = ["DoctorReport", "Finding", "check_store"]

Level = Literal["ok", "warn", "error"]

_REBUILD = "`mmrag index PATHS --recreate` (deletes the collection and indexes again)"
_AGAIN = "fix this first, then run `mmrag doctor` again (the other checks need the store open)"


@dataclass(frozen=True)
class Finding:
    """One result of a check: ``level`` (ok / warn / error), ``what`` was found, and
    ``advice``: what to do about it (empty when nothing is to be done).

    Example:
        >>> from mmrag.store.doctor import Finding
        >>> Finding("warn", "pending", "3 points are pending", "run the job again").level
        'warn'
    """

    level: Level
    check: str
    what: str
    advice: str = ""


@dataclass
class DoctorReport:
    """Everything :func:`check_store` found about one collection.

    Example:
        >>> from mmrag.store.doctor import DoctorReport
        >>> report = DoctorReport("embedded", "docs", "/idx/docs")
        >>> report.add("error", "count", "20 points, 400 recorded", "rebuild it")
        >>> report.ok, len(report.errors)
        (False, 1)
        >>> print(report.format())
        collection 'docs' (embedded) at /idx/docs
          ERROR  count     20 points, 400 recorded
                           -> rebuild it
        1 error, 0 warnings
    """

    backend: str
    collection: str
    location: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, check: str, what: str, advice: str = "") -> None:
        """Record a finding."""
        self.findings.append(Finding(level, check, what, advice))

    @property
    def errors(self) -> list[Finding]:
        """The findings of level ``error``."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings of level ``warn``."""
        return [f for f in self.findings if f.level == "warn"]

    @property
    def ok(self) -> bool:
        """True when no check found an error (warnings allowed)."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "backend": self.backend,
            "collection": self.collection,
            "location": self.location,
            "ok": self.ok,
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }

    def lines(self) -> list[tuple[Level | None, str]]:
        """The text report as (level, line) pairs: the heading (level ``None``), one line per
        finding with its advice below it (same level), then a summary (``None``)."""
        out: list[tuple[Level | None, str]] = [
            (None, f"collection {self.collection!r} ({self.backend}) at {self.location}")
        ]
        for f in self.findings:
            label = "ERROR" if f.level == "error" else f.level
            out.append((f.level, f"  {label:<6} {f.check:<9} {f.what}"))
            if f.advice:
                out.append((f.level, f"{'':<19}-> {f.advice}"))
        n_err, n_warn = len(self.errors), len(self.warnings)
        summary = f"{n_err} error{'s' * (n_err != 1)}, {n_warn} warning{'s' * (n_warn != 1)}"
        out.append((None, summary))
        return out

    def format(self) -> str:
        """The report as text: one line per finding, its advice below it, then a summary."""
        return "\n".join(line for _, line in self.lines())


@dataclass
class _Scan:
    """What one pass over every point found."""

    ids: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    pending: Counter[str] = field(default_factory=Counter)
    bad_vectors: list[tuple[str, list[str]]] = field(default_factory=list)
    token_rows: int = 0  # the pages' `distinct` vectors: what the token index should hold


def check_store(
    config: StoreConfig, *, vectors: bool = True, batch_size: int = 16, examples: int = 5
) -> DoctorReport:
    """Check the collection ``config`` names (see the module doc for the checks).

    ``vectors=False`` skips reading every stored vector (the NaN / inf check: the slow part on
    large collections). ``examples`` caps the points or sources named per finding.
    """
    if config.backend == "server":
        report = DoctorReport("server", config.collection, config.url or "")
        store = _open_server(config, report)
    else:
        folder = Path(config.path).expanduser().resolve() / config.collection
        report = DoctorReport("embedded", config.collection, str(folder))
        store = _open_embedded(config, folder, report)
    if store is None:
        return report
    try:
        scan = _scan(store, vectors=vectors, batch_size=batch_size)
        _report_points(scan, report, examples, vectors=vectors)
        _check_tokens(store, scan, report, config, vectors=vectors)
        _check_images(config, scan, report, examples)
    finally:
        store.close()
    return report


def _open_embedded(config: StoreConfig, folder: Path, report: DoctorReport) -> Any:
    from mmrag.store._integrity import SCHEMA_FILE, SHARD_DIR, read_schema_file, read_state
    from mmrag.store.embedded import EmbeddedStore

    if not (folder / SCHEMA_FILE).exists() and not (folder / SHARD_DIR).exists():
        report.add(
            "error",
            "collection",
            f"there is no collection {config.collection!r} at {folder}",
            "index documents first (`mmrag index PATHS`), or check store.path and "
            "store.collection in the config",
        )
        return None
    try:
        schema = read_schema_file(folder)
    except StoreVersionError as exc:
        report.add("error", "version", str(exc), _AGAIN)
        return None
    except StoreError as exc:
        report.add("error", "schema", str(exc), _AGAIN)
        return None
    report.add(
        "ok",
        "schema",
        f"{SCHEMA_FILE} is readable: embedder {schema.embedder_id}, layout version "
        f"{schema.version}",
    )
    try:
        store = EmbeddedStore(config.path, config.collection, check_count=False)
    except StoreLockedError as exc:
        report.add("error", "lock", str(exc), _AGAIN)
        return None
    except StoreError as exc:
        report.add("error", "shard", str(exc), _AGAIN)
        return None
    found = store.count()
    report.add("ok", "shard", f"the shard opens: {found} points")
    try:
        state = read_state(folder)
    except StoreError as exc:
        report.add("warn", "count", str(exc))
        return store
    if state is None:
        report.add(
            "ok",
            "count",
            f"{found} points; no count was recorded yet to compare with (mmrag records it "
            "when the store is closed after a write)",
        )
    elif not state.clean:
        report.add(
            "warn",
            "count",
            f"{found} points; the last process that wrote to the store stopped without closing "
            "it (e.g. a killed indexing job), so the count cannot be verified",
            "run the indexing job again: it resumes, and records the count when it finishes",
        )
    elif state.points != found:
        report.add(
            "error",
            "count",
            f"the shard holds {found} points, but {state.points} were stored when it was last "
            "closed: part of the shard's files is missing or truncated",
            f"restore {folder} from a backup, or rebuild it: {_REBUILD}",
        )
    else:
        report.add("ok", "count", f"{found} points, as recorded when the store was last closed")
    return store


def _open_server(config: StoreConfig, report: DoctorReport) -> Any:
    from mmrag.store import open_store

    try:
        store = open_store(config, None)
    except StoreUnavailableError as exc:
        report.add("error", "connection", str(exc), _AGAIN)
        return None
    except StoreVersionError as exc:
        report.add("error", "version", str(exc), _AGAIN)
        return None
    except StoreError as exc:
        report.add("error", "collection", str(exc), _AGAIN)
        return None
    report.add(
        "ok",
        "shard",
        f"the collection opens: {store.count()} points, embedder {store.schema.embedder_id}, "
        f"layout version {store.schema.version}",
    )
    return store


def _scan(store: VectorStore, *, vectors: bool, batch_size: int) -> _Scan:
    """One pass over every point: ids, pending points, non-finite vector values."""
    scan = _Scan()
    offset: str | None = None
    limit = batch_size if vectors else max(batch_size, 1024)
    while True:
        records, offset = store.scroll(limit=limit, offset=offset, with_vectors=vectors)
        for record in records:
            scan.ids.append(record.id)
            source = str(record.payload.get("source", "?"))
            page = record.payload.get("page")
            scan.sources[record.id] = source
            scan.labels[record.id] = f"{source} p.{page}" if page is not None else source
            if record.payload.get(PENDING_FIELD) == 1:
                scan.pending[source] += 1
            scan.token_rows += len(record.vectors.get(TOKEN_VIEW, ()))
            bad = [name for name, v in record.vectors.items() if not _finite(v)]
            if bad:
                scan.bad_vectors.append((record.id, bad))
        if offset is None:
            return scan


def _check_tokens(
    store: Any, scan: _Scan, report: DoctorReport, config: StoreConfig, *, vectors: bool
) -> None:
    """The token index (collections that keep one) against the pages' ``distinct`` vectors."""
    if not store.schema.token_index:
        return
    if not vectors:
        report.add("warn", "tokens", "token index not checked (--no-vectors)")
        return
    held, want = store.info().token_vectors, scan.token_rows
    where = (
        f"the collection {config.collection + SERVER_SUFFIX!r}"
        if config.backend == "server"
        else f"the folder {EMBEDDED_FOLDER!r} inside the collection's"
    )
    rebuild = f"delete {where}: the next open of the collection rebuilds it from the pages"
    if held == want:
        report.add("ok", "tokens", f"the token index holds the pages' {want} distinct vectors")
    elif held < want:
        report.add(
            "error",
            "tokens",
            f"the token index holds {held} vectors, the pages {want}: plans that start with "
            "`tokens@K` miss the pages whose vectors are not in it",
            rebuild,
        )
    else:
        report.add(
            "warn",
            "tokens",
            f"the token index holds {held - want} vectors of pages that no longer exist (an "
            "interrupted delete; search never returns them)",
            rebuild,
        )


def _finite(vector: Any) -> bool:
    values = vector.values if isinstance(vector, SparseVector) else vector
    return bool(np.isfinite(np.asarray(values, dtype=np.float64)).all())


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _some(names: list[str], examples: int) -> str:
    shown = ", ".join(names[:examples])
    return shown + (f" and {len(names) - examples} more" if len(names) > examples else "")


def _report_points(scan: _Scan, report: DoctorReport, examples: int, *, vectors: bool) -> None:
    if scan.pending:
        sources = sorted(scan.pending)
        report.add(
            "warn",
            "pending",
            f"{_n(sum(scan.pending.values()), 'point')} of {_n(len(sources), 'source')} "
            "pending: an "
            f"indexing job stopped before finishing them, and search does not return them "
            f"({_some(sources, examples)})",
            "run the indexing job again on these sources (`mmrag index SOURCE`): it finishes "
            "them; or remove them with `mmrag delete SOURCE`",
        )
    else:
        report.add("ok", "pending", "no points left pending by an interrupted indexing job")
    if not vectors:
        report.add("warn", "vectors", "not checked (--no-vectors)")
    elif scan.bad_vectors:
        named = [f"{pid} ({scan.labels[pid]}: {', '.join(n)})" for pid, n in scan.bad_vectors]
        sources = sorted({scan.sources[pid] for pid, _ in scan.bad_vectors})
        report.add(
            "error",
            "vectors",
            f"{len(scan.bad_vectors)} of {len(scan.ids)} points hold NaN or infinite vector "
            f"values (search still returns them, with meaningless scores): "
            f"{_some(named, examples)}",
            f"re-index their sources (`mmrag index SOURCE --force`; {_some(sources, examples)}) "
            "or remove them (`mmrag delete SOURCE`); if many points are affected the shard's "
            f"files are damaged: restore a backup, or rebuild: {_REBUILD}",
        )
    else:
        report.add("ok", "vectors", f"every vector of the {len(scan.ids)} points is finite")


def _check_images(config: StoreConfig, scan: _Scan, report: DoctorReport, examples: int) -> None:
    from mmrag.store import open_assets

    try:
        assets = open_assets(config)
        stored = set(assets.keys())
    except Exception as exc:  # any filesystem's error: report it, keep the other findings
        report.add("warn", "images", f"cannot list the page images: {exc}")
        return
    ids = set(scan.ids)
    missing = [pid for pid in scan.ids if pid not in stored]
    if not stored and missing:
        report.add(
            "warn",
            "images",
            f"no page images in {assets.root} for the {len(ids)} points (the collection was "
            "built without them, or the folder was lost); answers and rerankers that read "
            "page images cannot show these pages",
            "if it was built by `mmrag index`, re-index: `mmrag index PATHS --force`",
        )
    elif missing:
        sources = sorted({scan.sources[pid] for pid in missing})
        report.add(
            "error",
            "images",
            f"{_n(len(missing), 'point')} without a page image in {assets.root}: "
            f"{_some([f'{p} ({scan.labels[p]})' for p in missing], examples)}",
            f"re-index their sources: `mmrag index SOURCE --force` ({_some(sources, examples)})",
        )
    orphans = sorted(stored - ids)
    others, unread = _other_ids(config) if orphans else (set(), [])
    orphans = [key for key in orphans if key not in others]
    if orphans:
        caveat = (
            f" (collections {', '.join(unread)} could not be read: some may be theirs)"
            if unread
            else ""
        )
        report.add(
            "warn",
            "images",
            f"{_n(len(orphans), 'page image')} in {assets.root} of no point{caveat}: "
            f"{_some(orphans, examples)}",
            f"delete them ({assets.root}/<id[:2]>/<id>.png or .jpg) unless another collection "
            "uses this asset store: they are never shown and only take disk space",
        )
    if not missing and not orphans:
        report.add("ok", "images", f"every point has its page image in {assets.root}")


def _other_ids(config: StoreConfig) -> tuple[set[str], list[str]]:
    """Ids of the other embedded collections sharing the default asset folder ``<path>/
    assets`` (their images are not orphans), and the collections that could not be read."""
    from mmrag.store._integrity import SCHEMA_FILE
    from mmrag.store.embedded import EmbeddedStore

    if config.backend != "embedded" or config.assets is not None:
        return set(), []
    root = Path(config.path).expanduser().resolve()
    ids: set[str] = set()
    unread: list[str] = []
    for folder in sorted(root.iterdir()):
        if folder.name == config.collection or not (folder / SCHEMA_FILE).is_file():
            continue
        try:
            with EmbeddedStore(root, folder.name, check_count=False) as other:
                ids.update(record.id for record in other.iter_records(batch_size=1024))
        except StoreError:
            unread.append(folder.name)
    return ids, unread
