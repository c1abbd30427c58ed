"""The benchmark corpora (benchmarks/_corpora.py): seeded, chunk-independent, and page-like where
the page-like generator says so (background-dominated, shared templates, small content regions,
queries about one region, a contextualisation knob that does what it says)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.unit

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "_corpora.py"


def _load():
    if "_corpora" in sys.modules:
        return sys.modules["_corpora"]
    spec = importlib.util.spec_from_file_location("_corpora", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["_corpora"] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


corpora = _load()
GRID, PREFIX = corpora.GRID, corpora.PREFIX


def _pagelike(pages=60, context=0.05, seed=0):
    return corpora.PageLikeCorpus(corpora.PageLikeSpec(pages=pages, context=context, seed=seed))


def _patches(corpus, page):
    return corpus.page(page)[PREFIX:]  # (1024, d)


@pytest.mark.parametrize("kind", ["smooth", "pagelike"])
def test_pages_are_seeded_unit_vectors_independent_of_chunking(kind):
    def make(seed):
        if kind == "smooth":
            return corpora.SyntheticCorpus(corpora.CorpusSpec(pages=7, seed=seed))
        return _pagelike(pages=7, seed=seed)

    a, b = make(0), make(0)
    chunks = dict(a.chunks(size=3))
    assert sorted(chunks) == [0, 3, 6] and chunks[6].shape == (1, 1030, 128)
    for i in range(7):
        page = b.page(i)
        assert page.shape == (GRID[0] * GRID[1] + PREFIX, 128) and page.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(page, axis=1), 1.0, atol=1e-5)
        np.testing.assert_array_equal(page, chunks[i // 3 * 3][i % 3])
    assert not np.allclose(make(1).page(2), a.page(2))
    page, query = a.query(4)
    again_page, again = b.query(4)
    assert page == again_page and 0 <= page < 7
    np.testing.assert_array_equal(query, again)


def test_pagelike_pages_are_mostly_near_identical_background():
    corpus = _pagelike()
    for i in range(0, 60, 7):
        patches = _patches(corpus, i)
        typical = patches[np.argmax(patches @ patches.mean(axis=0))]  # the commonest look
        background = np.mean(patches @ typical > 0.9)
        assert background > 0.6, (i, background)
        assert 0.0 < corpus.content_fraction(i) < 0.25


def test_pagelike_regions_do_not_overlap_and_stay_between_header_and_footer():
    corpus = _pagelike(pages=200)
    for i in range(200):
        taken = np.zeros(GRID, dtype=int)
        regions = corpus.layout(i)
        assert 1 <= len(regions) <= 4
        for r in regions:
            assert r.row >= 3 and r.row + r.height <= GRID[0] - 1
            assert r.col >= 1 and r.col + r.width <= GRID[1] - 1
            taken[r.row : r.row + r.height, r.col : r.col + r.width] += 1
        assert taken.max() == 1


def test_pagelike_templates_repeat_across_pages_and_differ_between_templates():
    corpus = _pagelike(pages=200)
    by_template: dict[int, list[int]] = {}
    for i in range(200):
        by_template.setdefault(corpus.template(i), []).append(i)
    shared = [pages for pages in by_template.values() if len(pages) >= 2]
    assert len(by_template) == corpus.spec.templates and shared
    header = slice(2, 30)  # the header band's columns on patch row 0

    def header_of(i):
        return _patches(corpus, i).reshape(*GRID, -1)[0, header]  # (28, d)

    same = shared[0]
    cos_same = np.sum(header_of(same[0]) * header_of(same[1]), axis=1)
    other = next(p for t, p in by_template.items() if t != corpus.template(same[0]))
    cos_other = np.sum(header_of(same[0]) * header_of(other[0]), axis=1)
    assert cos_same.min() > 0.9
    assert cos_other.mean() < 0.5


def test_pagelike_query_tokens_come_from_one_region_of_their_page():
    corpus = _pagelike()
    for index in range(10):
        page, query = corpus.query(index)
        assert query.shape == (20, 128)
        np.testing.assert_allclose(np.linalg.norm(query, axis=1), 1.0, atol=1e-5)
        patches = _patches(corpus, page)
        best = np.argmax(query @ patches.T, axis=1)  # (20,) best patch per query token
        rows, cols = np.divmod(best, GRID[1])
        inside = [
            [
                r.row <= y < r.row + r.height and r.col <= x < r.col + r.width
                for y, x in zip(rows, cols, strict=True)
            ]
            for r in corpus.layout(page)
        ]
        assert max(np.mean(hits) for hits in inside) >= 0.9  # one region holds them all


def test_context_knob_sets_how_much_patches_share_their_page():
    def mean_within_and_across(context):
        corpus = _pagelike(pages=12, context=context)
        pages = [_patches(corpus, i) for i in range(12)]
        within = np.mean([np.mean(p @ p.T) for p in pages])
        across = np.mean([np.mean(pages[i] @ pages[i + 4].T) for i in range(8)])  # same style
        return within, across

    weak_within, weak_across = mean_within_and_across(0.05)
    strong_within, strong_across = mean_within_and_across(0.5)
    # Strong context: patches of one page are much more alike than patches of different pages.
    assert strong_within - strong_across > 3 * (weak_within - weak_across) > 0


def test_context_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match=r"context must be in \[0, 1\]"):
        _pagelike(context=1.5)


@pytest.mark.slow
def test_weak_context_defeats_row_pooling_but_not_the_distinct_view():
    """What the benchmark is for: with weak context a query's region drowns in row means (the
    exact top page falls out of the rows view's top 10), strong context carries it; the
    ``distinct`` view keeps it either way."""
    from mmrag.embedders.pooling import distinct_pool, row_pool

    def maxsim(query, pages):  # pages: (n, tokens, d), one matmul per query
        return (
            (query @ pages.reshape(-1, pages.shape[-1]).T)
            .reshape(len(query), len(pages), -1)
            .max(axis=2)
            .sum(axis=0)
        )

    def in_top10(context):
        corpus = _pagelike(pages=200, context=context)
        pages = np.stack([_patches(corpus, i) for i in range(200)])  # (200, 1024, d)
        views = {
            "rows": np.stack([row_pool(p, GRID) for p in pages]),
            "distinct": np.stack([distinct_pool(p, 32) for p in pages]),
        }
        found = dict.fromkeys(views, 0)
        for index in range(20):
            _, query = corpus.query(index)
            exact = maxsim(query, pages)
            top = int(np.argmax(exact))
            for name, pooled in views.items():
                scores = maxsim(query, pooled)
                found[name] += int(np.sum(scores > scores[top]) < 10)
        return {name: n / 20 for name, n in found.items()}

    weak, strong = in_top10(0.05), in_top10(0.5)
    assert weak["rows"] <= 0.75 and weak["distinct"] >= 0.9, weak
    assert strong["rows"] >= 0.9 and strong["distinct"] >= 0.9, strong
