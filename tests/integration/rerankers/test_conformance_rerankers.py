"""The reranker conformance suite on mmrag's rerankers: exact MaxSim over a store, and the
MonoQwen2-VL judge on the tiny Qwen2-VL adapter.

Each class only says how to build its reranker (and, for MaxSim, what to rerank: the query's
multi-vector and the store holding the pages' vectors);
:class:`~mmrag.testing.conformance.reranker.RerankerConformance` holds every check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmrag.embedders.base import Query
from mmrag.registry import resolve
from mmrag.rerankers.base import RerankContext
from mmrag.rerankers.maxsim import MaxSimReranker
from mmrag.store.embedded import EmbeddedStore
from mmrag.testing.conformance.corpus import Doc, make_corpus, query_of, schema_for
from mmrag.testing.conformance.reranker import RerankCase, RerankerConformance
from mmrag.types import Embedding, Hit

pytestmark = pytest.mark.integration


class TestMaxSimReranker(RerankerConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def reranker(cls) -> MaxSimReranker:
        return MaxSimReranker(top_n=3)

    @pytest.fixture
    def case(self, tmp_path: Path) -> Iterator[RerankCase]:
        """Six hits of a stored corpus (the last a twin of the first: the same vectors under
        another page), the query's multi-vector and the store."""
        docs = make_corpus(8)
        twin = Doc(dataclasses.replace(docs[0].item, page=99), docs[0].embedding)
        store = EmbeddedStore(tmp_path / "index", "pages", schema_for())
        store.upsert([(d.item, d.embedding) for d in [*docs, twin]])
        hits = [
            Hit(id=d.item.id, score=1.0 / rank, item=d.item, stage_scores={"rows": 1.0 / rank})
            for rank, d in enumerate([*docs[:5], twin], start=1)
        ]
        context = RerankContext(query_embedding=Embedding(multi=query_of(docs, 2)), store=store)
        yield RerankCase(Query(text="revenue"), hits, context, twins=(hits[0].id, hits[-1].id))
        store.close()


class TestMonoQwenReranker(RerankerConformance):
    @pytest.fixture(scope="class")
    @classmethod
    def reranker(cls, tiny_monoqwen: Path):
        monoqwen = resolve("reranker", "monoqwen")
        return monoqwen(str(tiny_monoqwen), device="cpu", max_pixels=12544, batch_size=2)
