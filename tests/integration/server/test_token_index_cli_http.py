"""A collection with a token index through the CLI and the HTTP API: indexing, byte-identical
copies, searches that start with ``tokens@K``, and deleting a source keep the token index in step
with the pages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mmrag.cli import app
from mmrag.config import PipelineConfig
from mmrag.integrations.server import create_app
from mmrag.store.embedded import EmbeddedStore

from .conftest import SAMPLE, server_config, wait_for_job

pytestmark = pytest.mark.integration

PLAN = "tokens@16 -> distinct@10 -> full@10"
PDF = SAMPLE / "acme_solar_annual_report_2024.pdf"
PNG = SAMPLE / "customer_survey_slide.png"
runner = CliRunner()


def _with_token_index(config: PipelineConfig) -> PipelineConfig:
    data = config.model_dump(mode="json")
    data["pooling"]["token_index"] = True
    data["retrieval"]["plan"] = PLAN
    return PipelineConfig.from_dict(data)


def _token_vectors_match_the_pages(index: Path) -> int:
    """Open the index: its token index holds exactly its pages' ``distinct`` vectors."""
    with EmbeddedStore(index, "mmrag") as store:
        rows = sum(len(r.vectors["distinct"]) for r in _records(store))
        assert store.info().token_vectors == rows
        return store.count()


def _records(store: EmbeddedStore):
    offset = None
    while True:
        records, offset = store.scroll(limit=64, offset=offset, with_vectors=True)
        yield from records
        if offset is None:
            return


def _cli_hits(config: Path) -> list[dict]:
    result = runner.invoke(app, ["search", "revenue", "-c", str(config), "--json", "-k", "50"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_index_copy_search_and_delete_keep_the_token_index_in_step(tmp_path, tiny_config):
    config = tmp_path / "mmrag.toml"
    _with_token_index(tiny_config).save(config)
    folder = tmp_path / "twins"
    folder.mkdir()
    shutil.copy(PDF, folder / "a.pdf")
    shutil.copy(PDF, folder / "b.pdf")
    result = runner.invoke(app, ["index", str(folder), "-c", str(config)])
    assert result.exit_code == 0, result.output
    a, b = str((folder / "a.pdf").resolve()), str((folder / "b.pdf").resolve())
    hits = _cli_hits(config)
    assert {h["item"]["source"] for h in hits} == {a, b}
    assert all(set(h["stage_scores"]) == {"tokens", "distinct", "full"} for h in hits)
    pages = _token_vectors_match_the_pages(Path(tiny_config.store.path))

    result = runner.invoke(app, ["delete", str(folder / "a.pdf"), "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert {h["item"]["source"] for h in _cli_hits(config)} == {b}
    assert _token_vectors_match_the_pages(Path(tiny_config.store.path)) == pages // 2

    shutil.copy(folder / "b.pdf", folder / "c.pdf")  # indexed from b's stored vectors
    result = runner.invoke(app, ["index", str(folder), "-c", str(config)])
    assert result.exit_code == 0, result.output
    c = str((folder / "c.pdf").resolve())
    assert {h["item"]["source"] for h in _cli_hits(config)} == {a, b, c}
    assert _token_vectors_match_the_pages(Path(tiny_config.store.path)) == pages // 2 * 3


def test_http_upload_search_and_delete_keep_the_token_index_in_step(tmp_path, tiny_colmodernvbert):
    index = tmp_path / "index"
    config = _with_token_index(server_config(index, tiny_colmodernvbert))
    uploads = tmp_path / "up"
    with TestClient(create_app(config, upload_dir=uploads)) as client:
        files = [
            ("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in (PDF, PNG)
        ]
        job = wait_for_job(client, client.post("/api/v1/index", files=files).json()["id"])
        assert job["status"] == "succeeded", job
        pdf, png = str(uploads.resolve() / PDF.name), str(uploads.resolve() / PNG.name)
        hits = client.get("/api/v1/search", params={"q": "solar", "k": 10}).json()["hits"]
        assert {h["item"]["source"] for h in hits} == {pdf, png}
        assert all("tokens" in h["stage_scores"] for h in hits)
        response = client.delete("/api/v1/sources", params={"source": pdf})
        assert response.status_code == 200, response.text
        hits = client.get("/api/v1/search", params={"q": "solar", "k": 10}).json()["hits"]
        assert {h["item"]["source"] for h in hits} == {png}
    assert _token_vectors_match_the_pages(index) == 1
