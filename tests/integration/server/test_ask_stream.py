"""``POST /api/v1/ask`` streamed as server-sent events, and the stand-ins ``/health`` reports.

A real app over the tiny ColModernVBert and the tiny SmolVLM generator (greedy, so the streamed
answer can be compared with the JSON one), read through FastAPI's TestClient.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mmrag.config import PipelineConfig
from mmrag.integrations.server import create_app
from mmrag.integrations.server.service import stand_ins

from .conftest import SAMPLE, assert_error, server_config, wait_for_job

pytestmark = pytest.mark.integration

PDF = SAMPLE / "acme_solar_annual_report_2024.pdf"
PNG = SAMPLE / "customer_survey_slide.png"
QUESTION = {"question": "How much did revenue grow in 2024?", "k": 2}
EVENTS = {"Accept": "text/event-stream"}


def _config(index: Path, embedder: Path, generator: Path | None) -> PipelineConfig:
    config = server_config(index, embedder, generator)
    if config.generator is not None:  # enough tokens for several pieces
        config.generator.init_parameters["max_new_tokens"] = 24
    return config


def _upload(client: TestClient, *paths: Path, headers: dict[str, str] | None = None) -> None:
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    response = client.post("/api/v1/index", files=files, headers=headers)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"], headers=headers)
    assert job["status"] == "succeeded", job


def _events(response: Any) -> list[tuple[str, Any]]:
    """The server-sent events of ``response``, parsed: ``[(event, data as JSON), ...]``."""
    assert response.status_code == 200, response.read()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and name is not None:
            events.append((name, json.loads("\n".join(data))))
            name, data = None, []
    assert name is None, "the stream ended inside an event"
    return events


def _stream(client: TestClient, body: dict[str, Any], **kwargs: Any) -> list[tuple[str, Any]]:
    with client.stream("POST", "/api/v1/ask", json=body, **kwargs) as response:
        return _events(response)


@pytest.fixture(scope="module")
def client(tmp_path_factory, tiny_colmodernvbert, tiny_smolvlm):
    root = tmp_path_factory.mktemp("stream")
    app = create_app(_config(root / "index", tiny_colmodernvbert, tiny_smolvlm))
    with TestClient(app) as client:
        _upload(client, PDF, PNG)
        yield client


def test_tokens_stream_before_the_final_answer(client):
    events = _stream(client, QUESTION, headers=EVENTS)
    names = [name for name, _ in events]
    assert names[-1] == "answer" and names.count("answer") == 1, names
    assert set(names[:-1]) == {"token"} and len(names) >= 3, names  # several pieces first
    tokens = [data["text"] for name, data in events if name == "token"]
    assert all(isinstance(t, str) and t for t in tokens)
    answer = events[-1][1]
    assert "".join(tokens).strip() == answer["text"]
    assert 1 <= len(answer["sources"]) <= 2
    assert {h["id"] for h in answer["citations"]} <= {h["id"] for h in answer["sources"]}
    for hit in answer["sources"]:
        assert hit["image_url"] == f"/api/v1/items/{hit['id']}/image"
        assert hit["citation"].startswith(hit["item"]["source"])
    assert {"retrieve", "generate", "total"} <= set(answer["timings"])
    assert answer["usage"]["completion_tokens"] >= 1

    # the same answer as the JSON route gives (greedy decoding)
    plain = client.post("/api/v1/ask", json=QUESTION)
    assert plain.status_code == 200 and plain.headers["content-type"] == "application/json"
    assert plain.json()["text"] == answer["text"]
    assert [h["id"] for h in plain.json()["sources"]] == [h["id"] for h in answer["sources"]]


def test_stream_query_parameter_streams_too(client):
    events = _stream(client, QUESTION, params={"stream": "true"})
    assert events[-1][0] == "answer" and events[0][0] == "token"


def test_filters_apply_to_streamed_answers(client):
    slide = next(s for s in client.get("/api/v1/sources").json()["sources"] if "png" in s)
    events = _stream(client, {**QUESTION, "source": [slide], "k": 5}, headers=EVENTS)
    assert [h["item"]["source"] for h in events[-1][1]["sources"]] == [slide]


def test_requests_refused_before_generation_are_json_errors(client, tiny_config):
    bad = {**QUESTION, "filter": ["year>>1"]}
    bad_filter = client.post("/api/v1/ask", json=bad, headers=EVENTS)
    assert_error(bad_filter, 400, "bad_request")
    empty = client.post("/api/v1/ask", json={"question": ""}, headers=EVENTS)
    assert_error(empty, 422, "validation_error", "question")
    with TestClient(create_app(tiny_config)) as search_only:  # no generator configured
        refused = search_only.post("/api/v1/ask", json=QUESTION, params={"stream": "true"})
        assert_error(refused, 503, "unavailable", "no generator is configured")


def test_a_generator_that_cannot_load_is_an_error_event(tmp_path, tiny_colmodernvbert):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    app = create_app(_config(tmp_path / "index", tiny_colmodernvbert, empty))
    with TestClient(app, raise_server_exceptions=False) as client:
        events = _stream(client, QUESTION, headers=EVENTS)
        assert [name for name, _ in events] == ["error"]
        error = events[0][1]
        assert error["status"] >= 500 and str(empty) in error["error"]["message"]
        # the ask lock was released: the JSON route answers, with the same status and code
        plain = client.post("/api/v1/ask", json=QUESTION)
        assert_error(plain, error["status"], error["error"]["code"], str(empty))


def test_a_tenant_streams_answers_from_its_own_pages_only(
    tmp_path, tiny_colmodernvbert, tiny_smolvlm, monkeypatch
):
    monkeypatch.setenv("MMRAG_KEY_A", "key-a")
    monkeypatch.setenv("MMRAG_KEY_B", "key-b")
    app = create_app(
        _config(tmp_path / "index", tiny_colmodernvbert, tiny_smolvlm),
        tenants={"a": "env:MMRAG_KEY_A", "b": "env:MMRAG_KEY_B"},
    )
    with TestClient(app) as client:
        _upload(client, PNG, headers={"X-API-Key": "key-a"})
        _upload(client, PDF, headers={"X-API-Key": "key-b"})
        unauthorised = client.post("/api/v1/ask", json=QUESTION, headers=EVENTS)
        assert_error(unauthorised, 401, "unauthorized")
        events = _stream(client, {**QUESTION, "k": 5}, headers={**EVENTS, "X-API-Key": "key-a"})
        sources = events[-1][1]["sources"]
        assert [Path(h["item"]["source"]).name for h in sources] == [PNG.name]


def test_health_names_the_tiny_stand_ins(client):
    health = client.get("/api/v1/health").json()
    assert health["stand_ins"] == {
        "embedder": "ModernVBERT/colmodernvbert-merged",
        "generator": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
    }


def test_stand_ins_are_read_from_the_model_folders(tmp_path, tiny_colmodernvbert, tiny_smolvlm):
    real = PipelineConfig.from_dict({"embedder": {"type": "colpali"}, "generator": None})
    assert stand_ins(real) == {}  # hub ids are real models
    plain = tmp_path / "plain-model"  # a local folder without mmrag.testing's manifest
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    config = _config(tmp_path / "index", plain, tiny_smolvlm)
    assert stand_ins(config) == {"generator": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"}
    config.embedder.init_parameters["model"] = str(tiny_colmodernvbert)
    assert stand_ins(config)["embedder"] == "ModernVBERT/colmodernvbert-merged"


def test_openapi_documents_the_stream(client):
    ask = client.get("/openapi.json").json()["paths"]["/api/v1/ask"]["post"]
    assert "text/event-stream" in ask["responses"]["200"]["content"]
    assert "application/json" in ask["responses"]["200"]["content"]
    assert [p["name"] for p in ask["parameters"]] == ["stream"]
    for words in ("Accept: text/event-stream", "event: token", "event: answer", "event: error"):
        assert words in ask["description"]
