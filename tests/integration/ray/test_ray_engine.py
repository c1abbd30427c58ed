"""The Ray engine end to end on a local Ray cluster, the tiny ColModernVBert and the sample data.

The embedded store is written by the driver, so those jobs run on Ray end to end. The server
backend's parallel writers each open their own client; qdrant-client's local mode (the server
code path without a server) keeps one folder to one process, so its stages are run here one
after the other, in this process, each opening its own client as a Ray worker does.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmrag.errors import ConfigError
from mmrag.integrations.ray import (
    AssetOpener,
    EmbedPages,
    WritePages,
    index_with_ray,
    list_source,
    render_pages,
)
from mmrag.pipeline.ingest import discover
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.assets import AssetStore
from mmrag.store.contract import PENDING_FIELD
from mmrag.store.records import SearchFilter
from mmrag.store.server import ServerStore


def _points(pipe: Pipeline) -> dict[str, Any]:
    ids = [r.id for r in pipe.store.iter_records()]
    return {r.id: r for r in pipe.store.retrieve(ids, with_vectors=True)}


def _payload(record: Any) -> dict[str, Any]:
    return {k: v for k, v in record.payload.items() if k != PENDING_FIELD}


@pytest.mark.integration
@pytest.mark.slow
def test_ray_job_stores_the_same_points_as_the_local_engine(ray_cluster, make_config, sample_dir):
    # user metadata (the call's and a sidecar's) is stored the same way by both engines
    pdf = sample_dir / "acme_solar_annual_report_2024.pdf"
    Path(f"{pdf}.meta.json").write_text('{"dept": "finance", "year": 2024}')
    with Pipeline(make_config("local")) as local:
        expected = local.index([sample_dir], metadata={"dept": "ops"})
        assert expected.ok, expected.failed
        local_points = _points(local)
    progress: list[int] = []
    with Pipeline(make_config("ray")) as pipe:
        report = pipe.index(
            [sample_dir], metadata={"dept": "ops"}, engine="ray", on_progress=progress.append
        )
        assert report.ok, report.failed
        assert (report.indexed, report.skipped, report.sources) == (expected.indexed, 0, 5)
        assert sum(progress) == report.indexed
        points = _points(pipe)
        assert set(points) == set(local_points)  # deterministic ids: same pages, same ids
        for point_id, record in points.items():
            twin = local_points[point_id]
            assert _payload(record) == _payload(twin)
            assert set(record.vectors) == {"full", "global", "distinct"}
            for name, vector in record.vectors.items():  # same pixels, same model, same views
                np.testing.assert_allclose(vector, twin.vectors[name], atol=2e-3)
            assert pipe.assets.exists(point_id)
        hits = pipe.search("How much did revenue grow in 2024?", k=3)
        assert len(hits) == 3 and all(h.id in points for h in hits)
        finance = pipe.source_counts(SearchFilter.build(metadata={"dept": "finance"}))
        assert list(finance) == [str(pdf.resolve())]


@pytest.mark.integration
@pytest.mark.slow
def test_rerun_skips_everything_and_bad_files_are_reported(ray_cluster, make_config, sample_dir):
    (sample_dir / "empty.pdf").write_bytes(b"")
    (sample_dir / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with Pipeline(make_config("ray")) as pipe:
        first = pipe.index([sample_dir, sample_dir / "missing.pdf"], engine="ray")
        failed = {Path(f.source).name: f.reason for f in first.failed}
        assert set(failed) == {"empty.pdf", "garbage.png", "missing.pdf"}
        assert all(failed.values())
        assert first.indexed == pipe.store.count() > 5
        assert len(pipe.sources()) == 5
        again = pipe.index([sample_dir], engine="ray")
        assert (again.indexed, again.skipped) == (0, first.indexed)
        assert len(again.failed) == 2
        assert pipe.store.count() == first.indexed


def _batch(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    kinds = np.empty(len(rows), dtype=object)
    data = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        kinds[i], data[i] = row["kind"], row["data"]
    return {"kind": kinds, "data": data}


def _rows(batch: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [{"kind": k, "data": d} for k, d in zip(batch["kind"], batch["data"], strict=True)]


@pytest.mark.integration
@pytest.mark.slow
def test_server_stages_write_through_their_own_clients(make_config, sample_dir, tmp_path):
    pdf = sample_dir / "acme_solar_annual_report_2024.pdf"
    with Pipeline(make_config("local")) as local:
        local.index([pdf])
        expected = _points(local)
    pipe = Pipeline(make_config("unused"))
    embedder, schema = pipe.embedder, pipe.schema()
    folder = str(tmp_path / "qdrant")

    def opener() -> ServerStore:  # what each Ray worker does with a server URL
        return ServerStore.connect(path=folder, collection="docs", schema=schema)

    opener().close()  # the driver creates the collection
    (source,) = discover([pdf])
    listing = {"kind": "source", "data": pickle.dumps((source, str(pdf)))}
    ingest = pipe.config.ingest.model_copy(update={"prefetch": 0})
    common = {"ingest": ingest, "embedder_id": embedder.id, "batch_size": 4, "store": opener}
    listed = list(list_source(listing, force=False, **common))
    assert collections.Counter(r["kind"] for r in listed) == {"item": len(expected), "listed": 1}

    rendered = render_pages(_batch([r for r in listed if r["kind"] == "item"]))
    assert set(rendered["kind"]) == {"page"}
    embed = EmbedPages(type(embedder), embedder.to_dict(), embedder.id, pipe.pooler, schema.views)
    embedded = embed(rendered)
    assert set(embedded["kind"]) == {"embedded"}
    writer = WritePages(opener, AssetOpener(str(tmp_path / "assets")))
    written = _rows(writer(embedded))
    writer.store.close()
    assert [r["kind"] for r in written] == ["written"]
    assert pickle.loads(written[0]["data"]) == {str(pdf): len(expected)}

    with opener() as store:
        stored = {r.id: r for r in store.retrieve(list(expected), with_vectors=True)}
        assert set(stored) == set(expected)
        assert all(r.payload[PENDING_FIELD] for r in stored.values())  # until published
        for point_id, record in stored.items():
            assert _payload(record) == _payload(expected[point_id])
            # the embedded store keeps `full` as 8-bit TurboQuant codes (the default codec);
            # qdrant-client's local mode keeps the floats: they agree to the codec's step
            np.testing.assert_allclose(
                record.vectors["full"], expected[point_id].vectors["full"], atol=5e-3
            )
        assert store.publish(str(pdf)) == len(expected)
    assets = AssetStore(tmp_path / "assets")
    assert all(assets.exists(point_id) for point_id in expected)

    relisted = list(list_source(listing, force=False, **common))  # a re-run: all stored
    kinds = [r["kind"] for r in relisted]
    assert kinds == ["skipped"] * len(kinds[:-1]) + ["listed"]
    skipped = sum(pickle.loads(r["data"])[1] for r in relisted if r["kind"] == "skipped")
    assert skipped == len(expected)
    forced = list(list_source(listing, force=True, **common))
    assert sum(r["kind"] == "item" for r in forced) == len(expected)


@pytest.mark.integration
def test_invalid_engine_settings_are_refused_before_ray_starts(make_config, sample_dir):
    with (
        Pipeline(make_config("ray")) as pipe,
        pytest.raises(ConfigError, match="num_embed_actors"),
    ):
        index_with_ray(pipe, [sample_dir], num_embed_actors=0)
