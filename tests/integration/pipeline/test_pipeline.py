"""The Pipeline end to end on the tiny ColModernVBert and the embedded store."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.config import PipelineConfig
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.records import SearchFilter
from mmrag.testing.media import make_pdf

pytestmark = pytest.mark.integration


def test_index_then_search_cites_pages_and_video_seconds(tiny_config, sample_dir):
    with Pipeline(tiny_config) as pipe:
        report = pipe.index([sample_dir])
        assert report.ok, report.failed
        assert report.sources == 5
        assert report.indexed == pipe.store.count() > 5
        hits = pipe.search("How much did revenue grow in 2024?", k=50)
        assert len(hits) == 10  # the plan's last stage keeps 10
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        for hit in hits:
            assert set(hit.stage_scores) == {"tokens", "distinct", "full"}
            assert hit.stage_scores["full"] == pytest.approx(hit.score, rel=1e-4)
        modalities = {h.item.modality.value for h in pipe.search("report", k=10)}
        assert modalities <= {"pdf_page", "image", "video_frame"}
        frames = pipe.search("scene", k=5, filter=SearchFilter.build(modality="video_frame"))
        assert frames and all(h.item.timestamp_s is not None for h in frames)
        assert all(" @ 0:" in h.citation() for h in frames)
        image = pipe.assets.get(hits[0].id)  # the exact page image is kept for the generator
        assert image.size == (hits[0].item.width, hits[0].item.height)


def test_rerun_skips_everything_and_force_reindexes(tiny_config, sample_dir):
    with Pipeline(tiny_config) as pipe:
        first = pipe.index([sample_dir])
        again = pipe.index([sample_dir])
        assert (again.indexed, again.skipped) == (0, first.indexed)
        forced = pipe.index([sample_dir], force=True)
        assert forced.indexed == first.indexed
        assert pipe.store.count() == first.indexed  # overwritten, never duplicated


def test_changed_file_replaces_its_old_points(tiny_config, tmp_path):
    docs = tmp_path / "changing"
    docs.mkdir()
    pdf = docs / "notes.pdf"
    make_pdf(pdf, pages=3)
    with Pipeline(tiny_config) as pipe:
        pipe.index([docs])
        old_ids = {r.id for r in pipe.store.iter_records()}
        make_pdf(pdf, pages=2, seed=7)  # new content, same path
        report = pipe.index([docs])
        assert report.indexed == 2
        new_ids = {r.id for r in pipe.store.iter_records()}
        assert pipe.store.count() == 2
        assert not (old_ids & new_ids)


def test_bad_files_are_reported_and_the_rest_indexed(tiny_config, sample_dir):
    (sample_dir / "empty.pdf").write_bytes(b"")
    (sample_dir / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with Pipeline(tiny_config) as pipe:
        report = pipe.index([sample_dir])
        failed = {f.source.rsplit("/", 1)[-1] for f in report.failed}
        assert failed == {"empty.pdf", "garbage.png"}
        assert all(f.reason for f in report.failed)
        assert report.indexed > 5
        assert len(pipe.sources()) == 5


def test_delete_removes_points_and_page_images(tiny_config, sample_dir):
    with Pipeline(tiny_config) as pipe:
        pipe.index([sample_dir])
        pdf = next(s for s in pipe.sources() if s.endswith(".pdf"))
        ids = [r.id for r in pipe.store.iter_records(SearchFilter.build(source=pdf))]
        assert pipe.delete(pdf) == len(ids) > 0
        assert pdf not in pipe.sources()
        assert not any(pipe.assets.exists(i) for i in ids)


def test_single_vector_embedder_uses_the_dense_plan(tmp_path, tiny_open_clip, sample_dir):
    config = PipelineConfig.from_dict(
        {
            "embedder": {"type": "clip", "init_parameters": {"model": str(tiny_open_clip)}},
            "store": {"path": str(tmp_path / "clip-index")},
            "ingest": {"dpi": 72},
        }
    )
    with Pipeline(config) as pipe:
        assert str(pipe.plan()) == "dense@10"
        pipe.index([sample_dir / "system_diagram.png", sample_dir / "customer_survey_slide.png"])
        hits = pipe.search("a diagram", k=2)
        assert len(hits) == 2
        assert set(hits[0].stage_scores) == {"dense"}
        vector = pipe.store.retrieve([hits[0].id], with_vectors=True)[0].vectors["dense"]
        assert np.linalg.norm(np.asarray(vector)) == pytest.approx(1.0, abs=1e-3)
