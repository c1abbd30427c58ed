"""The ``distinct`` view end to end through the embedded store: configured, pooled, stored in
HNSW, searched as a plan's first stage, recorded in the schema."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.config import PoolingConfig
from mmrag.embedders.pooling import Pooler
from mmrag.pipeline.retrieval import Retriever
from mmrag.store.contract import CollectionMismatchError
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.records import Point
from mmrag.store.schema import CollectionSchema
from mmrag.testing.conformance.corpus import region_pages
from mmrag.types import item_id

pytestmark = pytest.mark.integration

GRID, DIM, PAGES = (16, 16), 32, 40


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _pages(seed=0):
    return region_pages(PAGES, GRID, DIM, seed)


def _point(i, page, pooler):
    views = pooler.document_views(page, GRID)
    payload = {
        "source": f"doc{i // 10}.pdf",
        "modality": "pdf_page",
        "page": i % 10 + 1,
        "source_sha256": f"{i:064x}",
    }
    return Point(item_id(f"{i:064x}", "page=1", "toy"), {"full": page, **views}, payload)


def test_a_distinct_first_stage_finds_the_exact_top_hit(tmp_path):
    pooling = PoolingConfig(views=["rows", "distinct"])
    pooler = Pooler(pooling)
    schema = CollectionSchema.for_embedder("toy", "multi", DIM, pooling)
    assert "distinct" in schema.vector_names
    pages, regions = _pages()
    ids = {item_id(f"{i:064x}", "page=1", "toy"): i for i in range(PAGES)}
    rng = np.random.default_rng(1)
    with EmbeddedStore(tmp_path, "pages", schema) as store:
        store.upsert([_point(i, p, pooler) for i, p in enumerate(pages)])
        store.optimize()
        per_page = store.info().hnsw_vectors_per_point
        assert 16 < per_page <= 16 + 32  # rows + at most 32 distinct groups
        exact = Retriever(store, "full@3")
        staged = Retriever(store, "distinct@3 -> full@3")
        rows = Retriever(store, "rows@3 -> full@3", record_stage_scores=False)
        rows_agree = 0
        for i in range(PAGES):
            tokens = pages[i][regions[i][:3]]  # a question about the page's region
            query = _unit(tokens + 0.05 * rng.standard_normal(tokens.shape))
            want = exact.search({"full": query})
            hits = staged.search({"distinct": query, "full": query})
            assert hits[0].id == want[0].id
            assert hits[0].score == pytest.approx(want[0].score, rel=1e-3)
            # The recorded first-stage score is MaxSim over the stored (normalised) view.
            view = _unit(pooler.view("distinct", pages[ids[hits[0].id]], GRID))
            expected = float((_unit(query) @ view.T).max(axis=1).sum())
            assert hits[0].stage_scores["distinct"] == pytest.approx(expected, rel=1e-3)
            rows_agree += rows.search({"rows": query, "full": query})[0].id == want[0].id
        # Row means drown a small region in background: the same budget loses pages.
        assert rows_agree < PAGES


def test_the_view_is_part_of_the_collection_schema(tmp_path):
    with_view = PoolingConfig(views=["global", "distinct"])
    schema = CollectionSchema.for_embedder("toy", "multi", DIM, with_view)
    pooler = Pooler(with_view)
    with EmbeddedStore(tmp_path, "pages", schema) as store:
        store.upsert([_point(i, p, pooler) for i, p in enumerate(_pages()[0][:3])])
    with EmbeddedStore(tmp_path, "pages") as store:  # reopened: the stored schema has the view
        assert store.schema.views == ("global", "distinct")
        assert store.count() == 3
    without = CollectionSchema.for_embedder("toy", "multi", DIM, PoolingConfig(views=["global"]))
    with pytest.raises(CollectionMismatchError, match="distinct"):
        EmbeddedStore(tmp_path, "pages", without)
