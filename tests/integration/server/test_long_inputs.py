"""Inputs at the edges over HTTP: paths longer than any file system allows get a 4xx with a
clear (and short) message, never a 500; ``/ask`` on an empty index says so without generating."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mmrag.integrations.server import create_app
from mmrag.pipeline.rag import NOTHING_RETRIEVED

from .conftest import assert_error, server_config

pytestmark = pytest.mark.integration


@pytest.fixture
def client(tmp_path, tiny_colmodernvbert):
    docs = tmp_path / "docs"
    docs.mkdir()
    app = create_app(server_config(tmp_path / "index", tiny_colmodernvbert), allowed_roots=[docs])
    with TestClient(app, raise_server_exceptions=False) as client:
        client.docs = docs  # type: ignore[attr-defined]
        yield client


def test_a_5000_character_path_is_refused_with_400(client):
    docs: Path = client.docs
    index_path = lambda path: client.post("/api/v1/index/path", json={"path": path})  # noqa: E731
    absolute = f"{docs}/{'b' * 5000}"
    for path in (absolute, "c" * 5000, f"{docs}/" + "/".join(["d" * 200] * 25)):
        response = index_path(path)
        assert_error(response, 400, "bad_request", "path is too long", "at most 4,096")
        assert len(response.json()["error"]["message"]) < 300  # the path is not echoed whole

    assert_error(index_path(f"{docs}/{'e' * 300}.pdf"), 400, "bad_request", "304 bytes", "255")
    deep = f"{docs}/" + "/".join(["f" * 200] * 19)  # long but possible: simply not there
    response = index_path(deep)
    assert_error(response, 404, "not_found", "no such file")
    assert len(response.json()["error"]["message"]) < 300


def test_a_5000_character_source_is_refused_or_matches_nothing(client):
    response = client.delete("/api/v1/sources", params={"source": "/x/" + "s" * 5000})
    assert_error(response, 400, "bad_request", "source is too long")
    response = client.delete("/api/v1/sources", params={"source": "memory://" + "m" * 1000})
    assert_error(response, 404, "not_found", "not in the index")

    search = client.get("/api/v1/search", params={"q": "revenue", "source": "/x/" + "s" * 5000})
    assert search.status_code < 500, search.text
    if search.status_code == 200:
        assert search.json()["hits"] == []
    ask = client.post("/api/v1/ask", json={"question": "q", "source": ["/x/" + "s" * 5000]})
    assert_error(ask, 422, "validation_error", "4096")


def test_ask_on_an_empty_index_says_so(tmp_path, tiny_colmodernvbert, tiny_smolvlm):
    config = server_config(tmp_path / "index", tiny_colmodernvbert, tiny_smolvlm)
    with TestClient(create_app(config)) as client:
        response = client.post("/api/v1/ask", json={"question": "How much did revenue grow?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == NOTHING_RETRIEVED
    assert body["sources"] == [] and body["citations"] == [] and body["usage"] == {}
    assert body["timings"]["generate"] == 0.0
