"""The model catalogue as data, exact-name dispatch, family detection from the checkpoint."""

from __future__ import annotations

import json

import pytest

from mmrag.embedders import detect_family, load_embedder
from mmrag.embedders.catalogue import FAMILIES, SUPPORTED_MODELS, describe, list_supported_models
from mmrag.errors import ConfigError
from mmrag.registry import COMPONENTS

pytestmark = pytest.mark.unit

REQUIRED_IDS = {
    "VLM2Vec/VLM2Vec-V2.0",
    "TIGER-Lab/VLM2Vec-Qwen2VL-2B",
    "royokong/e5-v",
    "vidore/colqwen2-v1.0-hf",
    "vidore/colpali-v1.3-hf",
    "ModernVBERT/colmodernvbert-merged",
    "ViT-B-32/laion2b_s34b_b79k",
}


def test_catalogue_lists_the_published_checkpoints():
    names = {m["name"] for m in list_supported_models()}
    assert names >= REQUIRED_IDS
    assert len(names) == len(SUPPORTED_MODELS)  # names are unique


def test_every_family_is_registered_and_multi_vector_families_are_128d():
    assert set(FAMILIES) == set(COMPONENTS["embedder"])
    for model in SUPPORTED_MODELS:
        assert model.family in FAMILIES
        if model.kind == "multi":
            assert model.dim == 128


def test_filter_by_family():
    assert {m["family"] for m in list_supported_models("colqwen2")} == {"colqwen2"}
    with pytest.raises(ConfigError, match="allowed: clip"):
        list_supported_models("colbert")


def test_dispatch_is_by_exact_name_and_unknown_names_list_supported():
    assert describe("vidore/colpali-v1.3-hf").family == "colpali"
    with pytest.raises(ConfigError, match=r"(?s)not in the model catalogue.*vidore/colqwen2-v1\.0"):
        describe("vidore/colqwen2")  # a substring is not a match


@pytest.mark.parametrize(
    ("model_type", "family"),
    [
        ("colqwen2", "colqwen2"),
        ("colpali", "colpali"),
        ("llava_next", "e5v"),
        ("qwen2_vl", "vlm2vec"),
        ("colmodernvbert", "colmodernvbert"),
    ],
)
def test_family_is_read_from_the_checkpoint_config(tmp_path, model_type, family):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
    assert detect_family(str(tmp_path)) == family


def test_open_clip_folder_and_unsupported_architecture(tmp_path):
    clip_dir = tmp_path / "clip"
    clip_dir.mkdir()
    (clip_dir / "open_clip_config.json").write_text("{}")
    assert detect_family(str(clip_dir)) == "clip"
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match="model_type 'bert' is not an architecture"):
        detect_family(str(bert))


def test_unknown_hub_id_needs_a_family():
    with pytest.raises(ConfigError, match="name its family"):
        load_embedder("someone/my-colqwen-finetune")
    with pytest.raises(ConfigError, match="unknown embedder family 'colbert'"):
        load_embedder("someone/my-colqwen-finetune", family="colbert")


def test_adapter_folder_family_comes_from_its_base(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base)}))
    assert detect_family(str(adapter)) == "vlm2vec"
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "Qwen/Qwen2-VL-2B-Instruct"})
    )
    with pytest.raises(ConfigError, match="LoRA adapter on 'Qwen/Qwen2-VL-2B-Instruct'"):
        detect_family(str(adapter))
