"""examples/doc_qa_app.py as a user runs it: a subprocess serving the sample (tiny models)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _wait(check, what: str, process: subprocess.Popen, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited ({process.returncode}) before {what}")
        try:
            result = check()
        except httpx.TransportError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_doc_qa_app_serves_and_indexes_the_folder(tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, str(ROOT / "examples" / "doc_qa_app.py"), "--tiny"]
    command += ["--port", str(port), "--workdir", str(tmp_path / "work")]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        health = _wait(
            lambda: httpx.get(f"{base}/health", timeout=10).json(), "health", process, 300
        )
        assert health["status"] == "ok" and health["ask_available"] is True
        job = _wait(
            lambda: next(
                (j for j in httpx.get(f"{base}/jobs", timeout=10).json() if j["finished_at"]),
                None,
            ),
            "the start-up indexing job",
            process,
            300,
        )
        assert job["status"] == "succeeded", job
        assert job["inputs"] == [str(ROOT / "examples" / "data")]
        assert job["report"]["sources"] == 5 and job["report"]["failed"] == []
        hits = httpx.get(f"{base}/search", params={"q": "revenue", "k": 3}, timeout=60).json()
        assert len(hits["hits"]) == 3
        assert all(h["image_url"].startswith("/api/v1/items/") for h in hits["hits"])
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "mmrag" in page.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert f"open http://127.0.0.1:{port}/" in output
