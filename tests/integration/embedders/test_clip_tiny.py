"""CLIP on the seeded tiny open_clip model, loaded by path through open_clip's ``local-dir:``.

Covers: shapes and unit norms from Items, parity with open_clip's own towers, the composed
text + image query, and canonical reference values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmrag.embedders import load_embedder
from mmrag.embedders.base import Query
from mmrag.embedders.clip import ClipEmbedder
from mmrag.errors import ConfigError
from mmrag.testing.inputs import sample_image
from mmrag.types import Item, Modality

pytestmark = pytest.mark.integration

QUERY = "what is the revenue?"

#: Canonical values on the seeded tiny ``open_clip`` model (``mmrag.testing``, seed 0): the
#: first 4 dims of the page embedding of ``sample_image()``, of the ``QUERY`` embedding and of the
#: ``QUERY`` + ``sample_image(seed=1)`` embedding, and their page·query score. They guard the
#: recipe against silent drift. Regenerate only after a deliberate change: print
#: ``ClipEmbedder(<tiny open_clip>, device="cpu").embed_images([sample_image()])[0].dense[:4]``
#: etc. and paste the values here.
CANONICAL = {
    "page": [-0.125768, 0.074801, -0.027605, -0.52966],
    "query": [0.147637, 0.111021, 0.113972, 0.016728],
    "image_query": [-0.00787, 0.132961, 0.064771, -0.31605],
    "score": 0.18814,
}


@pytest.fixture(scope="module")
def embedder(tiny_open_clip: Path) -> ClipEmbedder:
    return ClipEmbedder(str(tiny_open_clip), device="cpu", batch_size=2).load()


def test_loads_by_path_and_embeds_items(tiny_open_clip: Path):
    embedder = load_embedder(str(tiny_open_clip), device="cpu", batch_size=2)
    assert isinstance(embedder, ClipEmbedder)
    images = [sample_image(), sample_image(300, 200, seed=1), sample_image(20, 40, seed=2)]
    items = [
        Item(
            source="deck.pdf",
            source_sha256="cd" * 32,
            modality=Modality.PDF_PAGE,
            page=i + 1,
            image_loader=lambda image=image: image,
        )
        for i, image in enumerate(images)
    ]
    embeddings = embedder.embed_documents(items)
    assert embedder.dim == 32 and len(embeddings) == 3
    for e in embeddings:
        assert e.kind == "single" and e.dense.shape == (32,) and e.dense.dtype == np.float32
        assert np.linalg.norm(e.dense) == pytest.approx(1.0, abs=1e-5)


def test_parity_with_open_clip(embedder: ClipEmbedder, tiny_open_clip: Path):
    import open_clip

    name = f"local-dir:{tiny_open_clip}"
    model, preprocess = open_clip.create_model_from_pretrained(name)
    tokenizer = open_clip.get_tokenizer(name)
    image = sample_image(300, 200, seed=1)
    with torch.no_grad():
        image_ref = model.eval().encode_image(preprocess(image)[None], normalize=True)[0]
        text_ref = model.encode_text(tokenizer([QUERY]), normalize=True)[0]
    np.testing.assert_allclose(embedder.embed_images([image])[0].dense, image_ref, atol=1e-6)
    np.testing.assert_allclose(embedder.embed_queries([QUERY])[0].dense, text_ref, atol=1e-6)


def test_query_kinds(embedder: ClipEmbedder):
    image = sample_image(seed=1)
    text, image_only, both = embedder.embed_queries(
        [QUERY, Query(image=image), Query(text=QUERY, image=image)]
    )
    page = embedder.embed_images([image])[0]
    np.testing.assert_allclose(image_only.dense, page.dense, atol=1e-6)  # image tower
    expected = text.dense + page.dense  # text + image: normalised sum of the unit vectors
    np.testing.assert_allclose(both.dense, expected / np.linalg.norm(expected), atol=1e-6)


def test_canonical_values(embedder: ClipEmbedder):
    page = embedder.embed_images([sample_image()])[0].dense
    query, image_query = embedder.embed_queries(
        [QUERY, Query(text=QUERY, image=sample_image(seed=1))]
    )
    np.testing.assert_allclose(page[:4], CANONICAL["page"], atol=1e-4)
    np.testing.assert_allclose(query.dense[:4], CANONICAL["query"], atol=1e-4)
    np.testing.assert_allclose(image_query.dense[:4], CANONICAL["image_query"], atol=1e-4)
    assert float(page @ query.dense) == pytest.approx(CANONICAL["score"], abs=1e-4)


def test_unknown_pretrained_tag_names_the_fix():
    with pytest.raises(ConfigError, match="no pretrained weights 'nope' for 'ViT-B-32'"):
        ClipEmbedder("ViT-B-32/nope", device="cpu").load()
    with pytest.raises(ConfigError, match="use 'hf-hub:laion/CLIP-ViT-B-32'"):
        ClipEmbedder("laion/CLIP-ViT-B-32", device="cpu").load()
