"""The token index end to end on both backends: plans that start with ``tokens@K`` find the
exact top page, writes and deletes keep it in step with the pages, a missing one is rebuilt,
filters, tenants and pending pages behave as on any other plan."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import numpy as np
import pytest

from mmrag.config import PoolingConfig
from mmrag.embedders.pooling import Pooler
from mmrag.errors import ConfigError
from mmrag.pipeline.retrieval import Retriever
from mmrag.store.contract import CollectionMismatchError
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.plan import parse_plan
from mmrag.store.records import Point, SearchFilter
from mmrag.store.schema import CollectionSchema
from mmrag.store.server import ServerStore
from mmrag.store.token_index import EMBEDDED_FOLDER, SERVER_SUFFIX
from mmrag.testing.conformance.corpus import region_pages, unit
from mmrag.types import Embedding, Item

pytestmark = pytest.mark.integration

GRID, DIM, PAGES = (16, 16), 32, 40
POOLING = PoolingConfig(views=["distinct"], full_pool_factor=1, token_index=True)
PLAN = "tokens@8 -> distinct@4 -> full@3"


PAGES_, REGIONS = region_pages(PAGES, GRID, DIM)
POOLER = Pooler(POOLING)


def _point(i: int, *, tenant: str | None = None, pending: bool = False) -> Point:
    item = Item(
        source=f"/docs/doc{i // 10}.pdf",
        source_sha256=f"{i // 10:064x}",
        modality="pdf_page",
        page=i % 10 + 1,
        tenant=tenant,
    )
    views = POOLER.document_views(PAGES_[i], GRID)
    embedding = Embedding(multi=PAGES_[i], grid=GRID, pooled=views)
    return Point.from_item(item, embedding, "toy", pending=pending)


def _query(i: int, rng: np.random.Generator) -> np.ndarray:
    tokens = PAGES_[i][REGIONS[i][:3]]  # a question about the page's region
    return unit(tokens + 0.05 * rng.standard_normal(tokens.shape))


def _vectors(query: np.ndarray) -> dict[str, np.ndarray]:
    return {"tokens": query, "distinct": query, "full": query}


SCHEMA = CollectionSchema.for_embedder("toy", "multi", DIM, POOLING)
#: The same collection without a token index.
PLAIN = CollectionSchema.for_embedder(
    "toy", "multi", DIM, PoolingConfig(views=["distinct"], full_pool_factor=1, token_index=False)
)


class Backend:
    """Opens the collection ``pages`` of one backend, and drops its token index."""

    def __init__(self, kind: str, tmp_path) -> None:
        self.kind, self.root, self.opened = kind, tmp_path / "index", []
        self.client = None
        if kind == "server":
            from qdrant_client import QdrantClient

            self.client = QdrantClient(":memory:")

    def open(self, schema=SCHEMA, recreate: bool = False):
        if self.kind == "embedded":
            store = EmbeddedStore(self.root, "pages", schema, recreate=recreate)
        else:
            store = ServerStore(self.client, "pages", schema, recreate=recreate)
        self.opened.append(store)
        return store

    def drop_token_index(self) -> None:
        if self.kind == "embedded":
            shutil.rmtree(self.root / "pages" / EMBEDDED_FOLDER)
        else:
            self.client.delete_collection("pages" + SERVER_SUFFIX)

    def close(self) -> None:
        for store in self.opened:
            store.close()
        if self.client is not None:
            self.client.close()


@pytest.fixture(params=["embedded", "server"])
def backend(request, tmp_path) -> Iterator[Backend]:
    opened = Backend(request.param, tmp_path)
    yield opened
    opened.close()


def _rows(point: Point) -> int:
    return len(point.vectors["distinct"])


def test_a_token_plan_finds_the_exact_top_page(backend):
    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    store.optimize()
    assert store.info().token_vectors == sum(_rows(p) for p in points)
    exact = Retriever(store, "full@3")
    staged = Retriever(store, PLAN)
    rng = np.random.default_rng(1)
    for i in range(PAGES):
        query = _query(i, rng)
        want = exact.search({"full": query})
        hits = staged.search(_vectors(query))
        assert hits[0].id == want[0].id == points[i].id
        assert hits[0].score == pytest.approx(want[0].score, rel=1e-3)
        # The token stage's recorded score is MaxSim over the page's token vectors.
        distinct = store.score([hits[0].id], {"distinct": query})["distinct"][hits[0].id]
        assert hits[0].stage_scores["tokens"] == pytest.approx(distinct, rel=1e-5)


def test_writes_and_deletes_keep_the_token_index_in_step(backend):
    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    store.upsert(points[:5])  # written again: no duplicate tokens
    total = sum(_rows(p) for p in points)
    assert store.info().token_vectors == total
    plan, rng = parse_plan(PLAN), np.random.default_rng(2)

    store.delete([points[3].id])
    assert store.info().token_vectors == total - _rows(points[3])
    hits = store.query(plan, _vectors(_query(3, rng)))
    assert hits and points[3].id not in {h.id for h in hits}

    removed = store.delete_source("/docs/doc2.pdf")
    assert removed == 10
    assert store.info().token_vectors == total - sum(_rows(p) for p in points[3:4] + points[20:30])
    for i in range(20, 30):
        hits = store.query(plan, _vectors(_query(i, rng)))
        assert all(h.payload["source"] != "/docs/doc2.pdf" for h in hits)


def test_a_page_written_again_with_fewer_groups_leaves_no_stale_tokens(backend):
    store = backend.open()
    point = _point(0)
    store.upsert([point])
    smaller = Point(
        point.id, {**point.vectors, "distinct": point.vectors["distinct"][:2]}, point.payload
    )
    store.upsert([smaller])
    assert store.info().token_vectors == 2


def test_a_missing_token_index_is_rebuilt_from_the_pages(backend):
    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    store.close()
    backend.drop_token_index()
    store = backend.open(schema=None)  # opened as stored: it keeps a token index
    assert store.info().token_vectors == sum(_rows(p) for p in points)
    hits = store.query(parse_plan(PLAN), _vectors(_query(7, np.random.default_rng(3))))
    assert hits[0].id == points[7].id


def test_a_filtered_query_searches_the_filtered_pages(backend):
    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    only_doc1 = SearchFilter(sources=("/docs/doc1.pdf",))
    query = _vectors(_query(25, np.random.default_rng(4)))  # a page of doc2
    hits = store.query(parse_plan(PLAN), query, only_doc1)
    want = store.query(parse_plan("full@3"), query, only_doc1)
    assert [h.id for h in hits] == [h.id for h in want]
    assert {h.payload["source"] for h in hits} == {"/docs/doc1.pdf"}


def test_tenants_see_their_own_pages_only(backend):
    mine = [_point(i, tenant="a") for i in range(10)]
    theirs = [_point(i, tenant="b") for i in range(10)]  # the same pages, another tenant
    store = backend.open()
    store.upsert(mine + theirs)
    query = _vectors(_query(4, np.random.default_rng(5)))
    for tenant, points in (("a", mine), ("b", theirs)):
        hits = store.query(parse_plan(PLAN), query, SearchFilter(tenant=tenant))
        assert hits[0].id == points[4].id
        assert {h.payload["tenant"] for h in hits} == {tenant}


def test_pending_pages_stay_hidden_until_published(backend):
    store = backend.open()
    store.upsert([_point(i) for i in range(10)] + [_point(i, pending=True) for i in range(10, 20)])
    query = _vectors(_query(12, np.random.default_rng(6)))
    plan = parse_plan(PLAN)
    assert all(h.payload["source"] == "/docs/doc0.pdf" for h in store.query(plan, query))
    assert store.publish("/docs/doc1.pdf") == 10
    assert store.query(plan, query)[0].id == _point(12).id


def test_plans_the_token_index_cannot_run_are_clear_errors(backend):
    store = backend.open()
    store.upsert([_point(0)])
    query = _vectors(_query(0, np.random.default_rng(7)))
    with pytest.raises(ConfigError, match="first stage"):
        store.query(parse_plan("distinct@8 -> tokens@4 -> full@3"), query)
    with pytest.raises(ConfigError, match="add a stage that scores them"):
        store.query(parse_plan("tokens@4"), query)
    store.close()
    other = backend.open(schema=PLAIN, recreate=True)
    other.upsert([_point(0)])
    assert other.info().token_vectors is None
    with pytest.raises(ConfigError, match="token_index = true"):
        other.query(parse_plan(PLAN), query)


def test_the_token_index_is_part_of_the_collection_schema(backend):
    store = backend.open()
    store.upsert([_point(0)])
    assert store.schema.token_index and store.schema.pooling["token_index"] is True
    store.close()
    with pytest.raises(CollectionMismatchError, match="token_index"):
        backend.open(schema=PLAIN)


def test_the_token_index_needs_the_distinct_view_and_mmrag_point_ids(backend):
    with pytest.raises(ConfigError, match="distinct"):
        CollectionSchema("toy", "multi", DIM, views=("global",), pooling={"token_index": True})
    store = backend.open()
    point = _point(0)
    with pytest.raises(ConfigError, match="version-5 UUIDs"):
        store.upsert([Point("1f0c9b1e-0000-4000-8000-000000000001", point.vectors, point.payload)])
    assert store.count() == 0


def test_the_next_stage_scores_only_the_token_candidates_unless_too_few(backend):
    from mmrag.store import token_index

    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    query = _vectors(_query(9, np.random.default_rng(8)))
    tokens = store._tokens  # the collection's token index
    (restricted,) = token_index.requests(
        store, tokens, parse_plan(PLAN), [query], None, with_payload=False, hnsw_ef=None
    )
    assert len(restricted.filter.ids) == 8 and points[9].id in restricted.filter.ids
    # More candidates asked than pages reached (40 pages): every page is scored.
    (everything,) = token_index.requests(
        store,
        tokens,
        parse_plan("tokens@1000 -> full@3"),
        [query],
        None,
        with_payload=False,
        hnsw_ef=None,
    )
    assert everything.filter is None
    assert len(store.query(parse_plan("tokens@1000 -> full@40"), query)) == PAGES


def test_doctor_checks_the_token_index_and_its_advice_repairs_it(tmp_path):
    from mmrag.config import StoreConfig
    from mmrag.store.doctor import check_store
    from mmrag.store.token_index import page_token_ids

    config = StoreConfig(path=str(tmp_path / "index"), collection="pages")
    points = [_point(i) for i in range(10)]
    with EmbeddedStore(config.path, "pages", SCHEMA) as store:
        store.upsert(points)
    findings = {f.check: f for f in check_store(config).findings}
    assert findings["tokens"].level == "ok"

    with EmbeddedStore(config.path, "pages") as store:  # tokens lost, e.g. a damaged shard
        store._tokens.delete(page_token_ids([points[0].id]))
    report = check_store(config)
    tokens = next(f for f in report.findings if f.check == "tokens")
    assert tokens.level == "error" and "miss the pages" in tokens.what
    assert EMBEDDED_FOLDER in tokens.advice

    shutil.rmtree(tmp_path / "index" / "pages" / EMBEDDED_FOLDER)  # the advice
    with EmbeddedStore(config.path, "pages") as store:
        assert store.info().token_vectors == sum(_rows(p) for p in points)
    assert next(f for f in check_store(config).findings if f.check == "tokens").level == "ok"


def test_deleting_ids_that_never_had_tokens_is_harmless(backend):
    store = backend.open()
    point = _point(0)
    store.upsert([point])
    store.delete(["1f0c9b1e-0000-4000-8000-000000000001", point.id])  # a uuid4: never stored
    assert store.count() == 0 and store.info().token_vectors == 0


def _request(store, plan: str, query, filter):
    from mmrag.store import token_index

    (request,) = token_index.requests(
        store, store._tokens, parse_plan(plan), [query], filter, with_payload=False, hnsw_ef=None
    )
    return request


def test_a_broad_filter_asks_the_token_stage_for_more_candidates(backend):
    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    half = SearchFilter(sources=("/docs/doc0.pdf", "/docs/doc1.pdf"))  # 20 of 40 pages
    rng = np.random.default_rng(9)
    request = _request(store, PLAN, _vectors(_query(3, rng)), half)
    # Twice the candidates (8 x 2), and the filter still applies to them.
    assert len(request.filter.ids) == 16 and points[3].id in request.filter.ids
    assert request.filter.sources == half.sources and not request.exact
    for i in range(20):  # every page of the filtered half is found by a question about it
        query = _vectors(_query(i, rng))
        hits = store.query(parse_plan(PLAN), query, half)
        want = store.query(parse_plan("full@3"), query, half)
        assert hits[0].id == want[0].id == points[i].id
        assert {h.payload["source"] for h in hits} <= set(half.sources)
    # A query about a page the filter excludes gets the filtered pages only.
    hits = store.query(parse_plan(PLAN), _vectors(_query(30, rng)), half)
    assert hits and {h.payload["source"] for h in hits} <= set(half.sources)


def test_a_selective_filter_leaves_the_search_to_the_engine(backend):
    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    query = _vectors(_query(10, np.random.default_rng(10)))
    first_pages = SearchFilter(page_range=(1, 1))  # 4 of 40 pages: under MIN_SHARE (1/8)
    request = _request(store, PLAN, query, first_pages)
    assert request.filter == first_pages and request.exact  # few pages: scored exactly
    hits = store.query(parse_plan(PLAN), query, first_pages)
    assert [h.id for h in hits] == [
        h.id for h in store.query(parse_plan("full@3"), query, first_pages)
    ]
    assert hits[0].id == points[10].id
    # A filter on ids keeps the token candidates among them; one matching nothing finds nothing.
    some = SearchFilter(ids=tuple(p.id for p in points[:30]))
    request = _request(store, PLAN, query, some)
    assert set(request.filter.ids) <= set(some.ids) and points[10].id in request.filter.ids
    assert len(request.filter.ids) <= 16  # the token candidates (8 x 2), not the filter's 30
    # The user's ids in another spelling of the same UUIDs narrow the same way.
    shouted = SearchFilter(ids=tuple(p.id.upper() for p in points[:30]))
    assert _request(store, PLAN, query, shouted).filter.ids == request.filter.ids
    assert store.query(parse_plan(PLAN), query, SearchFilter(sources=("/nowhere.pdf",))) == []


def test_a_tenant_filtered_on_its_own_pages_keeps_the_filter(backend):
    mine = [_point(i, tenant="a") for i in range(10)]
    theirs = [_point(i, tenant="b") for i in range(10, 40)]
    store = backend.open()
    store.upsert(mine + theirs)
    # Every page of tenant a matches: no oversampling, but the filter must still apply.
    where = SearchFilter(sources=("/docs/doc0.pdf",), tenant="a")
    query = _vectors(_query(25, np.random.default_rng(11)))  # about a page of tenant b
    request = _request(store, "tokens@4 -> distinct@4 -> full@3", query, where)
    assert request.filter.sources == where.sources and request.filter.tenant == "a"
    hits = store.query(parse_plan("tokens@4 -> distinct@4 -> full@3"), query, where)
    assert hits and {(h.payload["source"], h.payload["tenant"]) for h in hits} == {
        ("/docs/doc0.pdf", "a")
    }


def test_pending_pages_do_not_count_as_filtered_candidates(backend):
    # doc1's pages are still pending: a query filtered on doc0 and doc1 sees doc0's only.
    store = backend.open()
    pending = [_point(i, pending=True) for i in range(10, 20)]
    store.upsert([_point(i) for i in range(10)] + pending + [_point(i) for i in range(20, 40)])
    half = SearchFilter(sources=("/docs/doc0.pdf", "/docs/doc1.pdf"))
    assert store.count(half) == 20 and store.count(half, searchable=True) == 10
    assert store.count(searchable=True) == 30
    query = _vectors(_query(15, np.random.default_rng(12)))  # about a pending page
    hits = store.query(parse_plan(PLAN), query, half)
    want = store.query(parse_plan("full@3"), query, half)
    assert [h.id for h in hits] == [h.id for h in want] and len(hits) == 3
    assert {h.payload["source"] for h in hits} == {"/docs/doc0.pdf"}


def test_a_selective_filter_over_many_pages_uses_the_engines_filtered_search(backend, monkeypatch):
    from mmrag.store import token_index

    store = backend.open()
    store.upsert([_point(i) for i in range(PAGES)])
    first_pages = SearchFilter(page_range=(1, 1))  # 4 pages
    query = _vectors(_query(10, np.random.default_rng(13)))
    monkeypatch.setattr(token_index, "EXACT_PAGES", 3)  # more pages than scored exactly
    request = _request(store, PLAN, query, first_pages)
    assert request.filter == first_pages and not request.exact


def test_a_filtered_query_keeps_its_candidates_when_the_nearest_tokens_run_out(
    backend, monkeypatch
):
    from mmrag.store import token_index

    points = [_point(i) for i in range(PAGES)]
    store = backend.open()
    store.upsert(points)
    half = SearchFilter(sources=("/docs/doc0.pdf", "/docs/doc1.pdf"))  # 20 of 40 pages
    # Few nearest tokens per query token: the search reaches fewer pages than the 8 x 2 asked,
    # yet enough of the filter's (at least half of K); a large collection's usual case.
    monkeypatch.setattr(token_index, "NEIGHBOURS", 3)
    query = _vectors(_query(3, np.random.default_rng(14)))
    request = _request(store, "tokens@8 -> distinct@2 -> full@1", query, half)
    assert request.filter.sources == half.sources and not request.exact
    assert points[3].id in request.filter.ids and 4 <= len(request.filter.ids) < 16
    hits = store.query(parse_plan("tokens@8 -> distinct@2 -> full@1"), query, half)
    assert [h.id for h in hits] == [points[3].id]
