"""One tiny-model pipeline over the bundled sample, indexed once and shared by this folder.

The settings are those of ``tests/integration/pipeline/conftest.py`` (``tiny_config``), at
session scope so the LangChain tests search one index instead of re-indexing per test.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmrag.config import PipelineConfig
from mmrag.pipeline.pipeline import Pipeline

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"


def tiny_pipeline_config(model: Path, index: Path) -> PipelineConfig:
    """The tiny ColModernVBert pipeline of the integration tests, storing into ``index``."""
    return PipelineConfig.from_dict(
        {
            "embedder": {
                "type": "colmodernvbert",
                "init_parameters": {"model": str(model), "device": "cpu"},
            },
            "ingest": {"dpi": 72, "video_fps": 0.5},
            "store": {"path": str(index)},
        }
    )


@pytest.fixture(scope="session")
def tiny_config_for(tiny_colmodernvbert: Path) -> Callable[[Path], PipelineConfig]:
    """``tiny_config_for(index_folder)``: the tiny pipeline's config, storing there."""
    return lambda index: tiny_pipeline_config(tiny_colmodernvbert, index)


@pytest.fixture(scope="session")
def indexed_pipeline(
    tmp_path_factory: pytest.TempPathFactory, tiny_colmodernvbert: Path
) -> Iterator[Pipeline]:
    """A pipeline with the sample's PDF, images and video indexed (read-only for tests)."""
    root = tmp_path_factory.mktemp("langchain")
    docs = root / "docs"
    shutil.copytree(SAMPLE, docs)
    with Pipeline(tiny_pipeline_config(tiny_colmodernvbert, root / "index")) as pipe:
        report = pipe.index([docs])
        assert report.ok, report.failed
        yield pipe
