"""Pooled views equal direct NumPy computations; MUVERA matches fastembed; all reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.config import MuveraConfig, PoolingConfig
from mmrag.embedders.pooling import (
    Pooler,
    col_pool,
    hierarchical_pool,
    mean_pool,
    row_pool,
    smooth_row_pool,
    tile_pool,
)
from mmrag.scoring import maxsim

pytestmark = pytest.mark.unit

ROWS, COLS, DIM = 5, 7, 16


@pytest.fixture
def page() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((ROWS * COLS, DIM)).astype(np.float32)


def _patch(page, r, c):
    return page[r * COLS + c]


def test_global_is_the_mean_of_all_patches(page):
    np.testing.assert_allclose(mean_pool(page), page.sum(axis=0) / len(page), rtol=1e-5)


def test_rows_and_cols_are_means_over_the_grid(page):
    rows = row_pool(page, (ROWS, COLS))
    cols = col_pool(page, (ROWS, COLS))
    assert rows.shape == (ROWS, DIM) and cols.shape == (COLS, DIM)
    for r in range(ROWS):
        expected = sum(_patch(page, r, c) for c in range(COLS)) / COLS
        np.testing.assert_allclose(rows[r], expected, rtol=1e-5, atol=1e-6)
    for c in range(COLS):
        expected = sum(_patch(page, r, c) for r in range(ROWS)) / ROWS
        np.testing.assert_allclose(cols[c], expected, rtol=1e-5, atol=1e-6)


def test_tiles_cover_the_grid_row_major_with_partial_edges(page):
    tiles = tile_pool(page, (ROWS, COLS), 3)
    assert tiles.shape == (2 * 3, DIM)  # ceil(5/3) x ceil(7/3)
    blocks = [(r0, c0) for r0 in (0, 3) for c0 in (0, 3, 6)]
    for t, (r0, c0) in enumerate(blocks):
        members = [
            _patch(page, r, c)
            for r in range(r0, min(r0 + 3, ROWS))
            for c in range(c0, min(c0 + 3, COLS))
        ]
        np.testing.assert_allclose(tiles[t], np.mean(members, axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("window", [1, 2, 3, 4, 9])
def test_smooth_rows_is_a_clipped_centred_moving_average(page, window):
    rows = row_pool(page, (ROWS, COLS))
    smooth = smooth_row_pool(page, (ROWS, COLS), window)
    before = (window - 1) // 2
    after = window - 1 - before
    for r in range(ROWS):
        lo, hi = max(0, r - before), min(ROWS, r + after + 1)
        np.testing.assert_allclose(smooth[r], rows[lo:hi].mean(axis=0), rtol=1e-5, atol=1e-6)


def test_grid_mismatch_is_a_clear_error(page):
    with pytest.raises(ValueError, match="a 4x4 grid needs 16 patch vectors"):
        row_pool(page, (4, 4))


def test_hierarchical_pooling_partitions_tokens_into_cluster_means():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((4, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # 4 well-separated groups of 6 near-identical unit tokens, interleaved
    tokens = np.stack([centres[i % 4] + 0.001 * rng.standard_normal(DIM) for i in range(24)])
    tokens = (tokens / np.linalg.norm(tokens, axis=1, keepdims=True)).astype(np.float32)
    pooled = hierarchical_pool(tokens, pool_factor=6)
    assert pooled.shape == (4, DIM)
    # each pooled vector is the mean of exactly one group
    for g in range(4):
        group_mean = tokens[g::4].mean(axis=0)
        assert np.min(np.linalg.norm(pooled - group_mean, axis=1)) < 1e-5
    np.testing.assert_array_equal(pooled, hierarchical_pool(tokens, pool_factor=6))


def test_hierarchical_pooling_size_follows_pool_factor(page):
    assert hierarchical_pool(page, 3).shape == (len(page) // 3, DIM)
    np.testing.assert_array_equal(hierarchical_pool(page, 1), page)
    # cluster means preserve the total mass: sizes * means sum to the token sum
    pooled = hierarchical_pool(page, 5)
    assert pooled.shape[0] == len(page) // 5


def test_muvera_equals_fastembed_with_the_same_seed(page):
    from fastembed.postprocess import Muvera

    cfg = PoolingConfig(
        views=["muvera"], muvera=MuveraConfig(k_sim=3, dim_proj=8, r_reps=4, seed=7)
    )
    pooler = Pooler(cfg)
    ours = pooler.document_views(page, (ROWS, COLS))["muvera"]
    ref = Muvera(DIM, k_sim=3, dim_proj=8, r_reps=4, random_seed=7)
    np.testing.assert_array_equal(ours, ref.process_document(page).astype(np.float32))
    assert ours.shape == (pooler.muvera_dim(),) == (4 * 2**3 * 8,)
    query = page[:4]
    np.testing.assert_array_equal(
        pooler.query_vector("muvera", query), ref.process_query(query).astype(np.float32)
    )
    np.testing.assert_array_equal(pooler.query_vector("rows", query), query)


def test_muvera_dot_product_tracks_maxsim():
    rng = np.random.default_rng(3)
    docs = [rng.standard_normal((60, DIM)).astype(np.float32) for _ in range(40)]
    docs = [d / np.linalg.norm(d, axis=1, keepdims=True) for d in docs]
    query = docs[11][:8] + 0.05 * rng.standard_normal((8, DIM)).astype(np.float32)
    pooler = Pooler(PoolingConfig(views=["muvera"]))
    fde_docs = np.stack([pooler.view("muvera", d, None) for d in docs])
    fde_q = pooler.query_vector("muvera", query)
    exact = maxsim([query], docs)[0]
    approx = fde_docs @ fde_q
    assert int(np.argmax(exact)) == 11
    assert int(np.argmax(approx)) == 11
    assert np.corrcoef(exact, approx)[0, 1] > 0.5


def test_pooler_produces_configured_views_reproducibly(page):
    cfg = PoolingConfig(
        views=["global", "rows", "cols", "tiles", "smooth_rows", "hier", "muvera"],
        tile_size=2,
        window=3,
        pool_factor=4,
    )
    a = Pooler(cfg).document_views(page, (ROWS, COLS))
    b = Pooler(cfg).document_views(page, (ROWS, COLS))
    assert list(a) == cfg.views
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert a["global"].shape == (1, DIM)
    np.testing.assert_allclose(a["rows"], row_pool(page, (ROWS, COLS)))
    assert a["tiles"].shape[0] == Pooler.tiles_for((ROWS, COLS), 2) == 12
    assert Pooler.count_vectors({"global": a["global"], "rows": a["rows"]}) == 1 + ROWS
    assert Pooler.count_vectors({"muvera": a["muvera"]}) == 1


def test_grid_views_need_a_grid(page):
    with pytest.raises(ValueError, match="needs the patch grid"):
        Pooler().view("rows", page, None)


def test_muvera_without_fastembed_names_the_extra(page, monkeypatch):
    import sys

    from mmrag.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "fastembed.postprocess", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[muvera\]'"):
        Pooler(PoolingConfig(views=["muvera"])).document_views(page, (ROWS, COLS))
