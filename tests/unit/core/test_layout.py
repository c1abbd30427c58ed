"""The package layout holds: no import cycle, layers respected, a cheap ``import mmrag``, no
module over 500 lines, and the public API at the root."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_imports", ROOT / "scripts/check_imports.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_imports_script_passes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/check_imports.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no cycle" in result.stdout


def test_the_checker_finds_a_cycle_and_a_layer_violation():
    check = _checker()
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert check.cycles(graph) == [["a", "b", "c"]]
    problems = check.layer_violations({"mmrag.store.records": {"mmrag.pipeline.pipeline"}})
    assert problems and "mmrag.store.records imports mmrag.pipeline.pipeline" in problems[0]


def test_the_checker_counts_function_level_imports_but_not_type_checking_ones(tmp_path):
    check = _checker()
    pkg = tmp_path / "mmrag"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mmrag import c\n"
        "def f():\n    from mmrag.b import x\n"
    )
    (pkg / "b.py").write_text("x = 1\n")
    (pkg / "c.py").write_text("")
    modules = {
        "mmrag": pkg / "__init__.py",
        "mmrag.a": pkg / "a.py",
        "mmrag.b": pkg / "b.py",
        "mmrag.c": pkg / "c.py",
    }
    assert check.imports_of("mmrag.a", pkg / "a.py", modules) == {"mmrag.b"}


def test_no_module_over_500_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "mmrag").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert not long


def test_public_api_at_the_root_is_lazy_and_complete():
    code = (
        "import sys, mmrag\n"
        "heavy = [m for m in ('torch', 'transformers', 'qdrant_client', 'qdrant_edge',"
        " 'langchain_core') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "names = ['Pipeline', 'PipelineConfig', 'SearchFilter', 'Hit', 'Answer', 'IndexReport',"
        " 'load_embedder', 'MmragError', 'ConfigError', 'IngestError', 'IndexStoppedError',"
        " 'StoreError', 'MmragRetriever']\n"
        "assert set(names) <= set(dir(mmrag))\n"
        "assert all(getattr(mmrag, n) is not None for n in names)\n"
        "from mmrag.pipeline import Pipeline\n"
        "assert Pipeline is mmrag.Pipeline\n"
        "assert issubclass(mmrag.IndexStoppedError, mmrag.MmragError)\n"
        "assert issubclass(mmrag.StoreError, mmrag.MmragError)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_every_package_folder_is_a_regular_package():
    """A folder without ``__init__.py`` would be left out of the wheel by setuptools."""
    missing = [
        str(folder.relative_to(ROOT))
        for folder in (ROOT / "mmrag").rglob("*")
        if folder.is_dir() and any(folder.glob("*.py")) and not (folder / "__init__.py").is_file()
    ]
    assert not missing
