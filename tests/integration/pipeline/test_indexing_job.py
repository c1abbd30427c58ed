"""The indexing job: overlapped stages, bounded memory, progress, pending documents, resume."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError
from mmrag.pipeline.indexing import IndexProgress, index_items
from mmrag.pipeline.ingest import iter_items
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.contract import PENDING_FIELD
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.plan import parse_plan
from mmrag.store.records import Point, SearchFilter
from mmrag.store.schema import CollectionSchema
from mmrag.store.server import ServerStore
from mmrag.testing.media import make_pdf
from mmrag.types import Item

pytestmark = pytest.mark.integration

EVERYTHING = "full@1000"  # exact MaxSim over every visible point


def visible_ids(pipe: Pipeline) -> set[str]:
    return {hit.id for hit in pipe.search("annual report revenue", k=1000, plan=EVERYTHING)}


def stored(pipe: Pipeline, source: str | None = None) -> dict[str, bool]:
    """Every stored point of ``source`` (all sources: None) -> whether it is pending."""
    where = SearchFilter.build(source=source) if source else None
    return {r.id: bool(r.payload.get(PENDING_FIELD)) for r in pipe.store.iter_records(where)}


@pytest.fixture
def two_pdfs(tmp_path: Path) -> Path:
    docs = tmp_path / "pdfs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", pages=4)
    make_pdf(docs / "b.pdf", pages=9, seed=3)
    return docs


def items_until_stored(pipe: Pipeline, docs: Path, name: str, count: int) -> Iterator[Item]:
    """The items of ``docs``, breaking down (as a crashed reader would) after yielding
    ``count`` items of the file ``name``, once the store holds them (pending)."""
    source = str(docs / name)
    before = len(stored(pipe, source))
    yielded = 0
    for item in iter_items([docs], pipe.config.ingest):
        if item.source == source:
            if yielded == count:
                deadline = time.monotonic() + 60
                while len(stored(pipe, source)) < before + count:
                    assert time.monotonic() < deadline, "the job did not store the items"
                    time.sleep(0.02)
                raise RuntimeError("the reader crashed")
            yielded += 1
        yield item


@pytest.mark.parametrize("backend", ["embedded", "local"])
def test_pending_points_are_invisible_to_search_until_published(tmp_path, backend):
    schema = CollectionSchema(embedder_id="toy", kind="single", dim=4)
    if backend == "embedded":
        store: Any = EmbeddedStore(tmp_path / "index", "c", schema)
    else:
        store = ServerStore.connect(location=":memory:", collection="c", schema=schema)
    with store:
        rng = np.random.default_rng(0)
        items = [
            Item(source=s, source_sha256=f"{i:064x}", modality="image", embedder_id="toy")
            for i, s in enumerate(["done.png", "half.png", "half.png"])
        ]
        points = [
            Point(
                item.id,
                {"dense": rng.standard_normal(4).astype(np.float32)},
                {**item.to_payload(), **({PENDING_FIELD: 1} if i else {})},
            )
            for i, item in enumerate(items)
        ]
        store.upsert(points)
        plan, query = parse_plan("dense@10"), {"dense": np.ones(4, np.float32)}
        assert [r.id for r in store.query(plan, query)] == [points[0].id]
        assert set(store.score([p.id for p in points], query)["dense"]) == {points[0].id}
        assert store.count() == 3  # stored, only hidden
        assert store.publish("half.png") == 2
        assert {r.id for r in store.query(plan, query)} == {p.id for p in points}
        assert store.publish("half.png") == 0


def test_progress_reports_files_pages_rate_and_eta(tiny_config, sample_dir):
    handled: list[int] = []
    snapshots: list[IndexProgress] = []
    with Pipeline(tiny_config) as pipe:
        report = pipe.index([sample_dir], on_progress=handled.append, on_status=snapshots.append)
    assert report.ok and report.sources == 5
    assert sum(handled) == report.indexed == 12
    last = snapshots[-1]
    assert (last.files_done, last.files_total) == (5, 5)
    assert last.pages_done == last.pages_total == 12
    assert last.indexed == 12 and last.pages_per_s > 0 and last.eta_s == 0
    dones = [s.pages_done for s in snapshots]
    assert dones == sorted(dones)
    assert all(s.files_total == 5 for s in snapshots)  # files are listed before pages flow


class SlowEmbedder:
    """The real tiny embedder, with each batch taking at least 50 ms (a slow model), recording
    when and in which thread it ran."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[tuple[str, float, float]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def embed_images(self, images: Any) -> Any:
        started = time.monotonic()
        result = self._inner.embed_images(images)
        time.sleep(0.05)
        self.calls.append((threading.current_thread().name, started, time.monotonic()))
        return result


class WatchedStore:
    """The real store; counts the points written and records the writing thread."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.written = 0
        self.threads: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def upsert(self, points: Any, **kwargs: Any) -> int:
        points = list(points)
        self.threads.add(threading.current_thread().name)
        n = self._inner.upsert(points, **kwargs)
        self.written += n
        return n


def test_stages_overlap_in_their_own_threads_with_bounded_memory(tiny_config, tmp_path):
    pdf = make_pdf(tmp_path / "long.pdf", pages=40)
    with Pipeline(tiny_config) as pipe:
        embedder = SlowEmbedder(pipe.embedder)
        store = WatchedStore(pipe.store)
        loads: list[tuple[str, float]] = []
        in_flight: list[int] = []  # pages loaded and not stored yet, at each load

        def watched(item: Item) -> Item:
            def load() -> Any:
                image = item.image_loader()
                loads.append((threading.current_thread().name, time.monotonic()))
                in_flight.append(len(loads) - store.written)
                return image

            return Item(**{**item.__dict__, "image_loader": load})

        stream = (watched(item) for item in iter_items([pdf], pipe.config.ingest))
        report = index_items(
            stream, embedder=embedder, store=store, pooler=pipe.pooler, batch_size=2
        )
        assert report.ok and report.indexed == 40 == pipe.store.count()
    assert {name for name, _ in loads} == {"mmrag-ingest"}
    assert {name for name, _, _ in embedder.calls} == {threading.main_thread().name}
    assert store.threads == {"mmrag-writer"}
    # Pages were read while the model worked on earlier ones (the stages overlap) ...
    overlapped = sum(any(start < t < end for _, start, end in embedder.calls) for _, t in loads)
    assert overlapped >= 10
    # ... and never more than the queues hold: 2 batches waiting to embed, 1 embedding, 2
    # waiting to be written, 1 being written, 1 in the reader's hand (2 pages a batch).
    assert max(in_flight) <= 2 * 2 + 2 + 2 * 2 + 2 + 1 < 40


def test_an_interrupted_job_never_shows_its_half_document_and_a_rerun_completes_it(
    tiny_config, two_pdfs, tmp_path
):
    with Pipeline(tiny_config) as pipe:
        with pytest.raises(RuntimeError, match="the reader crashed"):
            index_items(
                items_until_stored(pipe, two_pdfs, "b.pdf", 2),
                embedder=pipe.embedder,
                store=pipe.store,
                pooler=pipe.pooler,
                assets=pipe.assets,
                batch_size=2,
            )
        a, b = (str(two_pdfs / name) for name in ("a.pdf", "b.pdf"))
        assert list(stored(pipe, a).values()) == [False] * 4  # finished: published
        half = stored(pipe, b)
        assert 2 <= len(half) < 9 and all(half.values())  # written, pending
        assert visible_ids(pipe) == set(stored(pipe, a))  # search never shows b.pdf

        report = pipe.index([two_pdfs])
        assert report.ok and (report.indexed, report.skipped) == (9 - len(half), 4 + len(half))
        assert visible_ids(pipe) == set(stored(pipe))
        assert not any(stored(pipe).values())
        ids = set(stored(pipe))

    reference = tiny_config.model_copy(deep=True)
    reference.store.path = str(tmp_path / "reference")
    with Pipeline(reference) as pipe:
        pipe.index([two_pdfs])
        assert set(stored(pipe)) == ids and pipe.store.count() == 13


def test_a_changed_file_keeps_its_old_version_searchable_until_the_new_one_is_complete(
    tiny_config, two_pdfs
):
    b = str(two_pdfs / "b.pdf")
    with Pipeline(tiny_config) as pipe:
        pipe.index([two_pdfs])
        old = set(stored(pipe, b))
        make_pdf(two_pdfs / "b.pdf", pages=7, seed=11)  # new content, same path
        with pytest.raises(RuntimeError, match="the reader crashed"):
            index_items(
                items_until_stored(pipe, two_pdfs, "b.pdf", 2),
                embedder=pipe.embedder,
                store=pipe.store,
                pooler=pipe.pooler,
                assets=pipe.assets,
                batch_size=2,
            )
        assert old <= visible_ids(pipe)  # the old version is still what search shows
        assert not (visible_ids(pipe) - old - set(stored(pipe, str(two_pdfs / "a.pdf"))))

        report = pipe.index([two_pdfs])
        assert report.ok
        new = set(stored(pipe, b))
        assert len(new) == 7 and not (new & old)
        assert visible_ids(pipe) >= new and not (visible_ids(pipe) & old)
        assert not any(pipe.assets.exists(i) for i in old)  # the old page images went too
        assert all(pipe.assets.exists(i) for i in new)


def test_force_rewrites_without_hiding_the_document(tiny_config, two_pdfs):
    with Pipeline(tiny_config) as pipe:
        first = pipe.index([two_pdfs])
        forced = pipe.index([two_pdfs], force=True)
        assert forced.indexed == first.indexed == 13 and pipe.store.count() == 13
        assert not any(stored(pipe).values())


def test_an_unknown_engine_is_a_clear_error(tiny_config):
    with pytest.raises(ConfigError, match="unknown indexing engine 'spark'"):
        Pipeline(tiny_config).index(["x"], engine="spark")


def test_index_items_still_takes_an_item_stream(tiny_config: PipelineConfig, sample_dir):
    with Pipeline(tiny_config) as pipe:
        report = index_items(
            iter_items([sample_dir], pipe.config.ingest),
            embedder=pipe.embedder,
            store=pipe.store,
            pooler=pipe.pooler,
        )
        assert report.indexed == 12 == pipe.store.count()


def test_rerun_skips_a_completely_stored_pdf_without_rendering_it(
    tiny_config, sample_dir, monkeypatch
):
    import mmrag.pipeline.ingest.source as source_module

    opened: list[str] = []
    real = source_module.iter_source

    def spy(source: Any, *args: Any, **kwargs: Any) -> Iterator[Item]:
        opened.append(Path(source).name)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(source_module, "iter_source", spy)
    pdf = "acme_solar_annual_report_2024.pdf"
    with Pipeline(tiny_config) as pipe:
        first = pipe.index([sample_dir])
        assert pdf in opened
        ids = {r.id for r in pipe.store.iter_records()}

        opened.clear()
        again = pipe.index([sample_dir])
        assert pdf not in opened  # not one page rendered
        assert len(opened) == 4  # the images and the video take the per-item path
        assert (again.indexed, again.skipped, again.ok) == (0, first.indexed, True)

        where = SearchFilter.build(source=str(sample_dir / pdf), pages=(2, 2))
        (lost,) = [r.id for r in pipe.store.iter_records(where)]
        pipe.store.delete([lost])  # a page missing: the PDF goes the normal way again
        opened.clear()
        mended = pipe.index([sample_dir])
        assert pdf in opened
        assert (mended.indexed, mended.skipped) == (1, first.indexed - 1)
        assert {r.id for r in pipe.store.iter_records()} == ids

        opened.clear()
        forced = pipe.index([sample_dir], force=True)
        assert pdf in opened and forced.indexed == first.indexed
