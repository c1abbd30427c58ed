"""E5-V embedder without a model: published prompts, identity, settings."""

from __future__ import annotations

import doctest

import pytest

import mmrag.embedders.e5v as e5v_module
from mmrag.embedders import load_embedder
from mmrag.embedders.base import Embedder
from mmrag.embedders.e5v import E5VEmbedder
from mmrag.errors import ConfigError
from mmrag.registry import resolve

pytestmark = pytest.mark.unit

#: The README of https://github.com/kongds/E5-V, character for character.
LLAMA3_TEMPLATE = (
    "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n \n"
)


def test_registry_and_catalogue_resolve_to_the_class(hub_cache):
    hub_cache("royokong/e5-v")  # on Python < 3.12 the Protocol check reads ``id``
    assert resolve("embedder", "e5v") is E5VEmbedder
    embedder = load_embedder("royokong/e5-v")
    assert isinstance(embedder, E5VEmbedder)
    assert isinstance(embedder, Embedder)
    assert (embedder.kind, embedder.dim) == ("single", 4096)
    assert not embedder.is_loaded


def test_published_prompts():
    embedder = E5VEmbedder("royokong/e5-v")
    assert embedder.document_prompt() == (
        "<|start_header_id|>user<|end_header_id|>\n\n<image>\nSummary above image in one word: "
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n \n"
    )
    assert embedder.query_prompt("A dog sitting in the grass.") == (
        "<|start_header_id|>user<|end_header_id|>\n\nA dog sitting in the grass.\n"
        "Summary above sentence in one word: <|eot_id|><|start_header_id|>assistant"
        "<|end_header_id|>\n\n \n"
    )
    # VLM2Vec's E5-V baseline (src/model/processor.py, e5_v_prompt_template)
    assert embedder.query_prompt("red", with_image=True) == (
        "<|start_header_id|>user<|end_header_id|>\n\n<image>\nred\n"
        "Summary above image and text in one word: <|eot_id|><|start_header_id|>assistant"
        "<|end_header_id|>\n\n \n"
    )
    assert embedder.query_prompt(None, with_image=True) == embedder.document_prompt()
    # the README builds them as llama3_template.format(...) + .replace('<sent>', text)
    readme_text = LLAMA3_TEMPLATE.format("<sent>\nSummary above sentence in one word: ")
    assert embedder.query_prompt("x {y}") == readme_text.replace("<sent>", "x {y}")


def test_id_is_stable_and_changes_with_the_prompts(hub_cache):
    hub_cache("royokong/e5-v")
    hub_cache("royokong/e5-v", "abc")
    hub_cache("other/e5v")
    base = E5VEmbedder("royokong/e5-v")
    assert base.id == E5VEmbedder("royokong/e5-v", batch_size=1, device="cpu").id
    variants = [
        E5VEmbedder("royokong/e5-v", revision="abc"),
        E5VEmbedder("other/e5v"),
        E5VEmbedder("royokong/e5-v", template="[INST] {} [/INST]"),
        E5VEmbedder("royokong/e5-v", text_prompt="<sent>\nIn one word: "),
        E5VEmbedder("royokong/e5-v", image_prompt="<image>\nIn one word: "),
        E5VEmbedder("royokong/e5-v", image_text_prompt="<image><sent> one word: "),
    ]
    assert len({base.id, *(v.id for v in variants)}) == len(variants) + 1


def test_to_dict_round_trip(hub_cache):
    hub_cache("royokong/e5-v")
    embedder = E5VEmbedder("royokong/e5-v", text_prompt="<sent> one word: ", dtype="bfloat16")
    data = embedder.to_dict()
    assert data["type"] == "e5v"
    again = E5VEmbedder.from_dict(data)
    assert again.to_dict() == data and again.id == embedder.id


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"template": "no slot"}, "exactly one '{}'"),
        ({"text_prompt": "no text slot"}, "text_prompt must hold <sent>"),
        ({"image_prompt": "no image"}, "image_prompt must hold <image>"),
        ({"image_text_prompt": "<image> only"}, "image_text_prompt must hold <sent>"),
    ],
)
def test_malformed_prompts_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        E5VEmbedder("royokong/e5-v", **kwargs)


def test_module_doctests():
    assert doctest.testmod(e5v_module, optionflags=doctest.ELLIPSIS).failed == 0
