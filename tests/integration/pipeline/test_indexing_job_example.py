"""examples/batch_index.py runs as documented (on the tiny model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "batch_index.py"


def test_batch_index_example_indexes_writes_the_report_and_skips_on_rerun(
    tiny_config, sample_dir, tmp_path
):
    config = tmp_path / "mmrag.toml"
    tiny_config.ingest.workers = 2  # the worker processes need the example's __main__ guard
    tiny_config.save(config)
    report = tmp_path / "report.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, str(EXAMPLE), str(sample_dir), "--config", str(config)]
    result = subprocess.run(
        [*command, "--report", str(report)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["indexed"] == 12 and data["failed"] == [] and data["sources"] == 5
    assert "first run: 12 indexed, 0 skipped (already present), 0 failed" in result.stdout
    assert "re-run: 0 indexed, 12 skipped (already present), 0 failed" in result.stdout
    assert "pages/s" in result.stderr  # the progress bar
