"""Codecs in the schema and the config, and the token merging of a pooled ``full``."""

from __future__ import annotations

import numpy as np
import pytest

from mmrag.config import PoolingConfig, StoreConfig
from mmrag.errors import ConfigError
from mmrag.store.codecs import CODECS, DEFAULT_CODECS, codec_spec, merged_codecs, search_options
from mmrag.store.contract import CollectionMismatchError
from mmrag.store.schema import CollectionSchema
from mmrag.store.tokens import merge_pool, merge_tokens, pack_assignment, unpack_assignment


def _schema(**codecs: str) -> CollectionSchema:
    pooling = PoolingConfig(views=["global", "rows"], full_pool_factor=1)
    return CollectionSchema.for_embedder("colqwen2@v1", "multi", 128, pooling, codecs=codecs)


def test_the_schema_records_a_codec_for_every_dense_vector():
    schema = _schema(full="binary2")
    assert schema.codecs == {
        "global": DEFAULT_CODECS["global"],
        "rows": DEFAULT_CODECS["rows"],
        "full": "binary2",
    }
    specs = schema.vectors()
    assert {name: spec.codec for name, spec in specs.items()} == schema.codecs
    assert CollectionSchema.from_dict(schema.to_dict()) == schema
    single = CollectionSchema.for_embedder("clip@1", "single", 512, None)
    assert single.codecs == {"dense": DEFAULT_CODECS["dense"]}


def test_codecs_that_the_schema_has_no_vector_for_are_not_recorded():
    assert "tiles" not in _schema(tiles="turbo4").codecs


def test_an_unknown_codec_names_the_allowed_ones():
    with pytest.raises(ConfigError) as caught:
        _schema(full="int4")
    assert all(name in str(caught.value) for name in CODECS)
    with pytest.raises(ConfigError, match="sparse"):
        merged_codecs({"text": "float16"})


def test_the_store_config_merges_its_codecs_over_the_defaults():
    config = StoreConfig(codecs={"rows": "uint8"})
    assert config.codecs == {**DEFAULT_CODECS, "rows": "uint8"}
    assert StoreConfig().codecs == dict(DEFAULT_CODECS)


def test_a_collection_written_before_codecs_were_recorded_reads_as_what_it_used():
    data = _schema().to_dict()
    del data["codecs"]
    legacy = CollectionSchema.from_dict(data)
    assert legacy.codecs == {"global": "float32", "rows": "float32", "full": "float16"}


def test_other_codecs_or_full_pool_factor_are_differences():
    stored = _schema(full="float16")
    diffs = stored.differences(_schema(full="turbo4"))
    assert len(diffs) == 1 and "float16" in diffs[0] and "turbo4" in diffs[0]
    pooled = CollectionSchema.for_embedder(
        "colqwen2@v1", "multi", 128, PoolingConfig(views=["global", "rows"], full_pool_factor=3)
    )
    assert pooled.full_pool_factor == 3
    with pytest.raises(CollectionMismatchError, match="full_pool_factor"):
        _schema().check_compatible(pooled, "/idx/c")
    # Factor 1 (every token) is not recorded: collections from before it existed still match.
    assert "full_pool_factor" not in _schema().pooling


def test_codec_specs_say_what_they_store_and_search():
    assert codec_spec("turbo4").bytes_per_value == 0.5 and not codec_spec("turbo4").rescored
    assert codec_spec("binary").storage == "float16" and codec_spec("binary").rescored


def _merged(tokens: np.ndarray) -> np.ndarray:
    """What one vector merged from ``tokens`` is: their mean, at their mean length."""
    mean = tokens.mean(axis=0)
    return mean * np.linalg.norm(tokens, axis=1).mean() / np.linalg.norm(mean)


def test_merge_pool_keeps_a_weighted_mean_of_the_tokens():
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((100, 16)).astype(np.float32)
    for factor, expected in ((1, 100), (2, 50), (3, 34), (200, 1)):
        merged = merge_pool(tokens, factor)
        assert merged.shape == (expected, 16)
    # Every merge is a size-weighted mean, so one vector in the end is the mean of all tokens.
    np.testing.assert_allclose(merge_pool(tokens, 100)[0], _merged(tokens), atol=1e-5)
    # Near-duplicates merge first: two tight clusters become their two means.
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    pair = np.stack(
        [a + 0.01 * rng.standard_normal(16) for _ in range(4)]
        + [b + 0.01 * rng.standard_normal(16) for _ in range(4)]
    ).astype(np.float32)
    merged = merge_pool(pair, 4)
    assert merged.shape == (2, 16)
    centres = sorted(merged.tolist(), key=lambda v: float(np.dot(v, a)), reverse=True)
    np.testing.assert_allclose(centres[0], _merged(pair[:4]), atol=1e-4)
    with pytest.raises(ValueError, match="pool_factor"):
        merge_pool(tokens, 0)


@pytest.mark.parametrize(
    ("codec", "exact", "hnsw_ef", "want"),
    [
        ("uint8", True, None, {"exact": True, "ignore": True}),
        ("float16", True, None, {"exact": True, "ignore": None}),
        ("uint8", False, None, {"oversampling": 2.0, "hnsw_ef": None}),
        ("binary", False, 8, {"oversampling": 4.0, "hnsw_ef": 32}),  # at least the limit
        ("float16", False, 64, {"oversampling": None, "hnsw_ef": 64}),
        ("float16", False, None, None),  # the engine's defaults
    ],
)
def test_both_engines_get_the_same_search_parameters(codec, exact, hnsw_ef, want):
    from mmrag.store._engine import EngineQuery
    from mmrag.store._server_query import QdrantTranslator
    from mmrag.store.plan import QueryNode

    node = QueryNode("distinct", 32)
    request = EngineQuery(node, {}, exact=exact, hnsw_ef=hnsw_ef)
    translator = QdrantTranslator(
        local=False,
        options=lambda n, r: search_options(
            codec, exact=r.exact, hnsw_ef=r.hnsw_ef, limit=n.limit, uses_hnsw=True
        ),
    )
    params = translator._params(node, request)
    if want is None:
        assert params is None
        return
    quantization = params.quantization
    if "exact" in want:
        assert params.exact is True
        assert (quantization.ignore if quantization else None) == want["ignore"]
    else:
        assert not params.exact and params.hnsw_ef == want["hnsw_ef"]
        rescoring = quantization.oversampling if quantization else None
        assert rescoring == want["oversampling"]
        assert quantization is None or quantization.rescore is True


def _page_with_content(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """1,000 tokens: 900 noisy copies of a background vector, then 100 content tokens (ten
    noisy copies each of ten "words")."""
    paper = rng.standard_normal(64)
    background = paper + 0.3 * rng.standard_normal((900, 64))
    words = 2.0 * rng.standard_normal((10, 64)).repeat(10, axis=0)
    content = words + 0.3 * rng.standard_normal((100, 64))
    page = np.concatenate([background, content]).astype(np.float32)
    return page / np.linalg.norm(page, axis=1, keepdims=True), np.arange(900, 1000)


def test_merge_tokens_maps_every_token_to_the_mean_it_went_into():
    rng = np.random.default_rng(1)
    page, _ = _page_with_content(rng)
    for factor in (2, 3):
        merged, assignment = merge_tokens(page, factor)
        assert merged.shape == (-(-len(page) // factor), 64)
        assert assignment.shape == (len(page),)
        assert set(assignment.tolist()) == set(range(len(merged)))  # every vector is used
        for j in (0, len(merged) // 2, len(merged) - 1):
            # the mean of its tokens, at their (unit) length: what Qdrant stores for cosine
            np.testing.assert_allclose(merged[j], _merged(page[assignment == j]), atol=1e-5)
    again = merge_tokens(page, 2)
    np.testing.assert_array_equal(again[1], merge_tokens(page, 2)[1])  # deterministic


def test_merge_tokens_keeps_content_whole_and_maxsim_on_it_exact():
    rng = np.random.default_rng(2)
    page, content = _page_with_content(rng)
    merged, assignment = merge_tokens(page, 2)
    # The content tokens (small groups) are kept one vector each; the background shrinks.
    assert len(set(assignment[content].tolist())) == len(content)
    np.testing.assert_allclose(merged[assignment[content]], page[content], atol=1e-6)
    query = page[content[:20]] + 0.5 * rng.standard_normal((20, 64)).astype(np.float32) / 8
    exact = (query @ page.T).max(axis=1).sum()
    assert (query @ merged.T).max(axis=1).sum() == pytest.approx(exact, rel=1e-5)
    kept, identity = merge_tokens(page, 1)  # factor 1 stores every token as it is
    np.testing.assert_array_equal(kept, page)
    np.testing.assert_array_equal(identity, np.arange(len(page)))


def test_the_merge_assignment_packs_small_and_round_trips():
    _, assignment = merge_tokens(_page_with_content(np.random.default_rng(3))[0], 2)
    packed = pack_assignment(assignment)
    assert isinstance(packed, str) and len(packed) < 2 * len(assignment)
    np.testing.assert_array_equal(unpack_assignment(packed), assignment)
    with pytest.raises(ValueError, match="unreadable token-merge assignment"):
        unpack_assignment("not base64 at all!")
