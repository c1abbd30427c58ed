"""Document tokens downstream of the embedder: a page stored with every token of its prompt
(``document_tokens="all"``: the patches first, then the prompt's tokens) keeps its pooled views
and region citations on the patch grid, and the visual-only layout is exactly its patches."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.config import PoolingConfig
from mmrag.embedders.pooling import Pooler
from mmrag.pipeline.evaluate.codec_table import _with_tokens
from mmrag.pipeline.regions import grid_of, patch_scores
from mmrag.scoring import maxsim
from mmrag.types import Embedding, Item, Modality

pytestmark = pytest.mark.unit

GRID = (2, 3)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def page(prompt_tokens: int = 4) -> Embedding:
    """A 2 x 3 patch grid followed by ``prompt_tokens`` prompt vectors, as the embedder emits."""
    rng = np.random.default_rng(0)
    patches = unit(rng.standard_normal((6, 16)))
    prompt = unit(rng.standard_normal((prompt_tokens, 16)))
    mask = np.r_[np.ones(6, bool), np.zeros(prompt_tokens, bool)]
    return Embedding(multi=np.vstack([patches, prompt]), mask=mask, grid=GRID)


def item(grid=GRID) -> Item:
    return Item(
        source="a.png",
        source_sha256="0" * 64,
        modality=Modality.IMAGE,
        width=300,
        height=200,
        details={"grid": list(grid)},
    )


def test_visual_tokens_are_the_patches_on_the_grid():
    doc = page()
    visual = _with_tokens(doc, "visual")
    assert visual.grid == GRID and visual.mask.all()
    np.testing.assert_array_equal(visual.multi, doc.multi[:6])
    assert _with_tokens(doc, "all") is doc


def test_pooled_views_use_the_patches_only():
    doc = page()
    pooler = Pooler(PoolingConfig(views=["global", "rows"]))
    views = pooler.document_views(doc.visual(), doc.grid)
    np.testing.assert_allclose(views["rows"], pooler.document_views(doc.multi[:6], GRID)["rows"])


def test_regions_read_the_first_rows_x_cols_vectors_as_the_grid():
    doc = page()
    assert grid_of(item(), doc.multi.shape[0]) == GRID  # 10 stored vectors, a 2 x 3 grid
    assert grid_of(item(), 5) is None  # fewer vectors than cells: not this grid
    # Query tokens equal to patch 4 and to a prompt token: the map covers the patches only.
    query = doc.multi[[4, 8]]
    scores = patch_scores(query, doc.multi, GRID)
    assert scores.shape == GRID and scores[1, 1] >= 1.0 - 1e-5
    on_patches = maxsim([query], [doc.visual()])[0, 0]
    assert scores.sum() == pytest.approx(on_patches, abs=1e-5)
    every_token = maxsim([query], [doc.multi])[0, 0]  # the page's score: prompt tokens too
    assert every_token == pytest.approx(2.0, abs=1e-5) and every_token > on_patches
