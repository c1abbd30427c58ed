"""A fake Hugging Face cache, so that Hub ids resolve to commits offline."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """``pin(model, revision="main") -> commit``: write ``refs/<revision>`` in a private cache.

    The commit is derived from the model and revision, so two pins of different models differ.
    """
    from huggingface_hub import constants

    cache = tmp_path / "hf_cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    def pin(model: str, revision: str = "main", commit: str | None = None) -> str:
        commit = commit or hashlib.sha1(f"{model}@{revision}".encode()).hexdigest()
        ref = cache / ("models--" + model.replace("/", "--")) / "refs" / revision
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
        return commit

    return pin
