"""Fixtures of the HTTP server tests: a tiny-model pipeline config and a job-polling helper."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mmrag.config import PipelineConfig

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"


def server_config(
    index_dir: Path, colmodernvbert: Path, smolvlm: Path | None = None
) -> PipelineConfig:
    """A pipeline on the tiny ColModernVBert, with the tiny SmolVLM generator if given (else
    none: the default generator is a real model that cannot be downloaded here)."""
    data: dict[str, Any] = {
        "embedder": {
            "type": "colmodernvbert",
            "init_parameters": {"model": str(colmodernvbert), "device": "cpu"},
        },
        "ingest": {"dpi": 72, "video_fps": 0.5},
        "store": {"path": str(index_dir)},
        "generator": None,
    }
    if smolvlm is not None:
        data["generator"] = {
            "type": "transformers",
            "init_parameters": {"model": str(smolvlm), "max_new_tokens": 8, "device": "cpu"},
        }
    return PipelineConfig.from_dict(data)


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_colmodernvbert: Path) -> PipelineConfig:
    return server_config(tmp_path / "index", tiny_colmodernvbert)


def wait_for_job(
    client: Any,
    job_id: str,
    *,
    timeout: float = 180.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll ``GET /api/v1/jobs/{id}`` (with ``headers``: an API key) until the job has
    finished; returns its last state."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job = response.json()
        if job["status"] not in ("queued", "running"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s: {job}")
        time.sleep(0.1)


def assert_error(response: Any, status: int, code: str, *words: str) -> None:
    """``response`` is the JSON error ``{"error": {"code", "message"}}`` of ``status``, its
    message naming every one of ``words``."""
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    for word in words:
        assert word in response.json()["error"]["message"], response.json()
