"""A local Ray cluster (2 CPUs, started once per module) and the tiny-model pipeline config."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mmrag.config import PipelineConfig

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"

#: Engine settings that fit the 2-CPU test cluster: every stage gets a slot at once.
RAY_SETTINGS: dict[str, Any] = {
    "cpus_per_actor": 0.5,
    "cpus_per_task": 0.5,
    "cpus_per_writer": 0.25,
    "batch_size": 4,
}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled sample (tests modify it)."""
    target = tmp_path / "docs"
    shutil.copytree(SAMPLE, target)
    return target


@pytest.fixture
def make_config(tmp_path: Path, tiny_colmodernvbert: Path) -> Callable[[str], PipelineConfig]:
    """``make_config(name)``: the tiny ColModernVBert pipeline with its own index folder."""

    def make(name: str) -> PipelineConfig:
        return PipelineConfig.from_dict(
            {
                "embedder": {
                    "type": "colmodernvbert",
                    "init_parameters": {"model": str(tiny_colmodernvbert), "device": "cpu"},
                },
                "ingest": {"dpi": 72, "video_fps": 0.5},
                "store": {"path": str(tmp_path / name)},
                "ray": RAY_SETTINGS,
            }
        )

    return make
