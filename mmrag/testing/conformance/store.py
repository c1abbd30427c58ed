"""The store conformance suite: what every :class:`~mmrag.store.contract.VectorStore` does.

:class:`StoreConformance` is a pytest base class. A backend subclasses it in its own tests and
overrides one fixture, ``open_store``: a factory ``open_store(schema=None, collection="c",
recreate=False)`` returning an open store of that collection. Several calls within one test
open the same place (one folder, one client, one server), so a collection written by one call
is seen by the next; ``schema=None`` opens a collection as stored. The fixture closes what it
opened when the test ends (a store may already have been closed by the test).

The checks cover creating, reopening and recreating collections (with the schema check and its
error message), idempotent upserts, shape validation, deletes, counts, scrolling, concurrent
writers, every filter kind at every stage of a plan, exact scores at every stage of a
retrieval plan (against :func:`mmrag.scoring.maxsim`), hybrid text fusion (RRF), batched
queries, and single-vector collections. The data is :mod:`mmrag.testing.conformance.corpus`.

Example — a third-party backend's test module::

    import pytest

    from mmrag.testing.conformance.store import StoreConformance
    from my_package.store import MyStore


    class TestMyStore(StoreConformance):
        @pytest.fixture
        def open_store(self, tmp_path):
            opened = []

            def factory(schema=None, collection="c", recreate=False):
                store = MyStore(tmp_path / "index", collection, schema, recreate=recreate)
                opened.append(store)
                return store

            yield factory
            for store in opened:
                store.close()

mmrag runs the suite on its embedded store, on the server backend over qdrant-client's local
mode, and on a real Qdrant server when ``QDRANT_URL`` is set
(``tests/integration/store/test_conformance.py``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

import numpy as np
import pytest

from mmrag.errors import ConfigError
from mmrag.pipeline.retrieval import Retriever
from mmrag.store.contract import CollectionMismatchError, StoreError, VectorStore
from mmrag.store.plan import parse_plan
from mmrag.store.records import Point, SearchFilter
from mmrag.store.schema import CollectionSchema
from mmrag.testing.conformance.corpus import (
    DIM,
    GRID,
    POOLING,
    SOURCES,
    Doc,
    exact_scores,
    make_corpus,
    query_of,
    schema_for,
    unit,
)
from mmrag.types import Embedding, Item

__all__ = ["StoreConformance", "StoreFactory"]

#: ``open_store(schema=None, collection="c", recreate=False) -> VectorStore``.
StoreFactory = Callable[..., VectorStore]

#: The filters of ``test_each_filter_kind`` and which pages each must keep.
FILTER_CASES = [
    (SearchFilter.build(source="alpha.pdf"), lambda d: d.item.source == "alpha.pdf"),
    (
        SearchFilter.build(source=["alpha.pdf", "gamma.png"]),
        lambda d: d.item.source in ("alpha.pdf", "gamma.png"),
    ),
    (SearchFilter.build(modality="image"), lambda d: d.item.modality.value == "image"),
    (
        SearchFilter.build(modality=["image", "video_frame"]),
        lambda d: d.item.modality.value in ("image", "video_frame"),
    ),
    (
        SearchFilter.build(pages=(3, 6)),
        lambda d: d.item.page is not None and 3 <= d.item.page <= 6,
    ),
    (
        SearchFilter.build(pages=(None, 2)),
        lambda d: d.item.page is not None and d.item.page <= 2,
    ),
    (SearchFilter.build(metadata={"lang": "en"}), lambda d: d.item.metadata["lang"] == "en"),
    (SearchFilter.build(metadata={"batch": [0, 2]}), lambda d: d.item.metadata["batch"] in (0, 2)),
    (
        SearchFilter.build(ranges={"batch": (1, None)}),
        lambda d: d.item.metadata["batch"] >= 1,
    ),
    (
        SearchFilter.build(metadata={"lang": "de", "batch": 1}),
        lambda d: d.item.metadata["lang"] == "de" and d.item.metadata["batch"] == 1,
    ),
    (
        SearchFilter.build(source="alpha.pdf", pages=(2, 9), metadata={"lang": "de"}),
        lambda d: (
            d.item.source == "alpha.pdf"
            and 2 <= d.item.page <= 9
            and d.item.metadata["lang"] == "de"
        ),
    ),
]

#: The plans of ``test_plans_record_exact_scores_at_every_stage``.
PLANS = [
    "rows@10",
    "global@20 -> full@5",
    "rows@15 -> full@5",
    "global@30 -> rows@12 -> full@5",
    "muvera@20 -> full@5",
    "muvera@25 -> rows@10 -> full@4",
]


class StoreConformance:
    """Behaviour every vector-store backend must have; subclass it and override ``open_store``
    (see the module docstring for an example)."""

    # -- fixtures -----------------------------------------------------------------------------

    @pytest.fixture
    def open_store(self) -> StoreFactory:
        """``open_store(schema=None, collection="c", recreate=False)`` on the backend under
        test. Override it in the subclass (see the module docstring)."""
        pytest.fail(
            f"{type(self).__name__} must override the `open_store` fixture with a factory "
            "`open_store(schema=None, collection='c', recreate=False)` of open stores",
            pytrace=False,
        )

    @pytest.fixture
    def corpus(self) -> list[Doc]:
        """The 40-page corpus of :func:`~mmrag.testing.conformance.corpus.make_corpus`."""
        return make_corpus()

    @pytest.fixture
    def store(self, open_store: StoreFactory, corpus: list[Doc]) -> VectorStore:
        """A store holding the 40-page corpus (with the text channel), optimized."""
        s = open_store(schema_for())
        s.upsert([(d.item, d.embedding) for d in corpus], batch_size=16)
        s.optimize()
        return s

    # -- create / open / schema ------------------------------------------------------------------

    def test_create_then_reopen_with_the_stored_schema(self, open_store, corpus):
        schema = schema_for()
        store = open_store(schema)
        assert store.count() == 0
        assert store.upsert([(d.item, d.embedding) for d in corpus[:5]]) == 5
        store.close()
        again = open_store(None)  # no schema: open as stored
        assert again.schema == schema
        assert again.count() == 5
        again.close()
        assert open_store(schema).count() == 5

    def test_opening_with_another_embedder_names_both_and_the_fix(self, open_store):
        open_store(schema_for("toy-multi@1")).close()
        with pytest.raises(CollectionMismatchError) as err:
            open_store(schema_for("other-model@2"))
        message = str(err.value)
        assert "toy-multi@1" in message and "other-model@2" in message
        assert "--recreate" in message and "collection" in message
        assert isinstance(err.value, ConfigError)

    def test_opening_with_other_pooling_settings_is_a_mismatch(self, open_store):
        open_store(schema_for()).close()
        other = CollectionSchema.for_embedder(
            "toy-multi@1", "multi", DIM, POOLING.model_copy(update={"views": ["global"]}), text=True
        )
        with pytest.raises(CollectionMismatchError, match="views"):
            open_store(other)

    def test_recreate_replaces_the_collection(self, open_store, corpus):
        store = open_store(schema_for())
        store.upsert([(d.item, d.embedding) for d in corpus[:3]])
        store.close()
        single = CollectionSchema(embedder_id="clip@1", kind="single", dim=8)
        fresh = open_store(single, recreate=True)
        assert fresh.count() == 0 and fresh.schema == single

    def test_opening_a_missing_collection_without_schema_says_what_to_do(self, open_store):
        with pytest.raises(StoreError, match="index documents first"):
            open_store(None, collection="nothing_here")

    def test_collections_are_independent(self, open_store, corpus):
        a = open_store(schema_for(), collection="a")
        b = open_store(schema_for(), collection="b")
        a.upsert([(d.item, d.embedding) for d in corpus[:4]])
        assert (a.count(), b.count()) == (4, 0)

    # -- writes ------------------------------------------------------------------------------

    def test_upsert_is_idempotent_with_deterministic_ids(self, store, corpus):
        assert store.count() == len(corpus)
        store.upsert([(d.item, d.embedding) for d in corpus])
        assert store.count() == len(corpus)
        ids = [d.item.point_id("toy-multi@1") for d in corpus]
        assert store.existing([*ids, "00000000-0000-0000-0000-000000000000"]) == set(ids)

    def test_bulk_writes_are_found_before_and_after_the_graphs_are_built(self, open_store, corpus):
        store = open_store(schema_for())
        with store.bulk():
            store.upsert([(d.item, d.embedding) for d in corpus[:20]], batch_size=8)
            assert store.count() == 20
        retriever = Retriever(store, "global@30 -> rows@10 -> full@3")
        query = Embedding(multi=query_of(corpus, 7, tokens=8))
        assert retriever.search(query)[0].id == corpus[7].item.id  # not indexed yet: brute force

        def crash_mid_job() -> None:
            with store.bulk():
                store.upsert([(d.item, d.embedding) for d in corpus[20:30]])
                raise RuntimeError("crash mid-job")

        with pytest.raises(RuntimeError, match="crash"):
            crash_mid_job()
        with store.bulk():  # a block that failed leaves the store writable
            store.upsert([(d.item, d.embedding) for d in corpus[30:]])
        store.optimize()
        assert store.count() == len(corpus)
        for index in (7, 25, 33):
            query = Embedding(multi=query_of(corpus, index, tokens=8))
            assert retriever.search(query)[0].id == corpus[index].item.id

    def test_payload_round_trips_to_the_item(self, store, corpus):
        doc = corpus[5]
        (record,) = store.retrieve([doc.item.id])
        # the point builder records the patch grid of the stored `full` vectors (for regions)
        grid = [int(n) for n in doc.embedding.grid]
        stored = dataclasses.replace(doc.item, details={**doc.item.details, "grid": grid})
        assert Item.from_payload(record.payload) == stored

    def test_upsert_rejects_vectors_of_the_wrong_shape(self, open_store, corpus):
        store = open_store(schema_for())
        bad = Embedding(
            multi=np.ones((16, DIM + 1), np.float32), grid=GRID, pooled=corpus[0].embedding.pooled
        )
        with pytest.raises(ConfigError, match="full"):
            store.upsert([(corpus[0].item, bad)])
        no_views = Embedding(multi=corpus[0].embedding.multi, grid=GRID)
        with pytest.raises(ConfigError, match="Pooler"):
            store.upsert([(corpus[0].item, no_views)])
        assert store.count() == 0

    def test_delete_by_source_and_by_id(self, store, corpus):
        assert store.delete_source("beta.pdf") == 10
        assert store.count() == 30
        assert "beta.pdf" not in store.sources()
        assert store.delete_source("beta.pdf") == 0
        store.delete([corpus[0].item.id, "00000000-0000-0000-0000-000000000000"])
        assert store.count() == 29

    def test_list_sources_and_count(self, store):
        assert store.sources() == sorted(SOURCES)
        assert store.count() == 40

    def test_scroll_pages_through_everything_once(self, store):
        seen = []
        records, offset = store.scroll(limit=7)
        seen += records
        while offset is not None:
            records, offset = store.scroll(limit=7, offset=offset)
            seen += records
        assert len(seen) == 40 and len({r.id for r in seen}) == 40
        assert [r.id for r in store.iter_records(batch_size=9)] == [r.id for r in seen]
        only = list(store.iter_records(SearchFilter.build(source="gamma.png")))
        assert len(only) == 10 and {r.payload["source"] for r in only} == {"gamma.png"}

    def test_scroll_can_return_vectors(self, store, corpus):
        (record,) = store.retrieve([corpus[2].item.id], with_vectors=True)
        assert record.vectors["rows"].shape == (GRID[0], DIM)
        assert record.vectors["full"].shape == (GRID[0] * GRID[1], DIM)

    def test_concurrent_writers_lose_nothing(self, open_store):
        store = open_store(schema_for())
        docs = make_corpus(80, seed=3)
        errors = []

        def write(part: int) -> None:
            try:
                chunk = docs[part::4]
                for i in range(0, len(chunk), 5):
                    store.upsert([(d.item, d.embedding) for d in chunk[i : i + 5]])
            except Exception as exc:  # surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(p,)) for p in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.count() == 80
        assert store.existing([d.item.id for d in docs]) == {d.item.id for d in docs}

    def test_source_counts_and_tenants(self, open_store, corpus):
        store = open_store(schema_for())
        acme = [(dataclasses.replace(d.item, tenant="acme"), d.embedding) for d in corpus[:8]]
        store.upsert([(d.item, d.embedding) for d in corpus[:8]] + acme)
        assert store.count() == 16  # the tenant is part of the point id
        everyone = store.source_counts()
        assert everyone == dict.fromkeys(SOURCES, 4)
        mine = SearchFilter(tenant="acme")
        assert store.source_counts(mine) == dict.fromkeys(SOURCES, 2)
        assert store.sources(mine) == sorted(SOURCES)
        hits = Retriever(store, "global@40 -> full@40").search(
            Embedding(multi=query_of(corpus, 0)), filter=mine
        )
        assert len(hits) == 8 and {h.item.tenant for h in hits} == {"acme"}
        assert store.delete_source(SOURCES[0], tenant="acme") == 2
        assert store.source_counts()[SOURCES[0]] == 2  # the other owner's points stay

    def test_publish_is_per_tenant(self, open_store, corpus):
        store = open_store(schema_for())
        points = [
            Point.for_collection(
                dataclasses.replace(d.item, tenant=t), d.embedding, store.schema, pending=True
            )
            for d in corpus[:1]
            for t in ("acme", "globex")
        ]
        store.upsert(points)
        assert store.publish(corpus[0].item.source, tenant="acme") == 1
        hits = Retriever(store, "full@10").search(Embedding(multi=query_of(corpus, 0)))
        assert [h.item.tenant for h in hits] == ["acme"]

    def test_info_reports_counts_and_indexed_vectors(self, store):
        info = store.info()
        assert (info.points, info.sources) == (40, 4)
        assert info.hnsw_vectors_per_point == 1 + GRID[0] + 1  # global + rows + muvera
        assert info.to_dict()["schema"]["embedder_id"] == "toy-multi@1"

    # -- filters -----------------------------------------------------------------------------

    @pytest.mark.parametrize(("filter", "expected"), FILTER_CASES)
    def test_each_filter_kind(self, store, corpus, filter, expected):
        want = {d.item.id for d in corpus if expected(d)}
        assert want, "the corpus must have matches for this filter"
        assert store.count(filter) == len(want)
        assert {r.id for r in store.iter_records(filter)} == want
        hits = Retriever(store, "global@40 -> full@40").search(
            Embedding(multi=query_of(corpus, 0)), filter=filter
        )
        assert {h.id for h in hits} == want

    def test_filters_apply_at_every_stage(self, store, corpus):
        # If the filter only applied to the last stage, global@3 would keep the 3 best pages of
        # the whole collection and few (or none) of them would be gamma.png's.
        only = SearchFilter.build(source="gamma.png")
        query = Embedding(multi=query_of(corpus, 0))
        for plan in (
            "global@3 -> full@3",
            "global@3 -> rows@3 -> full@3",
            "muvera@3 -> full@3",
            "(global@3 + text@3) -> full@3",
        ):
            hits = Retriever(store, plan).search(query, text="chart", filter=only)
            assert len(hits) == 3, plan
            assert {h.item.source for h in hits} == {"gamma.png"}, plan

    # -- plans and stage scores --------------------------------------------------------------

    def test_exact_plan_matches_reference_maxsim(self, store, corpus):
        for index in (0, 7, 21):
            q = query_of(corpus, index)
            reference = exact_scores(corpus, q, "full")
            hits = Retriever(store, "full@5").search(Embedding(multi=q))
            want = [corpus[i].item.id for i in np.argsort(-reference)[:5]]
            assert [h.id for h in hits] == want
            assert hits[0].id == corpus[index].item.id
            for h in hits:
                i = next(j for j, d in enumerate(corpus) if d.item.id == h.id)
                assert h.score == pytest.approx(reference[i], abs=2e-3)

    @pytest.mark.parametrize("plan", PLANS)
    def test_plans_record_exact_scores_at_every_stage(self, store, corpus, plan):
        q = query_of(corpus, 9)
        hits = Retriever(store, plan).search(Embedding(multi=q))
        parsed = parse_plan(plan)
        assert len(hits) == parsed.limit
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        index_of = {d.item.id: i for i, d in enumerate(corpus)}
        for view in parsed.vectors:
            reference = exact_scores(corpus, q, view)
            for h in hits:
                want = reference[index_of[h.id]]
                assert h.stage_scores[view] == pytest.approx(want, abs=2e-3), view
        for h in hits:
            assert list(h.stage_scores) == list(parsed.vectors)
            assert h.stage_scores[parsed.stages[-1].using] == h.score
        # The last stage reranks exactly the candidates the previous stage kept.
        if len(parsed.stages) == 2:
            previous = parsed.stages[-2]
            kept = np.argsort(-exact_scores(corpus, q, previous.using))[: previous.limit]
            final = exact_scores(corpus, q, parsed.stages[-1].using)
            ranked = sorted(kept, key=lambda i: -final[i])
            assert [h.id for h in hits] == [corpus[i].item.id for i in ranked][: parsed.limit]

    def test_three_stage_plan_finds_the_source_page(self, store, corpus):
        for index in range(0, 40, 5):
            hits = Retriever(store, "global@30 -> rows@10 -> full@3").search(
                Embedding(multi=query_of(corpus, index, tokens=8))
            )
            assert hits[0].id == corpus[index].item.id

    def test_hybrid_plan_fuses_text_with_rrf(self, store, corpus):
        q = Embedding(multi=query_of(corpus, 3))
        hits = Retriever(store, "(global@40 + text@40) -> full@5").search(q, text="invoice")
        assert len(hits) == 5
        for h in hits:
            assert set(h.stage_scores) == {"global", "text", "rrf", "full"}
            assert h.stage_scores["full"] == h.score
            has_word = "invoice" in (h.item.text or "")
            assert (h.stage_scores["text"] > 0) == has_word
        # Fusion as the last stage: the score is the RRF score.
        fused = Retriever(store, "(rows@20 + text@20)").search(q, text="invoice")
        assert all(h.score == h.stage_scores["rrf"] for h in fused)
        assert fused[0].stage_scores["rrf"] >= fused[-1].stage_scores["rrf"]
        # A text-only plan ranks exactly the pages with the word first.
        text_hits = Retriever(store, "text@10").search(q, text="invoice")
        with_word = {d.item.id for d in corpus if "invoice" in d.item.text}
        assert {h.id for h in text_hits} == with_word
        by_id = {h.id: h.score for h in text_hits}
        for h in hits:
            if h.id in by_id:
                assert h.stage_scores["text"] == pytest.approx(by_id[h.id], rel=1e-5)

    def test_rrf_stage_before_the_last_records_its_fused_score(self, store, corpus):
        q = Embedding(multi=query_of(corpus, 3))
        hits = Retriever(store, "(global@20 + text@20) -> full@5").search(q, text="invoice")
        fusion = Retriever(store, "(global@20 + text@20)").search(q, text="invoice")
        fused = {h.id: h.score for h in fusion}
        for h in hits:
            assert h.stage_scores["rrf"] == pytest.approx(fused[h.id])

    def test_a_batch_of_queries_equals_single_queries(self, store, corpus):
        retriever = Retriever(store, "global@30 -> rows@10 -> full@5")
        queries = [Embedding(multi=query_of(corpus, i)) for i in (1, 2, 3)]
        batch = retriever.search_batch(queries)
        for q, hits in zip(queries, batch, strict=True):
            assert [h.id for h in hits] == [h.id for h in retriever.search(q)]

    def test_a_plan_over_a_missing_vector_is_refused(self, open_store):
        store = open_store(schema_for(text=False))
        with pytest.raises(ConfigError, match="text"):
            Retriever(store, "(global@10 + text@10) -> full@5")
        with pytest.raises(ConfigError, match="cols"):
            Retriever(store, "cols@10 -> full@5")

    def test_single_vector_collection_uses_dense(self, open_store):
        schema = CollectionSchema(embedder_id="clip@1", kind="single", dim=8)
        store = open_store(schema)
        rng = np.random.default_rng(5)
        vectors = unit(rng.standard_normal((12, 8)).astype(np.float32))  # (12, 8)
        ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(12)]
        payload = {"source_sha256": "0" * 64, "modality": "image"}
        store.upsert(
            [
                Point(ids[i], {"dense": vectors[i]}, {"source": f"s{i}.png", **payload})
                for i in range(12)
            ]
        )
        hits = Retriever(store, "dense@3").search(Embedding(dense=vectors[4]))
        assert hits[0].id == ids[4]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].stage_scores == {"dense": hits[0].score}
