"""Collection schema, points, filters and plan trees: plain values, no Qdrant."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.config import PoolingConfig
from mmrag.errors import ConfigError
from mmrag.pipeline.retrieval import hybrid_plan, stage_keys
from mmrag.store.codecs import DEFAULT_CODECS, codec_spec
from mmrag.store.contract import PENDING_FIELD, CollectionMismatchError
from mmrag.store.plan import parse_plan, plan_tree
from mmrag.store.records import Point, SearchFilter, SparseVector
from mmrag.store.schema import CollectionSchema
from mmrag.types import Embedding, Item

pytestmark = pytest.mark.unit


def multi_schema(**kwargs) -> CollectionSchema:
    """A multi-vector schema; ``full`` keeps every token unless ``full_pool_factor`` is given."""
    kwargs.setdefault("full_pool_factor", 1)
    pooling = PoolingConfig(views=kwargs.pop("views", ["global", "rows"]), **kwargs)
    return CollectionSchema.for_embedder("colqwen2@v1", "multi", 128, pooling)


def test_multi_vector_schema_names_every_vector_and_how_it_is_indexed():
    schema = CollectionSchema.for_embedder(
        "colqwen2@v1", "multi", 128, PoolingConfig(views=["global", "rows", "muvera"]), text=True
    )
    specs = schema.vectors()
    assert list(specs) == ["global", "rows", "muvera", "full", "text"]
    assert specs["global"].multivector and specs["global"].hnsw  # a 1-vector multivector
    assert specs["rows"].multivector and specs["rows"].hnsw and specs["rows"].distance == "cosine"
    assert not specs["muvera"].multivector and specs["muvera"].distance == "dot"
    assert specs["muvera"].dim == 20 * 2**5 * 16
    full = specs["full"]
    assert (full.multivector, full.hnsw, full.on_disk) == (True, False, True)
    assert full.codec == DEFAULT_CODECS["full"] == schema.codecs["full"]
    assert full.datatype == codec_spec(full.codec).storage
    assert specs["text"].sparse


def test_the_default_schema_has_a_denser_first_stage_graph_and_merged_full():
    schema = CollectionSchema.for_embedder("colqwen2@v1", "multi", 128, PoolingConfig())
    specs = schema.vectors()
    assert list(specs) == ["global", "distinct", "full"]
    distinct = specs["distinct"]
    assert (distinct.hnsw_m, distinct.ef_construct) == (32, 200)
    assert distinct.codec == "float16" and not codec_spec("float16").rescored  # the originals
    assert specs["full"].codec == "turbo8" and not codec_spec("turbo8").rescored  # codes only
    # `full` keeps a third of the tokens, merged by the grouped merge (recorded: a collection
    # merged another way is a mismatch).
    assert schema.full_pool_factor == 3 and schema.pooling["full_merge"] == "groups"
    rows = multi_schema(views=["rows", "distinct"]).vectors()["rows"]
    assert (rows.hnsw_m, rows.ef_construct) == (16, 100)


def test_single_vector_schema_has_dense_only():
    schema = CollectionSchema.for_embedder("clip@1", "single", 512, PoolingConfig())
    assert list(schema.vectors()) == ["dense"]
    assert schema.views == ()
    with pytest.raises(ConfigError, match="single-vector"):
        CollectionSchema(embedder_id="clip@1", kind="single", dim=512, views=("rows",))


@pytest.mark.parametrize(
    "bad",
    [
        {"embedder_id": ""},
        {"kind": "many"},
        {"dim": 0},
        {"views": ("full",)},
    ],
)
def test_schema_validation(bad):
    kwargs = {"embedder_id": "e", "kind": "multi", "dim": 4, **bad}
    with pytest.raises(ConfigError):
        CollectionSchema(**kwargs)


def test_schema_round_trips_through_json_dict():
    import json

    schema = multi_schema(views=["global", "tiles", "muvera"], tile_size=3)
    assert CollectionSchema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema


def test_only_pooling_settings_that_change_the_views_are_recorded():
    a = multi_schema(views=["global", "rows"], tile_size=2, window=5)
    b = multi_schema(views=["global", "rows"], tile_size=4, window=3)
    assert a.differences(b) == []  # neither view uses tile_size or window
    c = multi_schema(views=["global", "tiles"], tile_size=2)
    d = multi_schema(views=["global", "tiles"], tile_size=4)
    assert c.differences(d) == ["pooling: {'tile_size': 2} vs {'tile_size': 4}"]


def test_mismatch_error_names_stored_requested_and_the_fix():
    stored = multi_schema()
    requested = CollectionSchema.for_embedder("colpali@v1.3", "multi", 128, PoolingConfig())
    with pytest.raises(CollectionMismatchError) as err:
        stored.check_compatible(requested, "collection 'docs' at /idx/docs")
    message = str(err.value)
    assert "embedder_id: 'colqwen2@v1' vs 'colpali@v1.3'" in message
    assert "collection 'docs' at /idx/docs" in message
    assert "--recreate" in message
    assert isinstance(err.value, ConfigError)
    stored.check_compatible(multi_schema(), "x")  # same: no error


def test_point_from_item_uses_the_deterministic_id_and_payload():
    item = Item(source="a.pdf", source_sha256="ab" * 32, modality="pdf_page", page=2, text="hi")
    multi = np.ones((6, 4), np.float32)
    mask = np.array([0, 1, 1, 1, 1, 1], bool)
    emb = Embedding(multi=multi, mask=mask, grid=(1, 5), pooled={"global": np.ones((1, 4))})
    point = Point.from_item(item, emb, "e@1", text=True)
    assert point.id == item.point_id("e@1")
    # the payload is the item's, plus the patch grid of `full` (for region citations)
    assert point.payload == {**item.with_embedder("e@1").to_payload(), "details": {"grid": [1, 5]}}
    assert point.vectors["full"].shape == (6, 4)  # every token kept (mask: the visual ones)
    assert set(point.vectors) == {"full", "global", "text"}
    assert isinstance(point.vectors["text"], SparseVector)
    pending = Point.from_item(item, emb, "e@1", pending=True)
    assert pending.payload[PENDING_FIELD] == 1
    assert "text" not in pending.vectors


def test_validate_point_names_the_vector_and_the_shape():
    schema = CollectionSchema(embedder_id="e", kind="multi", dim=4, views=("global",))
    good = {"full": np.ones((3, 4)), "global": np.ones((1, 4))}
    schema.validate_point(Point("id", good, {"source": "a"}))
    with pytest.raises(ConfigError, match=r"\['global'\]"):
        schema.validate_point(Point("id", {"full": np.ones((3, 4))}, {"source": "a"}))
    with pytest.raises(ConfigError, match=r"'full' must have shape \(n, 4\)"):
        schema.validate_point(Point("id", {**good, "full": np.ones((3, 5))}))
    with pytest.raises(ConfigError, match="not in this collection"):
        schema.validate_point(Point("id", {**good, "rows": np.ones((2, 4))}))
    with pytest.raises(ValueError, match="as many values"):
        SparseVector((1, 2), (1.0,))


def test_filter_build_and_validation():
    f = SearchFilter.build(source="a.pdf", modality=["image"], pages=(1, 3), metadata={"k": 1})
    assert (f.sources, f.modalities, f.page_range, dict(f.metadata)) == (
        ("a.pdf",),
        ("image",),
        (1, 3),
        {"k": 1},
    )
    assert not f.is_empty
    assert SearchFilter().is_empty
    assert SearchFilter(page_range=(None, None)).is_empty
    assert f.with_ids(["x"]).ids == ("x",)
    with pytest.raises(ConfigError, match="start is after the end"):
        SearchFilter.build(pages=(5, 2))
    with pytest.raises(ConfigError, match="only str, int and bool"):
        SearchFilter.build(metadata={"k": 1.5})
    # a list of values matches any of them; ranges bound numbers
    any_of = SearchFilter.build(metadata={"k": [1, 2]}, ranges={"year": (2020, None)})
    assert any_of.metadata == {"k": (1, 2)} and any_of.ranges == {"year": (2020, None)}
    with pytest.raises(ConfigError, match="after the end"):
        SearchFilter.build(ranges={"year": (2030, 2020)})
    assert SearchFilter(tenant="acme").for_tenant(None).tenant == "acme"
    assert not SearchFilter().for_tenant("acme").is_empty


def test_plan_tree_nests_stages_as_prefetches():
    root = plan_tree(parse_plan("global@200 -> rows@50 -> full@10"))
    assert (root.using, root.limit) == ("full", 10)
    (rows,) = root.children
    assert (rows.using, rows.limit) == ("rows", 50)
    (first,) = rows.children
    assert (first.using, first.limit, first.children) == ("global", 200, ())


def test_plan_tree_of_fused_stages():
    root = plan_tree(parse_plan("global@100 -> (rows@40 + text@30) -> full@5"))
    (fusion,) = root.children
    assert fusion.is_fusion and fusion.limit == 40
    assert [c.using for c in fusion.children] == ["rows", "text"]
    # Each member rescans the previous stage's candidates.
    assert all(c.children[0].using == "global" for c in fusion.children)
    top = plan_tree(parse_plan("(dense@50 + text@50)"))
    assert top.is_fusion and [c.using for c in top.children] == ["dense", "text"]


def test_stage_keys_and_hybrid_plans():
    assert stage_keys(parse_plan("global@200 -> rows@50 -> full@10")) == ["global", "rows", "full"]
    assert stage_keys(parse_plan("(a@5 + b@5)".replace("a", "dense").replace("b", "text"))) == [
        "dense",
        "text",
        "rrf",
    ]
    assert stage_keys(parse_plan("(global@50 + text@50) -> (rows@20 + text@20) -> full@5")) == [
        "global",
        "text",
        "rrf",
        "rows",
        "rrf2",
        "full",
    ]
    assert str(hybrid_plan(parse_plan("rows@64 -> full@10"))) == "(rows@64 + text@64) -> full@10"
    assert str(hybrid_plan(parse_plan("(dense@50 + global@50) -> full@10"))) == (
        "(dense@50 + global@50 + text@50) -> full@10"
    )
    already = parse_plan("(dense@50 + text@50)")
    assert hybrid_plan(already) is already


def test_the_token_index_is_on_by_default_where_the_distinct_view_is():
    default = CollectionSchema.for_embedder("m@1", "multi", 128, PoolingConfig())
    assert default.token_index and default.codecs["tokens"] == "turbo8"
    rows_only = PoolingConfig(views=["global", "rows"])
    assert not CollectionSchema.for_embedder("m@1", "multi", 128, rows_only).token_index
    asked = PoolingConfig(views=["global", "rows"], token_index=True)  # e.g. a saved config
    assert not CollectionSchema.for_embedder("m@1", "multi", 128, asked).token_index
    with pytest.raises(ConfigError, match=r"add 'distinct' to pooling\.views"):
        CollectionSchema("m@1", "multi", 128, views=("rows",), pooling={"token_index": True})
    off = CollectionSchema.for_embedder("m@1", "multi", 128, PoolingConfig(token_index=False))
    assert not off.token_index and "tokens" not in off.codecs
