"""Docs are tested code: README snippets and module doctests."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_the_two_commands():
    first = _blocks("bash")[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make quickstart", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_readme_toml_examples_are_valid_configs(monkeypatch):
    monkeypatch.delenv("MMRAG_STORE__BACKEND", raising=False)
    (main,) = [b for b in _blocks("toml") if "[store]" in b]
    (components,) = [b for b in _blocks("toml") if "[reranker]" in b]
    cfg = PipelineConfig.from_toml_string(main)
    assert cfg.store.backend == "server"
    assert cfg.retrieval.plan == "tokens@128 -> distinct@32 -> full@10"
    cfg = PipelineConfig.from_toml_string(components)
    assert cfg.reranker is not None and cfg.reranker.build().stage == "monoqwen"
    assert cfg.generator is not None and cfg.generator.build().settings.max_images == 4


def test_readme_error_example_matches_the_real_message():
    shown = next(b for b in _blocks("text") if "invalid configuration" in b).strip()
    with pytest.raises(ConfigError) as err:
        PipelineConfig.from_dict({"store": {"backend": "sqlite"}})
    assert str(err.value) == shown


def _modules() -> list[str]:
    """Every module of the package (``__main__`` modules run the CLI when imported)."""
    import pkgutil

    import mmrag

    found = pkgutil.walk_packages(mmrag.__path__, "mmrag.")
    return ["mmrag", *sorted(m.name for m in found if not m.name.endswith("__main__"))]


@pytest.mark.parametrize("module", _modules())
def test_module_doctests(module, monkeypatch):
    monkeypatch.delenv("MY_QDRANT_KEY", raising=False)
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
