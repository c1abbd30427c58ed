"""CLIP embedder without a model: name parsing, identity, settings."""

from __future__ import annotations

import doctest

import pytest

import mmrag.embedders.clip as clip_module
from mmrag.embedders import load_embedder
from mmrag.embedders.base import Embedder
from mmrag.embedders.clip import ClipEmbedder, open_clip_name
from mmrag.errors import ConfigError
from mmrag.registry import resolve

pytestmark = pytest.mark.unit


def test_registry_and_catalogue_resolve_to_the_class():
    assert resolve("embedder", "clip") is ClipEmbedder
    embedder = load_embedder("ViT-B-32/laion2b_s34b_b79k")
    assert isinstance(embedder, ClipEmbedder)
    assert isinstance(embedder, Embedder)
    assert (embedder.kind, embedder.dim) == ("single", 512)
    assert not embedder.is_loaded


def test_model_names_map_to_open_clip_arguments(tmp_path):
    assert open_clip_name("ViT-L-14/laion2b_s32b_b82k") == ("ViT-L-14", "laion2b_s32b_b82k")
    assert open_clip_name("hf-hub:org/repo") == ("hf-hub:org/repo", None)
    (tmp_path / "open_clip_config.json").write_text("{}")
    assert open_clip_name(str(tmp_path)) == (f"local-dir:{tmp_path}", None)


@pytest.mark.parametrize("name", ["ViT-B-32", "/ViT-B-32", "ViT-B-32/"])
def test_incomplete_names_are_refused_with_the_fix(name):
    with pytest.raises(ConfigError, match="ARCH/PRETRAINED"):
        ClipEmbedder(name)


def test_revision_only_for_hub_ids():
    assert ClipEmbedder("hf-hub:org/repo", revision="abc").revision == "abc"
    with pytest.raises(ConfigError, match="applies only to 'hf-hub:'"):
        ClipEmbedder("ViT-B-32/laion2b_s34b_b79k", revision="abc")


def test_id_and_round_trip(hub_cache):
    embedder = ClipEmbedder("ViT-B-32/laion2b_s34b_b79k", batch_size=4, device="cpu")
    assert embedder.id == "clip:ViT-B-32/laion2b_s34b_b79k"  # a pretrained tag: fixed weights
    assert embedder.id == ClipEmbedder("ViT-B-32/laion2b_s34b_b79k").id
    commit = hub_cache("org/repo", "abc")
    assert ClipEmbedder("hf-hub:org/repo", revision="abc").id == f"clip:hf-hub:org/repo@{commit}"
    assert ClipEmbedder("ViT-L-14/laion2b_s32b_b82k").id != embedder.id
    data = embedder.to_dict()
    assert data["type"] == "clip"
    assert ClipEmbedder.from_dict(data).to_dict() == data


def test_module_doctests():
    assert doctest.testmod(clip_module, optionflags=doctest.ELLIPSIS).failed == 0
