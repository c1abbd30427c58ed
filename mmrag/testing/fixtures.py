"""Pytest plugin: session fixtures that build the tiny models once and hand out their paths.

Enable it in a ``conftest.py``::

    pytest_plugins = ["mmrag.testing.fixtures"]

then ask for ``tiny_models_dir`` (the directory holding every model, as written by
``python -m mmrag.testing build``) or one model's directory, e.g.::

    def test_loads(tiny_colpali):
        processor = AutoProcessor.from_pretrained(tiny_colpali)

A model that cannot be built here (a missing optional package) makes its fixture skip the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.testing.zoo import build_all, get_spec


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with every buildable tiny model in ``<name>/``, built once per session."""
    root = tmp_path_factory.mktemp("tiny_models")
    build_all(root)
    return root


def _model_dir(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_dir():
        missing = ", ".join(get_spec(name).missing_requirements()) or "unknown reason"
        pytest.skip(f"tiny model {name!r} was not built (missing: {missing})")
    return path


@pytest.fixture(scope="session")
def tiny_qwen2vl(tiny_models_dir: Path) -> Path:
    """Tiny ``Qwen2VLForConditionalGeneration`` (stands in for Qwen/Qwen2-VL-2B-Instruct)."""
    return _model_dir(tiny_models_dir, "qwen2vl")


@pytest.fixture(scope="session")
def tiny_colqwen2(tiny_models_dir: Path) -> Path:
    """Tiny ``ColQwen2ForRetrieval`` (stands in for vidore/colqwen2-v1.0-hf)."""
    return _model_dir(tiny_models_dir, "colqwen2")


@pytest.fixture(scope="session")
def tiny_colpali(tiny_models_dir: Path) -> Path:
    """Tiny ``ColPaliForRetrieval`` (stands in for vidore/colpali-v1.3-hf)."""
    return _model_dir(tiny_models_dir, "colpali")


@pytest.fixture(scope="session")
def tiny_colmodernvbert(tiny_models_dir: Path) -> Path:
    """Tiny ``ColModernVBertForRetrieval`` (stands in for ModernVBERT/colmodernvbert-merged)."""
    return _model_dir(tiny_models_dir, "colmodernvbert")


@pytest.fixture(scope="session")
def tiny_idefics3(tiny_models_dir: Path) -> Path:
    """Tiny ``Idefics3ForConditionalGeneration`` (stands in for SmolVLM-256M-Instruct)."""
    return _model_dir(tiny_models_dir, "idefics3")


@pytest.fixture(scope="session")
def tiny_smolvlm(tiny_models_dir: Path) -> Path:
    """Tiny ``SmolVLMForConditionalGeneration`` (SmolVLM2); skips without ``num2words``."""
    return _model_dir(tiny_models_dir, "smolvlm")


@pytest.fixture(scope="session")
def tiny_llava_next(tiny_models_dir: Path) -> Path:
    """Tiny ``LlavaNextForConditionalGeneration`` (stands in for royokong/e5-v).

    Set ``processor.tokenizer.padding_side = "left"`` after loading its processor.
    """
    return _model_dir(tiny_models_dir, "llava_next")


@pytest.fixture(scope="session")
def tiny_open_clip(tiny_models_dir: Path) -> Path:
    """Tiny ``open_clip.CLIP``; load with ``"local-dir:" + str(path)``."""
    return _model_dir(tiny_models_dir, "open_clip")


@pytest.fixture(scope="session")
def tiny_monoqwen(tiny_qwen2vl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny Qwen2-VL in MonoQwen2-VL's layout (peft-saved)."""
    from mmrag.testing.rerankers import build_monoqwen_adapter

    return build_monoqwen_adapter(tiny_qwen2vl, tmp_path_factory.mktemp("tiny_monoqwen"))


@pytest.fixture(scope="session")
def tiny_score_head(tiny_qwen2vl: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A jina-reranker-m0-layout checkpoint (4.x keys, ``score.0`` / ``score.2`` head)."""
    from mmrag.testing.rerankers import build_score_head_checkpoint

    return build_score_head_checkpoint(tiny_qwen2vl, tmp_path_factory.mktemp("tiny_score_head"))
