"""The first run on tiny offline models: a one-line pipeline, a config naming only a model
folder, `mmrag init --tiny`, model loading shown and timed as its own step (CLI, Python,
HTTP, `mmrag serve`), and `sources` / `delete` needing no embedder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mmrag.cli import EX_DATAERR, app
from mmrag.config import PipelineConfig
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.contract import CollectionMismatchError

pytestmark = pytest.mark.integration

runner = CliRunner()


def _cli(*args: str) -> object:
    result = runner.invoke(app, list(args))
    return result


def test_from_pretrained_reads_the_family_of_a_local_folder_and_runs(
    tmp_path, sample_dir, tiny_colmodernvbert
):
    with Pipeline.from_pretrained(
        str(tiny_colmodernvbert),
        index=tmp_path / "my_index",
        device="cpu",
        ingest={"dpi": 72, "video_fps": 0.5},
        generator=None,
    ) as pipe:
        assert pipe.config.embedder.type is None
        assert pipe.embedder.family == "colmodernvbert"
        report = pipe.index([sample_dir])
        assert report.ok and report.indexed > 5
        hits = pipe.search("revenue growth", k=3)
        assert len(hits) == 3
    assert (tmp_path / "my_index").is_dir()


def test_a_config_with_only_the_model_path_indexes_with_loading_as_its_own_step(
    tmp_path, sample_dir, tiny_colmodernvbert
):
    config = tmp_path / "mmrag.toml"
    config.write_text(
        f'[embedder]\nmodel = "{tiny_colmodernvbert}"\n[ingest]\ndpi = 72\nvideo_fps = 0.5\n'
        f'[store]\npath = "{tmp_path / "idx"}"\n'
    )
    result = _cli("index", str(sample_dir), "-c", str(config), "--no-progress")
    assert result.exit_code == 0, result.output
    output = result.output
    loading = output.index(f"loading embedder {tiny_colmodernvbert}")
    ready = re.search(r"embedder ready in (\d+\.\d) s", output)
    summary = re.search(r"indexed.* in (\d+\.\d) s \((\d+\.\d) pages/s\)", output)
    assert ready is not None and summary is not None, output
    assert loading < ready.start() < summary.start()

    again = _cli("index", str(sample_dir), "-c", str(config), "--no-progress")
    assert again.exit_code == 0, again.output
    assert "loading embedder" in again.output  # a new process loads again, timed apart


def test_init_tiny_writes_a_working_config_next_to_its_models(tmp_path, sample_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _cli("init", "--tiny")
    assert result.exit_code == 0, result.output
    assert "tiny RANDOM models" in result.output
    config = PipelineConfig.load(tmp_path / "mmrag.toml")
    models = tmp_path / "mmrag-tiny-models"
    assert Path(config.embedder.init_parameters["model"]) == models / "colmodernvbert"
    assert config.generator is not None
    assert Path(config.generator.init_parameters["model"]) == models / "idefics3"
    assert "TINY RANDOM MODELS" in (tmp_path / "mmrag.toml").read_text()

    indexed = _cli("index", str(sample_dir), "--no-progress")
    assert indexed.exit_code == 0, indexed.output
    answered = _cli("ask", "How much did revenue grow?", "--no-stream", "-k", "2")
    assert answered.exit_code == 0, answered.output
    assert re.search(r"Timings: load \d+\.\d\d s, retrieve", answered.output), answered.output

    kept = _cli("init", "--tiny", "--force", "-c", "second.toml")  # the models are reused
    assert kept.exit_code == 0, kept.output
    assert "building the tiny" not in kept.output


@pytest.fixture
def rag_config(tmp_path, tiny_config, tiny_idefics3) -> PipelineConfig:
    tiny_config.generator = PipelineConfig.from_dict(
        {
            "generator": {
                "type": "transformers",
                "init_parameters": {
                    "model": str(tiny_idefics3),
                    "max_new_tokens": 4,
                    "device": "cpu",
                },
            }
        }
    ).generator
    return tiny_config


def test_answer_timings_have_a_load_step_only_when_a_model_loaded(rag_config, sample_dir):
    from mmrag.pipeline.rag import retrieve

    with Pipeline(rag_config) as pipe:
        pipe.index([sample_dir / "acme_solar_annual_report_2024.pdf"])
    with Pipeline(rag_config) as pipe:
        first = retrieve(pipe, "revenue", k=2)
        assert first.timings["load"] > 0
        assert set(first.timings) - {"regions"} == {"load", "retrieve"}
        assert pipe.embedder.is_loaded and not pipe.generator.is_loaded
        answer = pipe.ask("How much did revenue grow?", k=2)
        assert next(iter(answer.timings)) == "load"  # the generator loaded in this call
        assert answer.timings["total"] >= answer.timings["load"] + answer.timings["generate"]
        second = pipe.ask("How much did revenue grow?", k=2)
        assert "load" not in second.timings
        assert set(second.timings) == {"retrieve", "rerank", "generate", "total"}
        assert second.timings["retrieve"] < first.timings["load"]


def test_http_search_and_ask_report_the_load_apart(rag_config, sample_dir):
    from mmrag.integrations.server import create_app

    with Pipeline(rag_config) as pipe:
        pipe.index([sample_dir / "acme_solar_annual_report_2024.pdf"])
    app_ = create_app(rag_config)
    client = TestClient(app_)  # no lifespan run: the first request opens and loads
    try:
        first = client.get("/api/v1/search", params={"q": "revenue", "k": 2})
        assert first.status_code == 200, first.text
        timing = first.headers["Server-Timing"]
        assert re.fullmatch(r"load;dur=[\d.]+, search;dur=[\d.]+", timing), timing
        load_ms = float(timing.split("load;dur=")[1].split(",")[0])
        assert load_ms / 1000 > first.json()["took_s"]  # the search alone
        second = client.get("/api/v1/search", params={"q": "revenue", "k": 2})
        assert second.headers["Server-Timing"].startswith("search;dur=")

        asked = client.post("/api/v1/ask", json={"question": "How much did revenue grow?", "k": 2})
        assert asked.status_code == 200, asked.text
        timings = asked.json()["timings"]
        assert next(iter(timings)) == "load" and timings["load"] > 0  # the generator's
        assert timings["total"] >= timings["load"]
        again = client.post("/api/v1/ask", json={"question": "And the margin?", "k": 2})
        assert "load" not in again.json()["timings"]
    finally:
        app_.state.service.pipeline.close()
    with TestClient(create_app(rag_config)) as served:  # the app's start loads the embedder
        warm = served.get("/api/v1/search", params={"q": "revenue", "k": 2})
        assert warm.headers["Server-Timing"].startswith("search;dur=")


def test_serve_says_ready_once_the_store_is_open_and_the_models_loaded(
    tmp_path, rag_config, monkeypatch
):
    import uvicorn

    seen: dict[str, object] = {}

    def run(server: object, **options: object) -> None:
        pipe = server.state.service.pipeline  # type: ignore[attr-defined]
        seen.update(embedder=pipe.embedder.is_loaded, generator=pipe.generator.is_loaded)

    monkeypatch.setattr(uvicorn, "run", run)
    config = tmp_path / "serve.toml"
    rag_config.save(config)
    result = _cli("serve", "-c", str(config), "--port", "8765")
    assert result.exit_code == 0, result.output
    assert seen == {"embedder": True, "generator": True}
    output = result.output
    assert output.index("loading") < output.index("ready in") < output.index("ready: http://")
    assert "mmrag: ready: http://127.0.0.1:8765/" in output
    assert "serving" not in output


def test_sources_and_delete_need_no_embedder_but_search_refuses_a_mismatch(
    tmp_path, tiny_config, sample_dir
):
    with Pipeline(tiny_config) as pipe:
        pipe.index([sample_dir])
    # Another pooling makes another collection schema: listing and deleting still work (no
    # embedder is built), searching or indexing is refused with both schemas named.
    other = tiny_config.model_copy(deep=True)
    other.pooling.views = ["global"]
    with Pipeline(other) as pipe:
        counts = pipe.source_counts()
        assert len(counts) == 5
        pdf = next(s for s in counts if s.endswith(".pdf"))
        assert pipe.delete(pdf) == counts[pdf]
        assert pipe._embedder is None  # never built
    config = tmp_path / "other.toml"
    other.save(config)
    listed = _cli("sources", "-c", str(config), "--json")
    assert listed.exit_code == 0, listed.output
    assert pdf not in json.loads(listed.stdout) and len(json.loads(listed.stdout)) == 4
    refused = _cli("search", "revenue", "-c", str(config))
    assert refused.exit_code == EX_DATAERR, refused.output
    assert "another embedder or pooling" in refused.output
    with Pipeline(other) as pipe:  # opened as stored first, then checked before a search
        assert len(pipe.sources()) == 4
        with pytest.raises(CollectionMismatchError, match="another embedder or pooling"):
            pipe.search("revenue")
