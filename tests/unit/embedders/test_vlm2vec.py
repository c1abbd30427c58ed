"""VLM2Vec embedder without a model: published prompts, identity, settings, pooling helpers."""

from __future__ import annotations

import doctest

import pytest
import torch

import mmrag.embedders._lora as lora_module
import mmrag.embedders.vlm2vec as vlm2vec_module
from mmrag.embedders import load_embedder
from mmrag.embedders._lora import AdapterLoadError, module_path
from mmrag.embedders.base import Embedder
from mmrag.embedders.vlm2vec import VLM2VecEmbedder, last_token, positions_from_mask
from mmrag.errors import ConfigError
from mmrag.registry import resolve

pytestmark = pytest.mark.unit


def test_registry_and_catalogue_resolve_to_the_class(hub_cache):
    assert resolve("embedder", "vlm2vec") is VLM2VecEmbedder
    for name in ("VLM2Vec/VLM2Vec-V2.0", "TIGER-Lab/VLM2Vec-Qwen2VL-2B"):
        hub_cache(name)  # on Python < 3.12 the Protocol check reads ``id``
        embedder = load_embedder(name)
        assert isinstance(embedder, VLM2VecEmbedder)
        assert isinstance(embedder, Embedder)
        assert (embedder.kind, embedder.dim) == ("single", 1536)
        assert not embedder.is_loaded  # the constructor and dim load nothing


def test_published_prompts():
    # VLM2Vec src/data/eval_dataset/vidore_dataset.py + src/model/processor.py:process_input_text
    embedder = VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0")
    assert embedder.query_prompt("what is the revenue?") == (
        "Find a document image that matches the given query: what is the revenue?"
    )
    assert embedder.document_prompt() == (
        "<|image_pad|> Understand the content of the provided document image."
    )
    assert embedder.query_prompt("this chart", with_image=True) == (
        "<|image_pad|> Find a document image that matches the given query: this chart"
    )
    assert embedder.query_prompt(None, with_image=True) == embedder.document_prompt()
    with pytest.raises(ValueError, match="needs text"):
        embedder.query_prompt(None)


def test_id_is_stable_and_changes_with_every_setting(hub_cache):
    commit = hub_cache("VLM2Vec/VLM2Vec-V2.0")
    hub_cache("VLM2Vec/VLM2Vec-V2.0", "abc")
    hub_cache("TIGER-Lab/VLM2Vec-Qwen2VL-2B")
    base = VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0")
    assert base.id == VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0").id
    assert base.id.startswith(f"vlm2vec:VLM2Vec/VLM2Vec-V2.0@{commit}#")
    variants = [
        VLM2VecEmbedder("TIGER-Lab/VLM2Vec-Qwen2VL-2B"),
        VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", revision="abc"),
        VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", query_instruction="Find:"),
        VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", document_instruction="Represent the page."),
        VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", max_pixels=28 * 28 * 768),
        VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", min_pixels=28 * 28 * 8),
        VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", base_model="Qwen/Qwen2-VL-7B-Instruct"),
        VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", base_revision="def"),
    ]
    ids = {base.id, *(v.id for v in variants)}
    assert len(ids) == len(variants) + 1
    # device, dtype and batch size do not change the vectors, so not the id either
    assert VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0", device="cpu", batch_size=2).id == base.id


def test_catalogue_base_model_is_part_of_the_settings():
    settings = VLM2VecEmbedder("VLM2Vec/VLM2Vec-V2.0").id_settings()
    assert settings["base_model"] == "Qwen/Qwen2-VL-2B-Instruct"
    assert settings["min_pixels"] == 28 * 28 * 4
    assert settings["max_pixels"] == 28 * 28 * 1280
    assert "base_model" not in VLM2VecEmbedder("/some/merged/checkpoint").id_settings()


def test_to_dict_round_trip(hub_cache):
    hub_cache("org/adapter", "r2")
    embedder = VLM2VecEmbedder(
        "org/adapter",
        base_model="org/base",
        base_revision="r1",
        query_instruction="Q:",
        max_pixels=28 * 28 * 64,
        revision="r2",
        batch_size=3,
        device="cpu",
    )
    data = embedder.to_dict()
    assert data["type"] == "vlm2vec"
    again = VLM2VecEmbedder.from_dict(data)
    assert again.to_dict() == data
    assert again.id == embedder.id


def test_invalid_image_budget_is_refused():
    with pytest.raises(ConfigError, match="min_pixels <= max_pixels"):
        VLM2VecEmbedder("x", min_pixels=1000, max_pixels=10)


def test_positions_ignore_padding_on_either_side():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]])
    assert positions_from_mask(mask).tolist() == [[0, 0, 0, 1], [0, 1, 0, 0], [0, 1, 2, 3]]


def test_last_token_for_left_and_right_padding():
    hidden = torch.arange(12.0).reshape(3, 4, 1)  # (batch, tokens, dim)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]])
    assert last_token(hidden, mask).flatten().tolist() == [3.0, 5.0, 11.0]


def test_adapter_key_parsing():
    assert module_path("base_model.model.model.layers.3.mlp.up_proj.lora_B.weight") == (
        "model.layers.3.mlp.up_proj",
        "lora_B.weight",
    )
    with pytest.raises(AdapterLoadError, match="does not start with"):
        module_path("model.layers.0.q_proj.lora_A.weight")
    with pytest.raises(AdapterLoadError, match="not a LoRA/DoRA parameter"):
        module_path("base_model.model.model.layers.0.q_proj.weight")


@pytest.mark.parametrize("module", [vlm2vec_module, lora_module])
def test_module_doctests(module):
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
