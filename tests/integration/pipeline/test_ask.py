"""End to end: index the bundled sample, then retrieve → rerank → generate with tiny models.

Citations must map back to the right pages and video seconds: every cited hit is compared with
the item that ingesting the sample again produces for the same id.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmrag.cli import app
from mmrag.config import PipelineConfig
from mmrag.pipeline.ingest import iter_items
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.records import SearchFilter

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUESTION = "How much did ACME Solar's revenue grow in 2024?"


@pytest.fixture
def ask_config(tiny_config: PipelineConfig, tiny_idefics3: Path) -> PipelineConfig:
    data = tiny_config.model_dump(mode="json")
    data["generator"] = {
        "type": "transformers",
        "init_parameters": {"model": str(tiny_idefics3), "device": "cpu", "max_new_tokens": 8},
    }
    return PipelineConfig.from_dict(data)


def ingested_by_id(sample_dir: Path, config: PipelineConfig, embedder_id: str) -> dict:
    return {
        item.with_embedder(embedder_id).id: item.with_embedder(embedder_id)
        for item in iter_items([str(sample_dir)], config.ingest)
    }


def test_ask_answers_with_citations_that_map_back_to_pages_and_seconds(sample_dir, ask_config):
    with Pipeline(ask_config) as rag:
        report = rag.index([str(sample_dir)])
        answer = rag.ask(QUESTION, k=3)
        video = rag.ask(QUESTION, k=2, filter=SearchFilter.build(modality="video_frame"))
        truth = ingested_by_id(sample_dir, ask_config, rag.embedder.id)
    assert report.ok and report.indexed == len(truth) > 10

    assert isinstance(answer.text, str)
    assert set(answer.timings) - {"load"} == {"retrieve", "rerank", "generate", "total"}
    assert answer.timings["total"] >= answer.timings["generate"] > 0
    assert len(answer.sources) == 3 and answer.citations
    for hit in answer.sources:
        original = truth[hit.id]
        assert (hit.item.source, hit.item.page, hit.item.timestamp_s) == (
            original.source,
            original.page,
            original.timestamp_s,
        )
        assert hit.item.text == original.text
        assert hit.item.load_image().size == original.load_image().size
    assert [h.id for h in answer.sources] == [h.id for h in rag_search(ask_config, 3)]

    assert len(video.sources) == 2
    for hit in video.sources:
        assert hit.item.modality == "video_frame"
        assert hit.item.timestamp_s == truth[hit.id].timestamp_s
        assert " @ 0:0" in hit.citation()


def rag_search(config: PipelineConfig, k: int):
    with Pipeline(config) as rag:
        return rag.search(QUESTION, k=k)


def test_ask_with_monoqwen_reranker_reorders_the_candidates(sample_dir, ask_config, tiny_monoqwen):
    data = ask_config.model_dump(mode="json")
    data["reranker"] = {
        "type": "monoqwen",
        "init_parameters": {"model": str(tiny_monoqwen), "device": "cpu", "max_pixels": 12544},
    }
    config = PipelineConfig.from_dict(data)
    with Pipeline(config) as rag:
        rag.index([str(sample_dir)])
        candidates = rag.search(QUESTION, k=10, rerank=False)  # the plan's full@10 candidates
        answer = rag.ask(QUESTION, k=3)
        direct = rag.reranker.score_images(QUESTION, [hit.item.load_image() for hit in candidates])
    expected = sorted(range(len(candidates)), key=lambda i: -direct[i])[:3]
    assert [h.id for h in answer.sources] == [candidates[i].id for i in expected]
    for hit in answer.sources:
        assert set(hit.stage_scores) == {"tokens", "distinct", "full", "monoqwen"}
        assert hit.score == pytest.approx(hit.stage_scores["monoqwen"])
    assert answer.timings["rerank"] > 0


def test_maxsim_reranker_equals_the_engines_full_stage(sample_dir, tiny_config):
    data = tiny_config.model_dump(mode="json")
    data["generator"] = None
    data["reranker"] = {"type": "maxsim"}
    config = PipelineConfig.from_dict(data)
    with Pipeline(config) as rag:
        rag.index([str(sample_dir)])
        reranked = rag.search(QUESTION, k=5, plan="distinct@16")  # pooled candidates, MaxSim after
        exact = rag.search(QUESTION, k=5, plan="distinct@16 -> full@16", rerank=False)
    assert [h.id for h in reranked] == [h.id for h in exact]
    for ours, engine in zip(reranked, exact, strict=True):
        assert ours.stage_scores["maxsim"] == pytest.approx(engine.stage_scores["full"], rel=1e-4)


def test_ask_without_generator_is_a_clear_error(sample_dir, tiny_config):
    from mmrag.errors import ConfigError

    data = tiny_config.model_dump(mode="json")
    data["generator"] = None
    with (
        Pipeline(PipelineConfig.from_dict(data)) as rag,
        pytest.raises(ConfigError, match=r"\[generator\]"),
    ):
        rag.ask(QUESTION)


def test_cli_ask_prints_answer_and_sources_or_json(sample_dir, ask_config, tmp_path):
    config_path = tmp_path / "mmrag.json"
    ask_config.save(config_path)
    runner = CliRunner()
    indexed = runner.invoke(app, ["index", str(sample_dir), "-c", str(config_path)])
    assert indexed.exit_code == 0, indexed.output

    result = runner.invoke(app, ["ask", QUESTION, "-c", str(config_path), "--json", "-k", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"text", "citations", "sources", "timings", "usage"}
    assert len(data["sources"]) == 2 and data["citations"]
    assert all("citation" in s and "stage_scores" in s for s in data["sources"])

    video = runner.invoke(
        app, ["ask", QUESTION, "-c", str(config_path), "--modality", "video_frame", "-k", "2"]
    )
    assert video.exit_code == 0, video.output
    assert "Sources (* cited):" in video.stdout and "Timings:" in video.stdout
    assert "retrieve " in video.stdout
    assert video.stdout.count("acme_update_video.mp4 @ 0:") == 2
