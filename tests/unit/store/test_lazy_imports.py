"""The store, retrieval and evaluation modules import no Qdrant library until used."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "module",
    [
        "mmrag.store",
        "mmrag.store.records",
        "mmrag.store.plan",
        "mmrag.pipeline.retrieval",
        "mmrag.pipeline.evaluate",
    ],
)
def test_no_qdrant_import(module):
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('qdrant_client', 'qdrant_edge', 'fsspec', 'torch', 'PIL')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
