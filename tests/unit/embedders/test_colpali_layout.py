"""ColPali-family embedders without a model: identity, settings, tile layout, query validation."""

from __future__ import annotations

import doctest
import subprocess
import sys

import numpy as np
import pytest

from mmrag.embedders import colpali as colpali_module
from mmrag.embedders import load_embedder
from mmrag.embedders.base import Embedder, Query
from mmrag.embedders.colpali import (
    ColModernVBertEmbedder,
    ColPaliEmbedder,
    ColQwen2Embedder,
    _runs,
    tiles_to_page_order,
)
from mmrag.errors import ConfigError
from mmrag.registry import resolve
from mmrag.testing.inputs import sample_image

pytestmark = pytest.mark.unit

CLASSES = (ColPaliEmbedder, ColQwen2Embedder, ColModernVBertEmbedder)


@pytest.mark.parametrize("cls", CLASSES)
def test_registry_names_resolve_to_the_family_classes(cls, hub_cache):
    hub_cache("some/checkpoint")  # on Python < 3.12 the Protocol check reads ``id``
    assert resolve("embedder", cls.family) is cls
    embedder = cls("some/checkpoint")
    assert isinstance(embedder, Embedder)
    assert embedder.kind == "multi" and embedder.dim == 128


@pytest.mark.parametrize("cls", CLASSES)
def test_constructor_is_cheap_and_round_trips_through_to_dict(cls):
    embedder = cls("org/model", revision="abc123" * 6 + "abcd", batch_size=3, device="cpu")
    assert not embedder.is_loaded
    data = embedder.to_dict()
    assert data["type"] == cls.family
    again = cls.from_dict(data)
    assert again.id == embedder.id
    assert again.init_parameters() == embedder.init_parameters()


def test_catalogue_names_load_their_family():
    assert type(load_embedder("vidore/colpali-v1.3-hf")) is ColPaliEmbedder
    assert type(load_embedder("vidore/colqwen2-v1.0-hf")) is ColQwen2Embedder
    assert type(load_embedder("org/any-colmodernvbert", family="colmodernvbert")) is (
        ColModernVBertEmbedder
    )


def test_id_is_stable_and_changes_with_model_revision_and_vector_settings(hub_cache):
    commit = hub_cache("vidore/colqwen2-v1.0-hf")
    hub_cache("vidore/colqwen2-v0.1-hf")
    hub_cache("vidore/colqwen2-v1.0-hf", "r2")
    hub_cache("m")
    base = ColQwen2Embedder("vidore/colqwen2-v1.0-hf")
    assert base.id == ColQwen2Embedder("vidore/colqwen2-v1.0-hf").id
    assert base.id.startswith(f"colqwen2:vidore/colqwen2-v1.0-hf@{commit}#")
    # main, named or not, is the same commit
    assert ColQwen2Embedder("vidore/colqwen2-v1.0-hf", revision="main").id == base.id
    others = {
        ColQwen2Embedder("vidore/colqwen2-v0.1-hf").id,
        ColQwen2Embedder("vidore/colqwen2-v1.0-hf", revision="r2").id,
        ColQwen2Embedder("vidore/colqwen2-v1.0-hf", max_pixels=256 * 28 * 28).id,
        ColQwen2Embedder("vidore/colqwen2-v1.0-hf", min_pixels=8 * 28 * 28).id,
        ColQwen2Embedder("vidore/colqwen2-v1.0-hf", max_pixels=None).id,
    }
    assert base.id not in others and len(others) == 5
    # Settings that do not change vectors do not change the id.
    assert ColQwen2Embedder("vidore/colqwen2-v1.0-hf", batch_size=1, device="cpu").id == base.id
    mvb = ColModernVBertEmbedder("m")
    visual = ColModernVBertEmbedder("m", document_tokens="visual")
    # Visual tokens only: the id of indexes built before document_tokens existed (they stored
    # visual tokens only); every prompt token (the default) is another id.
    assert visual.id == f"colmodernvbert:m@{hub_cache('m')}"
    assert mvb.id.startswith(visual.id + "#") and mvb.id != visual.id
    assert ColModernVBertEmbedder("m", keep_global_image=True).id != mvb.id
    assert ColPaliEmbedder("m").id != mvb.id  # the family is part of the id


def test_colqwen2_defaults_to_the_published_image_budget():
    embedder = ColQwen2Embedder("vidore/colqwen2-v1.0-hf")
    budget = {"max_pixels": 768 * 28 * 28, "min_pixels": 4 * 28 * 28}
    assert embedder.id_settings() == {"document_tokens": "all", **budget}
    visual = ColQwen2Embedder("vidore/colqwen2-v1.0-hf", document_tokens="visual")
    assert visual.id_settings() == budget  # the id of indexes built before the setting existed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_pixels": 0}, "max_pixels must be a positive"),
        ({"min_pixels": -5}, "min_pixels must be a positive"),
        ({"min_pixels": 10_000, "max_pixels": 5_000}, "larger than max_pixels"),
    ],
)
def test_colqwen2_rejects_an_impossible_image_budget(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ColQwen2Embedder("m", **kwargs)


@pytest.mark.parametrize("cls", CLASSES)
def test_document_tokens_default_to_the_recipe_and_enter_the_id(cls):
    default, visual = (
        cls("org/m", revision="0" * 40),
        cls("org/m", revision="0" * 40, document_tokens="visual"),
    )
    assert default.document_tokens == "all" and visual.document_tokens == "visual"
    assert default.id != visual.id  # an index built one way is never read the other way
    for embedder in (default, visual):
        again = cls.from_dict(embedder.to_dict())
        assert (again.document_tokens, again.id) == (embedder.document_tokens, embedder.id)
    with pytest.raises(ConfigError, match="document_tokens must be one of 'all', 'visual'"):
        cls("org/m", document_tokens="prompt")


@pytest.mark.parametrize("cls", CLASSES)
def test_a_text_and_image_query_is_rejected_before_any_model_loads(cls):
    embedder = cls("not/a/real/checkpoint")
    with pytest.raises(ValueError, match="text query or an image query, not both"):
        embedder.embed_queries(["fine", Query(text="chart", image=sample_image())])
    assert not embedder.is_loaded


def test_runs_split_consecutive_positions():
    runs = _runs(np.array([3, 4, 5, 9, 10, 20]))
    assert [r.tolist() for r in runs] == [[3, 4, 5], [9, 10], [20]]
    assert _runs(np.array([], dtype=int)) == []


def test_tiles_are_reassembled_into_one_row_major_page_grid():
    rows, cols, k = 2, 3, 2
    # Label every token with its page coordinate, stored tile by tile as the prompt lists them.
    page = np.arange(rows * k * cols * k).reshape(rows * k, cols * k)  # row-major page labels
    tiles = np.empty((rows, cols, k, k), dtype=int)
    for r in range(rows):
        for c in range(cols):
            tiles[r, c] = page[r * k : (r + 1) * k, c * k : (c + 1) * k]
    assert tiles_to_page_order(tiles).tolist() == page.reshape(-1).tolist()


def test_tiles_must_be_square():
    with pytest.raises(ValueError, match="square"):
        tiles_to_page_order(np.zeros((1, 1, 2, 3)))


def test_module_doctests():
    assert doctest.testmod(colpali_module, optionflags=doctest.ELLIPSIS).failed == 0


def test_importing_the_module_and_building_an_embedder_loads_no_torch():
    code = (
        "import sys; from mmrag.embedders.colpali import ColQwen2Embedder; "
        "e = ColQwen2Embedder('m', revision='0' * 40); e.id; e.to_dict(); "
        "print(sorted(m for m in ('torch', 'transformers', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
