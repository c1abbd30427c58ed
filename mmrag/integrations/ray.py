"""The Ray engine: the indexing job spread over a Ray cluster (``mmrag index --engine ray``).

The same job as :func:`mmrag.pipeline.indexing.index_items` (same point ids, same skipping of
stored items, same failure report), with each step in its own Ray Data stage::

    files ─► list ─────────► render ───────► embed ──────────────► write
             one task per     tasks, a        actor pool: one       server: parallel writers,
             file: hash,      batch of        model per actor,      each with its own client;
             pages, skip      pages each      ``gpus_per_actor``    embedded: the driver
             what is stored

Stages stream into each other with Ray Data's backpressure, so memory stays bounded whatever
the number of pages. Settings live in the ``[ray]`` section (:class:`mmrag.config.RayConfig`).

Where the sources are read: the driver expands the inputs; each listing task opens its file by
absolute path, so every node must see the files at the same path (a shared or mounted folder).
With a Qdrant server, the writers also put page images into the asset store, so
``store.assets`` must be a URL every node can reach (``s3://…`` or a shared folder).

Example:
    >>> from mmrag.integrations.ray import index_with_ray                        # doctest: +SKIP
    >>> from mmrag.pipeline.pipeline import Pipeline                            # doctest: +SKIP
    >>> pipe = Pipeline.from_config("mmrag.toml")                               # doctest: +SKIP
    >>> index_with_ray(pipe, ["/data/reports/"], num_embed_actors=4,
    ...                gpus_per_actor=1).summary()                              # doctest: +SKIP
    '120000 indexed, 0 skipped (already present), 3 failed'
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.errors import ConfigError, IngestError, MissingDependencyError
from mmrag.types import IndexReport, Item

if TYPE_CHECKING:
    from mmrag.config import RayConfig, StoreConfig
    from mmrag.embedders.pooling import Pooler
    from mmrag.pipeline.ingest.discovery import Source
    from mmrag.pipeline.ingest.options import IngestConfig
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore
    from mmrag.store.schema import CollectionSchema

__all__ = [
    "AssetOpener",
    "EmbedPages",
    "StoreOpener",
    "StoredIds",
    "WritePages",
    "index_with_ray",
    "list_source",
    "render_pages",
]

logger = logging.getLogger(__name__)

#: Files per block of the listing stage's input (more files than this share a listing task).
MAX_LISTING_BLOCKS = 1024

#: Memory a render task reserves: a worker process with PyMuPDF loaded, plus per page of its
#: batch an A4 page at 200 DPI in RGB, twice (rendered, then serialised).
RENDER_MEMORY_BASE = 320 * 2**20
RENDER_MEMORY_PER_PAGE = 2 * 1654 * 2339 * 3

# Row kinds. Every stage's rows are {"kind": str, "data": pickled value}; a stage turns the
# kind it handles into the next and passes the others through to the driver.
_ITEM = "item"  # Item (bound to the embedder), to render
_PAGE = "page"  # (Item, PIL image), to embed
_EMBEDDED = "embedded"  # (Item, Embedding, PIL image), to write
_WRITTEN = "written"  # {source: points written (pending until the source is published)}
_SKIPPED = "skipped"  # (source, number of its items already stored)
_FAILED_FILE = "failed_file"  # Failure of a whole file (nothing of it was listed)
_FAILED_ITEM = "failed_item"  # Failure of one page / frame
_LISTED = "listed"  # (source, number of items): a file was listed


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # the engine needs Ray Data, not only Ray core
    except ImportError as exc:
        raise MissingDependencyError(
            "the Ray engine needs Ray Data: pip install 'mmrag[ray]' (or 'ray[data]>=2.40')"
        ) from exc
    return ray


# -- rows ----------------------------------------------------------------------------------------


def _row(kind: str, value: Any) -> tuple[str, bytes]:
    return kind, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _record(kind: str, value: Any) -> dict[str, Any]:
    """One row as Ray Data's row-wise functions (``from_items``, ``flat_map``) take it."""
    kind, blob = _row(kind, value)
    return {"kind": kind, "data": blob}


def _batch(rows: Sequence[tuple[str, bytes]]) -> dict[str, np.ndarray]:
    kinds = np.empty(len(rows), dtype=object)
    data = np.empty(len(rows), dtype=object)
    for i, (kind, blob) in enumerate(rows):
        kinds[i], data[i] = kind, blob
    return {"kind": kinds, "data": data}


def _split(batch: dict[str, np.ndarray], kind: str) -> tuple[list[tuple[str, bytes]], list[Any]]:
    """The rows of ``batch`` of another kind (untouched) and the values of rows of ``kind``."""
    others: list[tuple[str, bytes]] = []
    values: list[Any] = []
    for row_kind, blob in zip(batch["kind"], batch["data"], strict=True):
        if row_kind == kind:
            values.append(pickle.loads(blob))
        else:
            others.append((str(row_kind), bytes(blob)))
    return others, values


def _failures(report: IndexReport, kind: str) -> list[tuple[str, bytes]]:
    return [_row(kind, failure) for failure in report.failed]


# -- what the stages need to open ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoreOpener:
    """Opens the job's collection in a Ray worker (each listing task and writer its own client).

    The collection exists by then (the driver creates it), so ``schema`` is only checked.
    """

    config: StoreConfig
    schema: CollectionSchema

    def __call__(self) -> VectorStore:
        from mmrag.store import open_store

        return open_store(self.config, self.schema)


@dataclasses.dataclass(frozen=True)
class AssetOpener:
    """Opens the page-image asset store in a Ray worker (by URL, so every node finds it)."""

    url: str
    format: str = "png"
    quality: int = 90

    @classmethod
    def of(cls, assets: AssetStore) -> AssetOpener:
        return cls(assets.root, assets.format, assets.quality)

    def __call__(self) -> AssetStore:
        from mmrag.store.assets import AssetStore

        return AssetStore(self.url, format=self.format, quality=self.quality)  # type: ignore[arg-type]


class StoredIds:
    """A sorted snapshot of the point ids in a store, for listing tasks that cannot open it
    (the embedded store is single-process: only the driver has it open).

    Example:
        >>> ids = StoredIds(["6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59"])
        >>> ids.contains(["6d1f6a8e-1b7e-4ef1-9d0c-6f1d2c3b4a59",
        ...               "00000000-0000-0000-0000-000000000000"]).tolist()
        [True, False]
    """

    def __init__(self, ids: Iterable[str]) -> None:
        self._ids = np.sort(self._keys(ids))  # (n,) 16-byte UUIDs

    @staticmethod
    def _keys(ids: Iterable[str]) -> np.ndarray:
        import uuid

        return np.array([uuid.UUID(str(i)).bytes for i in ids], dtype="S16")

    @classmethod
    def of(cls, store: VectorStore) -> StoredIds:
        """The ids of the complete points in ``store`` (scrolled 1,000 at a time); a point left
        pending by an interrupted job is not in it, so it is written again."""
        from mmrag.store.contract import PENDING_FIELD

        return cls(
            record.id
            for record in store.iter_records(batch_size=1000)
            if not record.payload.get(PENDING_FIELD)
        )

    def __len__(self) -> int:
        return len(self._ids)

    def contains(self, ids: Sequence[str]) -> np.ndarray:
        """A boolean mask: which of ``ids`` are in the snapshot."""
        keys = self._keys(ids)
        if not len(self._ids) or not len(keys):
            return np.zeros(len(keys), dtype=bool)
        at = np.minimum(np.searchsorted(self._ids, keys), len(self._ids) - 1)
        return self._ids[at] == keys

    def missing(self, batch: list[Item], report: IndexReport) -> list[Item]:
        """Like :func:`mmrag.pipeline.indexing.skip_stored`, against the snapshot."""
        present = self.contains([item.id for item in batch])
        report.skipped += int(present.sum())
        return [item for item, stored in zip(batch, present, strict=True) if not stored]


# -- the stages (each runs in Ray workers) -------------------------------------------------------


def list_source(
    row: dict[str, Any],
    *,
    ingest: IngestConfig,
    embedder_id: str,
    batch_size: int,
    force: bool,
    store: Callable[[], VectorStore] | None = None,
    stored_ids: Any = None,
) -> Iterator[dict[str, Any]]:
    """Stage 1, one task per file: the file's items, less those already stored.

    ``row`` holds a discovered :class:`~mmrag.pipeline.ingest.discovery.Source` (by absolute
    path) and the path as the user gave it (what items and the report show). With ``store``
    (a server backend), the task opens its own client, drops the points of an older version of
    the file and skips stored items, as the local engine does; otherwise ``stored_ids`` (a
    :class:`StoredIds`, or a Ray reference to one) is the snapshot to skip against.
    """
    from mmrag.embedders.batching import iter_batches
    from mmrag.pipeline.indexing import drop_stale_versions, skip_stored
    from mmrag.pipeline.ingest import iter_items

    source, shown = pickle.loads(row["data"])
    report = IndexReport()
    opened = store() if store is not None else None
    snapshot = _resolve(stored_ids)
    listed, first = 0, None
    try:
        items: Iterable[Item] = (
            dataclasses.replace(item, source=shown).with_embedder(embedder_id)
            for item in iter_items([source], ingest, report=report)
        )
        if opened is not None:
            items = drop_stale_versions(items, opened)
        for batch in iter_batches(items, batch_size):
            listed += len(batch)
            first = first or batch[0].source
            skipped = report.skipped
            if force:
                todo = batch
            elif opened is not None:
                todo = skip_stored(batch, opened, report)
            elif snapshot is not None:
                todo = snapshot.missing(batch, report)
            else:
                todo = batch
            yield from (_record(_ITEM, item) for item in todo)
            if report.skipped > skipped:
                yield _record(_SKIPPED, (batch[0].source, report.skipped - skipped))
    finally:
        if opened is not None:
            opened.close()
    for failure in report.failed:
        failure = dataclasses.replace(failure, source=_shown(failure.source, source, shown))
        yield _record(_FAILED_FILE, failure)
    if listed:
        yield _record(_LISTED, (first, listed))


def render_pages(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stage 2, tasks: render / decode the batch's items (a page that fails is reported)."""
    from mmrag.pipeline.indexing import load_images

    rows, items = _split(batch, _ITEM)
    report = IndexReport()
    rows += [_row(_PAGE, page) for page in load_images(items, report)]
    rows += _failures(report, _FAILED_ITEM)
    return _batch(rows)


class EmbedPages:
    """Stage 3, an actor pool: each actor builds the embedder once from its ``{type,
    init_parameters}`` and embeds the rendered pages with the pooled views."""

    def __init__(
        self,
        embedder_class: type,
        embedder_spec: dict[str, Any],
        embedder_id: str,
        pooler: Pooler | None,
        views: Sequence[str],
    ) -> None:
        embedder = embedder_class.from_dict(embedder_spec)
        if embedder.id != embedder_id:
            raise ConfigError(
                f"the embedder rebuilt on a Ray worker is {embedder.id}, not the driver's "
                f"{embedder_id}; its vectors would be stored under the wrong ids. Make "
                "`to_dict()` of the embedder carry every setting that changes its id"
            )
        self.embedder = embedder.load()
        self.pooler = pooler
        self.views = tuple(views)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from mmrag.pipeline.indexing import embed_images

        rows, pages = _split(batch, _PAGE)
        report = IndexReport()
        done = embed_images(pages, self.embedder, self.pooler, self.views, report)
        rows += [_row(_EMBEDDED, entry) for entry in done]
        rows += _failures(report, _FAILED_ITEM)
        return _batch(rows)


class WritePages:
    """Stage 4 (server backend), parallel writers: each opens its own client to the server and
    writes page images, then points (:func:`mmrag.pipeline.indexing.write_embedded`)."""

    def __init__(
        self,
        store: Callable[[], VectorStore],
        assets: Callable[[], AssetStore] | None,
        embedder_id: str,
    ) -> None:
        self.store = store()
        self.assets = assets() if assets is not None else None
        self.embedder_id = embedder_id

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from mmrag.pipeline.indexing import write_embedded

        rows, done = _split(batch, _EMBEDDED)
        if done:
            write_embedded(done, self.store, self.assets, self.embedder_id, pending=True)
            rows.append(_row(_WRITTEN, dict(collections.Counter(i.source for i, _, _ in done))))
        return _batch(rows)


# -- the driver ----------------------------------------------------------------------------------


def index_with_ray(
    pipeline: Pipeline,
    sources: Iterable[str | os.PathLike[str]],
    *,
    force: bool = False,
    report: IndexReport | None = None,
    on_progress: Callable[[int], None] | None = None,
    **overrides: Any,
) -> IndexReport:
    """Index ``sources`` with ``pipeline``'s components on a Ray cluster; returns the report.

    ``overrides`` replace ``[ray]`` settings for this job (e.g. ``address="auto"``,
    ``num_embed_actors=4``, ``gpus_per_actor=1``). Joins the cluster ``address`` names, or the
    one this process already runs in; otherwise starts Ray on this machine for the job (and
    stops it afterwards). ``on_progress(n)`` is called with the number of items handled
    (indexed, skipped or failed) as results arrive.

    Example:
        >>> report = index_with_ray(pipe, ["docs/"], address="auto")            # doctest: +SKIP
    """
    ray = _import_ray()
    settings = _settings(pipeline.config.ray, overrides)
    started = time.perf_counter()
    report = report if report is not None else IndexReport()
    files = _discover(sources, report)
    listed: set[str] = set()
    if files:
        started_ray = _connect(ray, settings)
        try:
            _run(ray, pipeline, files, settings, force, report, listed, on_progress)
        finally:
            if started_ray:
                ray.shutdown()
    report.sources = len(listed | {f.source for f in report.failed})
    report.duration_s += time.perf_counter() - started
    return report


def _settings(base: RayConfig, overrides: dict[str, Any]) -> RayConfig:
    from pydantic import ValidationError

    try:
        return type(base).model_validate({**base.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid Ray engine settings: {problems}") from None


def _discover(
    sources: Iterable[str | os.PathLike[str]], report: IndexReport
) -> list[tuple[Source, str]]:
    """The files to index (absolute, for the workers) with their paths as given; an input that
    matches nothing is reported, as :func:`mmrag.pipeline.ingest.iter_items` does."""
    from mmrag.pipeline.ingest.discovery import as_inputs, expand

    files: list[tuple[Source, str]] = []
    seen: set[str] = set()
    for entry in as_inputs(list(sources)):
        try:
            found = expand(entry)
        except IngestError as err:
            report.add_failure(str(err.source), err)
            logger.warning("Skipping %s: %s", err.source, err.reason)
            continue
        for source in found:
            key = os.path.realpath(source.path)
            if key not in seen:
                seen.add(key)
                absolute = dataclasses.replace(source, path=Path(os.path.abspath(source.path)))
                files.append((absolute, os.fspath(source.path)))
    return files


def _shown(path: str, source: Source, shown: str) -> str:
    return shown if path == os.fspath(source.path) else path


def _resolve(stored_ids: Any) -> StoredIds | None:
    if stored_ids is None or isinstance(stored_ids, StoredIds):
        return stored_ids
    import ray

    return ray.get(stored_ids)


def _connect(ray: Any, settings: RayConfig) -> bool:
    """Join or start Ray; True when this call started it (and the job should stop it)."""
    if ray.is_initialized():
        return False
    local = settings.address is None and not os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"include_dashboard": False} if local else {}
    ray.init(address=settings.address, **kwargs)
    logger.info("Ray: %s", "started on this machine" if local else f"joined {settings.address}")
    return True


def _worker_env(config: StoreConfig) -> dict[str, Any]:
    """Ray remote args passing the store's API-key variable (a reference in the config, never
    a value) on to the workers that open the store, when it is set here."""
    names = config.api_key.env_vars if config.api_key is not None else ()
    env = {name: os.environ[name] for name in names if os.environ.get(name)}
    return {"runtime_env": {"env_vars": env}} if env else {}


def _compute(ray: Any, size: int | None, *, actors: bool) -> dict[str, Any]:
    """How many tasks (at most) or actors a stage runs, in the form this Ray version takes."""
    data = ray.data
    if actors:
        return {"compute": data.ActorPoolStrategy(size=size)}
    if size is None:
        return {}
    if hasattr(data, "TaskPoolStrategy"):
        return {"compute": data.TaskPoolStrategy(size=size)}
    return {"concurrency": size}  # pragma: no cover - Ray releases before TaskPoolStrategy


def _run(
    ray: Any,
    pipeline: Pipeline,
    files: list[tuple[Source, str]],
    settings: RayConfig,
    force: bool,
    report: IndexReport,
    listed: set[str],
    on_progress: Callable[[int], None] | None,
) -> None:
    from ray.data import DataContext

    embedder = pipeline.embedder
    if not hasattr(embedder, "to_dict") or not hasattr(type(embedder), "from_dict"):
        raise ConfigError(
            f"the Ray engine rebuilds the embedder on each actor from its {{type, "
            f"init_parameters}}; {type(embedder).__name__} has no to_dict() / from_dict()"
        )
    store = pipeline.store  # the driver opens (or creates) the collection before the workers
    server = store.backend == "server"
    assets = pipeline.assets
    # Listing only measures pages; they are rendered by the render stage (prefetch 0).
    ingest = pipeline.config.ingest.model_copy(update={"prefetch": 0, "workers": 0})
    opener = StoreOpener(pipeline.config.store, store.schema) if server else None
    env = _worker_env(pipeline.config.store) if server else {}
    stored_ids = None
    if not server and not force:
        snapshot = StoredIds.of(store)
        stored_ids = ray.put(snapshot) if len(snapshot) else None
        logger.info("Ray: %d points already stored in %s", len(snapshot), store.name)

    context = DataContext.get_current()
    progress_bars = context.enable_progress_bars
    context.enable_progress_bars = False  # the caller's on_progress reports progress
    try:
        data = ray.data.from_items(
            [_record("source", file) for file in files],
            override_num_blocks=min(len(files), MAX_LISTING_BLOCKS),
        )
        data = data.flat_map(
            list_source,
            fn_kwargs={
                "ingest": ingest,
                "embedder_id": embedder.id,
                "batch_size": settings.batch_size,
                "force": force,
                "store": opener,
                "stored_ids": stored_ids,
            },
            num_cpus=settings.cpus_per_task,
            **_compute(ray, settings.render_concurrency, actors=False),
            **env,
        )
        # The render tasks reserve the memory of their batch of pages. Being different from
        # the stages around it, this also keeps Ray Data from fusing the render stage into the
        # listing task before it (one task per file would render a long PDF alone) or into the
        # embedding actors after it (rendering would hold up the model).
        data = data.map_batches(
            render_pages,
            batch_size=settings.batch_size,
            num_cpus=settings.cpus_per_task,
            memory=RENDER_MEMORY_BASE + settings.batch_size * RENDER_MEMORY_PER_PAGE,
            **_compute(ray, settings.render_concurrency, actors=False),
        )
        data = data.map_batches(
            EmbedPages,
            fn_constructor_kwargs={
                "embedder_class": type(embedder),
                "embedder_spec": embedder.to_dict(),
                "embedder_id": embedder.id,
                "pooler": pipeline.pooler,
                "views": store.schema.views,
            },
            batch_size=settings.batch_size,
            num_cpus=settings.cpus_per_actor,
            num_gpus=settings.gpus_per_actor or None,
            **_compute(ray, settings.num_embed_actors, actors=True),
        )
        if server:
            data = data.map_batches(
                WritePages,
                fn_constructor_kwargs={
                    "store": opener,
                    "assets": AssetOpener.of(assets),
                    "embedder_id": embedder.id,
                },
                batch_size=settings.batch_size,
                num_cpus=settings.cpus_per_writer,
                **_compute(ray, settings.write_concurrency, actors=True),
                **env,
            )
        tally = _Tally(store, report, listed, on_progress)
        _drain(data, settings, store, assets, embedder.id, tally)
    finally:
        context.enable_progress_bars = progress_bars
    if report.indexed:
        store.optimize()


@dataclasses.dataclass
class _Doc:
    listed: int | None = None  # items of the file, once its listing task finished
    handled: int = 0  # skipped + failed + written
    written: int = 0


class _Tally:
    """The driver's account of the job: the report, progress, and each file's items, to
    publish a file's points (written pending) once all of them are handled."""

    def __init__(
        self,
        store: VectorStore,
        report: IndexReport,
        listed: set[str],
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self.store = store
        self.report = report
        self.listed_sources = listed
        self.on_progress = on_progress
        self.docs: dict[str, _Doc] = collections.defaultdict(_Doc)

    def handled(self, source: str, n: int, *, written: int = 0) -> None:
        doc = self.docs[source]
        doc.handled += n
        doc.written += written
        if self.on_progress is not None and n:
            self.on_progress(n)
        self._settle(source)

    def listed(self, source: str, n: int) -> None:
        self.listed_sources.add(source)
        self.docs[source].listed = n
        self._settle(source)

    def _settle(self, source: str) -> None:
        doc = self.docs[source]
        if doc.listed is None or doc.handled < doc.listed:
            return
        del self.docs[source]
        if doc.written:
            published = self.store.publish(source)
            logger.info("published %s (%d new items)", source, published)


def _drain(
    data: Any,
    settings: RayConfig,
    store: VectorStore,
    assets: AssetStore,
    embedder_id: str,
    tally: _Tally,
) -> None:
    """Consume the job's output on the driver: count, collect failures, publish finished files,
    and (embedded store) write what the actors embedded."""
    from mmrag.pipeline.indexing import drop_stale_versions, write_embedded

    report = tally.report
    pending: list[Any] = []

    def flush() -> None:
        # The embedded store is written here, by the only process that has it open.
        for _ in drop_stale_versions((item for item, _, _ in pending), store):
            pass
        write_embedded(pending, store, assets, embedder_id, pending=True)
        report.indexed += len(pending)
        counts = collections.Counter(item.source for item, _, _ in pending)
        pending.clear()
        for source, n in counts.items():
            tally.handled(source, n, written=n)

    for batch in data.iter_batches(batch_size=settings.batch_size, batch_format="numpy"):
        for kind, blob in zip(batch["kind"], batch["data"], strict=True):
            value = pickle.loads(blob)
            if kind == _EMBEDDED:
                pending.append(value)
            elif kind == _WRITTEN:
                for source, n in value.items():
                    report.indexed += n
                    tally.handled(source, n, written=n)
            elif kind == _SKIPPED:
                source, n = value
                report.skipped += n
                tally.handled(source, n)
            elif kind == _FAILED_ITEM:
                report.failed.append(value)
                tally.handled(value.source, 1)
            elif kind == _FAILED_FILE:
                report.failed.append(value)
            elif kind == _LISTED:
                tally.listed(*value)
        if len(pending) >= settings.batch_size:
            flush()
    if pending:
        flush()
