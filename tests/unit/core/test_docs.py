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


def test_readme_toml_example_is_a_valid_config(monkeypatch):
    monkeypatch.delenv("MMRAG_STORE__BACKEND", raising=False)
    (toml,) = _blocks("toml")
    cfg = PipelineConfig.from_toml_string(toml)
    assert cfg.store.backend == "server"
    assert cfg.retrieval.plan == "global@200 -> rows@50 -> full@10"


def test_readme_error_example_matches_the_real_message():
    shown = next(b for b in _blocks("text") if "invalid configuration" in b).strip()
    with pytest.raises(ConfigError) as err:
        PipelineConfig.from_dict({"store": {"backend": "sqlite"}})
    assert str(err.value) == shown


@pytest.mark.parametrize(
    "module",
    [
        "mmrag",
        "mmrag.types",
        "mmrag.auth",
        "mmrag.config",
        "mmrag.pipeline.plan",
        "mmrag.registry",
        "mmrag.device",
        "mmrag.errors",
        "mmrag.info",
    ],
)
def test_module_doctests(module, monkeypatch):
    monkeypatch.delenv("MY_QDRANT_KEY", raising=False)
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
