"""The ``distinct`` view: k-centre token groups that collapse background and keep small content
regions, which is what lets it find pages that ``rows`` and ``global`` lose."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.config import PoolingConfig
from mmrag.embedders.pooling import DISTINCT_VECTORS, Pooler, distinct_pool, mean_pool, row_pool

pytestmark = pytest.mark.unit

DIM = 32


def _maxsim(query, pages):
    """Σ over query tokens of the best page token (NumPy; torch is slow to import)."""
    return np.array([(query @ page.T).max(axis=1).sum() for page in pages])


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _page(rng, n_background=200, content=((5, 0.02), (3, 0.02), (1, 0.0))):
    """Near-identical background tokens plus a few tight content groups; returns the page and
    each group's token indices (background first)."""
    background = _unit(rng.standard_normal(DIM))
    tokens = [_unit(background + 0.01 * rng.standard_normal((n_background, DIM)))]
    groups = [np.arange(n_background)]
    start = n_background
    for size, noise in content:
        centre = _unit(rng.standard_normal(DIM))
        tokens.append(_unit(centre + noise * rng.standard_normal((size, DIM))))
        groups.append(np.arange(start, start + size))
        start += size
    page = np.concatenate(tokens)
    order = rng.permutation(len(page))  # interleave, as on a real page
    where = np.argsort(order)
    return page[order], [where[g] for g in groups]


def test_with_k_groups_the_view_is_the_group_means_background_first():
    page, groups = _page(np.random.default_rng(0))
    pooled = distinct_pool(page, 4)
    expected = np.stack([page[g].mean(axis=0) for g in groups])  # background, then content
    assert pooled.shape == (4, DIM)
    np.testing.assert_allclose(pooled[0], expected[0], atol=1e-5)
    for row in expected[1:]:  # content groups in farthest-first order
        assert np.min(np.linalg.norm(pooled[1:] - row, axis=1)) < 1e-5


def test_spare_vectors_split_groups_but_never_merge_content_into_background():
    page, groups = _page(np.random.default_rng(1))
    pooled = _unit(distinct_pool(page, 8))
    assert 4 <= pooled.shape[0] <= 8
    for g in groups:
        # each group is still represented by a vector in its own direction
        assert np.max(pooled @ _unit(page[g].mean(axis=0))) > 0.99


def test_k_one_is_the_global_mean_and_duplicates_are_not_repeated():
    rng = np.random.default_rng(2)
    page = rng.standard_normal((50, DIM)).astype(np.float32)
    np.testing.assert_allclose(distinct_pool(page, 1)[0], mean_pool(page), rtol=1e-5, atol=1e-6)
    three = _unit(rng.standard_normal((3, DIM)))
    repeated = np.repeat(three, [10, 5, 1], axis=0)
    pooled = distinct_pool(repeated, 32)
    assert pooled.shape == (3, DIM)  # only 3 distinct tokens: 3 vectors, not 32
    np.testing.assert_allclose(np.sort(_unit(pooled) @ three.T, axis=1)[:, -1], 1.0, atol=1e-5)
    assert distinct_pool(page[:5], 32).shape == (5, DIM)  # fewer tokens than k


def test_distinct_is_deterministic_and_checks_its_input():
    page = np.random.default_rng(3).standard_normal((120, DIM)).astype(np.float32)
    np.testing.assert_array_equal(distinct_pool(page, 10), distinct_pool(page.copy(), 10))
    with pytest.raises(ValueError, match="k must be >= 1"):
        distinct_pool(page, 0)
    with pytest.raises(ValueError, match=r"needs an \(n, d\) array"):
        distinct_pool(page[:0], 4)


def test_pooler_serves_the_view_without_a_grid():
    page = np.random.default_rng(4).standard_normal((1024, DIM)).astype(np.float32)
    pooler = Pooler(PoolingConfig(views=["global", "distinct"]))
    views = pooler.document_views(page, None)
    assert list(views) == ["global", "distinct"]
    assert views["distinct"].shape == (DISTINCT_VECTORS, DIM)
    np.testing.assert_array_equal(views["distinct"], distinct_pool(page, DISTINCT_VECTORS))
    query = page[:3]
    assert pooler.query_vector("distinct", query) is query  # queries keep their own tokens


def test_a_small_content_region_outranks_pages_with_more_matching_area():
    """The failure ``rows`` has on background-dominated pages: a page whose content region is
    small is beaten, after mean pooling, by pages with more area of a related topic; MaxSim over
    the ``distinct`` view ranks it like exact MaxSim does."""
    rng = np.random.default_rng(5)
    d, grid = 64, (16, 16)
    paper = _unit(rng.standard_normal(d))
    topic = _unit(rng.standard_normal(d))
    words = _unit(rng.standard_normal((12, d)))

    def page(region_cols, word_ids):
        patches = np.repeat(paper[None], grid[0] * grid[1], axis=0).reshape(*grid, d)
        for c in range(region_cols):
            patches[5, 2 + c] = _unit(topic + words[word_ids[c % len(word_ids)]])
        noisy = patches + 0.02 * rng.standard_normal(patches.shape)
        return _unit(noisy.reshape(-1, d))

    source = page(4, [0, 1, 2, 3])  # a small region with the query's words
    others = [page(14, [4, 5, 6, 7, 8, 9, 10, 11]) for _ in range(5)]  # wide, other words
    query = _unit(topic + words[:4] + 0.05 * rng.standard_normal((4, d)))
    pages = [source, *others]
    exact = _maxsim(query, pages)
    rows = _maxsim(query, [row_pool(p, grid) for p in pages])
    distinct = _maxsim(query, [distinct_pool(p, 8) for p in pages])
    assert int(np.argmax(exact)) == 0
    assert int(np.argmax(rows)) != 0  # mean pooling drowns the small region
    assert int(np.argmax(distinct)) == 0
