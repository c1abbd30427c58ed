"""A tiny-model pipeline over a folder of generated media."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmrag.config import PipelineConfig

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled sample (tests modify it)."""
    target = tmp_path / "docs"
    shutil.copytree(SAMPLE, target)
    return target


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_colmodernvbert: Path) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "embedder": {
                "type": "colmodernvbert",
                "init_parameters": {"model": str(tiny_colmodernvbert), "device": "cpu"},
            },
            "ingest": {"dpi": 72, "video_fps": 0.5},
            "store": {"path": str(tmp_path / "index")},
        }
    )
