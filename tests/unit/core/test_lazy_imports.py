"""`import mmrag` (and the CLI's start) must not import torch, transformers or qdrant."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

HEAVY = (
    "torch",
    "transformers",
    "qdrant_client",
    "qdrant_edge",
    "open_clip",
    "fitz",
    "av",
    "ray",
    "fastapi",
    "langchain_core",
    "PIL",
)


def _imported_modules(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "mmrag" in names
    return names


@pytest.mark.parametrize(
    "code",
    [
        "import mmrag",
        "import mmrag; mmrag.PipelineConfig(); mmrag.Item; mmrag.parse_plan('dense@5')",
        "import mmrag.cli",
        "import mmrag.testing",
        "import mmrag.pipeline.ingest",
    ],
)
def test_no_heavy_import(code):
    heavy = _imported_modules(code) & set(HEAVY)
    assert heavy == set(), f"`{code}` imported {sorted(heavy)}"
