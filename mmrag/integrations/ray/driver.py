"""The Ray engine's driver: discovers the files, runs the stages on the cluster, drains their
rows into the report and finishes each file (drop stale versions, publish) once all of its
items are handled, exactly as the local job does.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError, IngestError, MissingDependencyError
from mmrag.integrations.ray.rows import (
    EMBEDDED,
    FAILED_FILE,
    FAILED_ITEM,
    LISTED,
    SKIPPED,
    WRITTEN,
    AssetOpener,
    StoredIds,
    StoreOpener,
    record,
)
from mmrag.integrations.ray.stages import EmbedPages, WritePages, list_source, render_pages
from mmrag.pipeline.indexing import steps
from mmrag.types import IndexReport

if TYPE_CHECKING:
    from mmrag.config import RayConfig, StoreConfig
    from mmrag.pipeline.indexing.labels import Labels
    from mmrag.pipeline.ingest.discovery import Source
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore

__all__ = ["index_with_ray"]

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


# -- the driver ----------------------------------------------------------------------------------


def index_with_ray(
    pipeline: Pipeline,
    sources: Iterable[str | os.PathLike[str]],
    *,
    force: bool = False,
    report: IndexReport | None = None,
    on_progress: Callable[[int], None] | None = None,
    labels: Labels | None = None,
    **overrides: Any,
) -> IndexReport:
    """Index ``sources`` with ``pipeline``'s components on a Ray cluster; returns the report.

    ``overrides`` replace ``[ray]`` settings for this job (e.g. ``address="auto"``,
    ``num_embed_actors=4``, ``gpus_per_actor=1``). Joins the cluster ``address`` names, or the
    one this process already runs in; otherwise starts Ray on this machine for the job (and
    stops it afterwards). ``on_progress(n)`` is called with the number of items handled
    (indexed, skipped or failed) as results arrive. ``labels`` attach the user's metadata
    (and sidecars) and the tenant, as on the local engine.

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
            _run(ray, pipeline, files, settings, force, report, listed, on_progress, labels)
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
    labels: Labels | None = None,
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
            [record("source", file) for file in files],
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
                "labels": labels,
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
                fn_constructor_kwargs={"store": opener, "assets": AssetOpener.of(assets)},
                batch_size=settings.batch_size,
                num_cpus=settings.cpus_per_writer,
                **_compute(ray, settings.write_concurrency, actors=True),
                **env,
            )
        tenant = labels.tenant if labels is not None else None
        tally = _Tally(store, assets, report, listed, on_progress, tenant)
        with store.bulk():  # a server builds its graphs once, after the last write
            _drain(data, settings, store, assets, tally)
    finally:
        context.enable_progress_bars = progress_bars
    if report.indexed:
        store.optimize()


@dataclasses.dataclass
class _Doc:
    listed: int | None = None  # items of the file, once its listing task finished
    handled: int = 0  # skipped + failed + written
    written: int = 0
    sha256: str | None = None  # the content listed


class _Tally:
    """The driver's account of the job: the report, progress, and each file's items, to
    publish a file's points (written pending) once all of them are handled."""

    def __init__(
        self,
        store: VectorStore,
        assets: AssetStore | None,
        report: IndexReport,
        listed: set[str],
        on_progress: Callable[[int], None] | None,
        tenant: str | None = None,
    ) -> None:
        self.tenant = tenant
        self.store = store
        self.assets = assets
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

    def listed(self, source: str, n: int, sha256: str | None) -> None:
        self.listed_sources.add(source)
        self.docs[source].listed = n
        self.docs[source].sha256 = sha256
        self._settle(source)

    def _settle(self, source: str) -> None:
        doc = self.docs[source]
        if doc.listed is None or doc.handled < doc.listed:
            return
        del self.docs[source]
        steps.finish(self.store, self.assets, source, doc.sha256, tenant=self.tenant)


def _drain(
    data: Any, settings: RayConfig, store: VectorStore, assets: AssetStore, tally: _Tally
) -> None:
    """Consume the job's output on the driver: count, collect failures, finish each file once
    all its items are handled, and (embedded store) write what the actors embedded."""
    report = tally.report
    pending: list[steps.Work] = []

    def flush() -> None:
        # The embedded store is written here, by the only process that has it open.
        steps.write(pending, store, assets)
        report.indexed += len(pending)
        counts = collections.Counter(work.item.source for work in pending)
        pending.clear()
        for source, n in counts.items():
            tally.handled(source, n, written=n)

    for rows in data.iter_batches(batch_size=settings.batch_size, batch_format="numpy"):
        for kind, blob in zip(rows["kind"], rows["data"], strict=True):
            value = pickle.loads(blob)
            if kind == EMBEDDED:
                pending.append(value)
            elif kind == WRITTEN:
                for source, n in value.items():
                    report.indexed += n
                    tally.handled(source, n, written=n)
            elif kind == SKIPPED:
                source, n = value
                report.skipped += n
                tally.handled(source, n)
            elif kind == FAILED_ITEM:
                report.failed.append(value)
                tally.handled(value.source, 1)
            elif kind == FAILED_FILE:
                report.failed.append(value)
            elif kind == LISTED:
                tally.listed(*value)
        if len(pending) >= settings.batch_size:
            flush()
    if pending:
        flush()
