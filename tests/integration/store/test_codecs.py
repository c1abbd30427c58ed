"""Every codec end to end: write pages, reopen, search; the ranking stays close to exact
float32 MaxSim; reopening with other codecs or another ``full_pool_factor`` is a mismatch.

Runs on the embedded store (Qdrant Edge: the codecs are really applied, checked in the
shard's own config) and on the server backend over qdrant-client's local mode (which accepts
the same collection config and searches the originals exactly).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrag.config import PipelineConfig, PoolingConfig, StoreConfig
from mmrag.errors import ConfigError
from mmrag.store import open_store
from mmrag.store.codecs import CODECS, DEFAULT_CODECS, codec_spec
from mmrag.store.contract import CollectionMismatchError
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.plan import parse_plan
from mmrag.store.records import Point
from mmrag.store.schema import CollectionSchema
from mmrag.store.server import ServerStore
from mmrag.types import Embedding, Item

pytestmark = pytest.mark.integration

DIM = 32
GRID = (6, 6)
PAGES = 40
QUERIES = 12


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _pages() -> np.ndarray:
    """``(pages, 36, DIM)``: a shared background with one content block per page."""
    rng = np.random.default_rng(7)
    background = _unit(rng.standard_normal(DIM))
    pages = np.empty((PAGES, GRID[0] * GRID[1], DIM), dtype=np.float32)
    for i in range(PAGES):
        tokens = np.tile(background, (GRID[0] * GRID[1], 1))
        block = rng.integers(0, GRID[0] * GRID[1] - 6)
        tokens[block : block + 6] = _unit(rng.standard_normal(DIM))
        pages[i] = _unit(tokens + 0.3 * rng.standard_normal(tokens.shape) / np.sqrt(DIM))
    return pages


def _queries(pages: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    out = []
    for q in range(QUERIES):
        page = pages[q * 3 % PAGES]
        picked = page[rng.integers(0, page.shape[0], 5)]
        out.append(_unit(picked + 0.2 * rng.standard_normal(picked.shape) / np.sqrt(DIM)))
    return out


def _exact_order(query: np.ndarray, pages: np.ndarray) -> np.ndarray:
    scores = (pages @ query.T).max(axis=1).sum(axis=1)  # (pages,) float32 MaxSim
    return np.argsort(-scores)


def _schema(codec: str, *, full_pool_factor: int = 1) -> CollectionSchema:
    pooling = PoolingConfig(views=["global", "rows"], full_pool_factor=full_pool_factor)
    codecs = {"full": codec, "global": codec, "rows": codec}
    return CollectionSchema.for_embedder("toy-codecs@1", "multi", DIM, pooling, codecs=codecs)


def _points(schema: CollectionSchema, pages: np.ndarray) -> list[Point]:
    from mmrag.embedders.pooling import Pooler

    pooler = Pooler(PoolingConfig(views=list(schema.views)))
    points = []
    for i, tokens in enumerate(pages):
        item = Item(source=f"/docs/{i:03d}.pdf", source_sha256=f"{i:064x}", modality="pdf_page")
        embedding = Embedding(multi=tokens, grid=GRID, pooled=pooler.document_views(tokens, GRID))
        points.append(Point.for_collection(item, embedding, schema))
    return points


def _agreement(store, pages: np.ndarray, ids: list[str], plan: str) -> tuple[float, float]:
    """Top-1 agreement and recall@5 of ``plan`` with exact float32 MaxSim."""
    top1, recall = [], []
    for query in _queries(pages):
        exact = _exact_order(query, pages)
        vectors = dict.fromkeys(store.schema.vector_names, query)
        got = [ids.index(h.id) for h in store.query(parse_plan(plan), vectors)]
        top1.append(got[0] == exact[0])
        recall.append(len(set(got[:5]) & set(exact[:5].tolist())) / 5)
    return float(np.mean(top1)), float(np.mean(recall))


#: The least top-1 agreement with exact float32 MaxSim each codec must keep on these pages.
MIN_TOP1 = {"float32": 1.0, "float16": 1.0, "turbo8": 0.9, "uint8": 0.9}


@pytest.fixture(scope="module")
def pages() -> np.ndarray:
    return _pages()


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_end_to_end_on_the_embedded_store(tmp_path, pages, codec):
    schema = _schema(codec)
    points = _points(schema, pages)
    ids = [p.id for p in points]
    with EmbeddedStore(tmp_path, "c", schema) as store:
        store.upsert(points)
        store.optimize()
    # The engine was configured with the codec (its own record of the shard's vectors).
    engine = json.loads((tmp_path / "c" / "shard" / "edge_config.json").read_text())["vectors"]
    spec = codec_spec(codec)
    assert engine["full"].get("datatype", "float32") == spec.storage
    assert ("quantization_config" in engine["full"]) == spec.rescored
    # Reopened as stored, and with the same schema: the same codecs, searchable.
    with EmbeddedStore(tmp_path, "c") as store:
        assert store.schema.codecs["full"] == codec
    with EmbeddedStore(tmp_path, "c", schema) as store:
        assert store.count() == PAGES
        top1, recall = _agreement(store, pages, ids, "full@5")
        staged_top1, _ = _agreement(store, pages, ids, "global@30 -> rows@10 -> full@5")
    assert top1 >= MIN_TOP1.get(codec, 0.75), (codec, top1)
    assert recall >= 0.5, (codec, recall)  # 4x what a random ranking gets (5 / 40)
    assert staged_top1 >= MIN_TOP1.get(codec, 0.75) - 0.1, (codec, staged_top1)


@pytest.mark.parametrize("codec", ["float16", "turbo4", "binary"])
def test_codecs_through_qdrant_client_local_mode(pages, codec):
    from qdrant_client import QdrantClient

    schema = _schema(codec)
    points = _points(schema, pages)
    ids = [p.id for p in points]
    client = QdrantClient(":memory:")
    try:
        store = ServerStore(client, "c", schema)
        store.upsert(points)
        store.optimize()
        assert ServerStore(client, "c").schema.codecs == schema.codecs
        top1, recall = _agreement(store, pages, ids, "full@5")
        assert top1 == 1.0 and recall == 1.0  # local mode searches the originals exactly
        with pytest.raises(CollectionMismatchError, match="codecs"):
            ServerStore(client, "c", _schema("float32" if codec != "float32" else "float16"))
    finally:
        client.close()


def test_reopening_with_other_codecs_names_both(tmp_path, pages):
    with EmbeddedStore(tmp_path, "c", _schema("float16")):
        pass
    with pytest.raises(CollectionMismatchError) as caught:
        EmbeddedStore(tmp_path, "c", _schema("binary"))
    message = str(caught.value)
    assert "codecs" in message and "'float16'" in message and "'binary'" in message


def test_reopening_with_another_full_pool_factor_names_both(tmp_path, pages):
    schema = _schema("float16", full_pool_factor=2)
    with EmbeddedStore(tmp_path, "c", schema) as store:
        store.upsert(_points(schema, pages))
        record = store.retrieve([_points(schema, pages[:1])[0].id], with_vectors=True)[0]
        # full holds about half the tokens, merged; the page grid is still recorded.
        assert record.vectors["full"].shape == (GRID[0] * GRID[1] // 2, DIM)
        assert record.payload["details"]["grid"] == list(GRID)
    with pytest.raises(CollectionMismatchError, match="full_pool_factor") as caught:
        EmbeddedStore(tmp_path, "c", _schema("float16"))
    assert "2" in str(caught.value)


def test_a_collection_merged_by_the_earlier_method_is_a_mismatch(tmp_path, pages):
    import dataclasses

    schema = _schema("float16", full_pool_factor=2)
    assert schema.pooling["full_merge"] == "groups"
    earlier = dict(schema.pooling)
    del earlier["full_merge"]  # what a collection merged before the grouped merge recorded
    with EmbeddedStore(tmp_path, "c", dataclasses.replace(schema, pooling=earlier)):
        pass
    with pytest.raises(CollectionMismatchError, match="full_merge"):
        EmbeddedStore(tmp_path, "c", schema)


def test_pooled_full_keeps_the_ranking_close_to_exact(tmp_path, pages):
    schema = _schema("float16", full_pool_factor=2)
    points = _points(schema, pages)
    with EmbeddedStore(tmp_path, "c", schema) as store:
        store.upsert(points)
        store.optimize()
        top1, recall = _agreement(store, pages, [p.id for p in points], "full@5")
    assert top1 >= 0.75 and recall >= 0.6


def test_open_store_takes_the_codecs_from_the_config(tmp_path, pages):
    config = PipelineConfig.from_dict(
        {"store": {"path": str(tmp_path), "codecs": {"full": "binary2"}}}
    )
    schema = CollectionSchema.for_embedder("toy-codecs@1", "multi", DIM, config.pooling)
    store = open_store(config.store, schema)
    try:
        assert store.schema.codecs["full"] == "binary2"
        assert store.schema.codecs["distinct"] == DEFAULT_CODECS["distinct"] == "float16"
    finally:
        store.close()
    with pytest.raises(CollectionMismatchError, match="binary2"):
        open_store(StoreConfig(path=str(tmp_path)), schema)


def test_a_collection_built_with_the_previous_distinct_default_opens_under_todays(tmp_path, pages):
    # `distinct` was uint8 by default before float16: such an index still opens with the
    # default config, keeps its recorded codec and answers; another codec is still a mismatch.
    pooling = PoolingConfig(views=["global", "distinct"], token_index=False)
    old = CollectionSchema.for_embedder(
        "toy-codecs@1", "multi", DIM, pooling, codecs={"distinct": "uint8"}
    )
    points = _points(old, pages)
    with EmbeddedStore(tmp_path, "c", old) as store:
        store.upsert(points)
    today = CollectionSchema.for_embedder("toy-codecs@1", "multi", DIM, pooling)
    assert today.codecs["distinct"] == "float16" != old.codecs["distinct"]
    store = open_store(StoreConfig(path=str(tmp_path), collection="c"), today)
    try:
        assert store.schema.codecs["distinct"] == "uint8" and store.count() == PAGES
        query = _queries(pages)[0]
        hits = store.query(parse_plan("distinct@8 -> full@3"), {"distinct": query, "full": query})
        assert hits[0].id == points[int(_exact_order(query, pages)[0])].id
    finally:
        store.close()
    chosen = StoreConfig(path=str(tmp_path), collection="c", codecs={"distinct": "turbo8"})
    with pytest.raises(CollectionMismatchError, match="turbo8"):
        open_store(chosen, today)


def test_config_rejects_an_unknown_codec_naming_the_allowed_ones():
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_dict({"store": {"codecs": {"full": "int3"}}})
    for name in CODECS:
        assert name in str(caught.value)
    with pytest.raises(ConfigError, match="full_pool_factor"):
        PipelineConfig.from_dict({"pooling": {"full_pool_factor": 0}})
