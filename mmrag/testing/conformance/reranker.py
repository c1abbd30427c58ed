"""The reranker conformance suite: what every :class:`~mmrag.rerankers.base.Reranker` does.

:class:`RerankerConformance` is a pytest base class. A reranker subclasses it in its own tests
and overrides the ``reranker`` fixture (scope it to the class so a model loads once). The
``case`` fixture gives the query, the hits and the :class:`~mmrag.rerankers.base.RerankContext`
to rerank: by default a text query and five page hits with images (the fifth a *twin* of the
first: the same page content under another id), no context. Override ``case`` when the
reranker needs something else (MaxSim needs the query's multi-vector and the store). The checks:

* ``stage`` is a non-empty name, ``top_n`` is ``None`` or positive, ``to_dict`` gives a
  JSON-safe ``{"type", "init_parameters"}``;
* ``rerank`` returns new :class:`~mmrag.types.Hit` objects for the given hits (no others, none
  twice), best first, each with its new score as ``score`` and in
  ``stage_scores[reranker.stage]``, the earlier stages' scores kept;
* ``top_n`` (the argument, else the reranker's own) keeps the best that many; the input hits
  and list are never mutated; no hits give no hits;
* scores are deterministic and, for a pointwise reranker (``pointwise = True``), do not depend on
  where a hit stands in the list; hits with equal scores keep their incoming order (the twins).

Example — a third-party reranker's test module::

    import pytest

    from mmrag.testing.conformance.reranker import RerankerConformance
    from my_package.reranker import MyReranker


    class TestMyReranker(RerankerConformance):
        @pytest.fixture(scope="class")
        @classmethod
        def reranker(cls):
            return MyReranker("my-org/my-reranker", device="cpu", batch_size=4)

mmrag runs the suite on its MaxSim and MonoQwen2-VL rerankers
(``tests/integration/rerankers/test_conformance_rerankers.py``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from mmrag.embedders.base import Query
from mmrag.rerankers.base import RerankContext, Reranker
from mmrag.testing.media import text_frame
from mmrag.types import Hit, Item, Modality

__all__ = ["RerankCase", "RerankerConformance", "default_case", "page_hits"]

QUERY = "How much did revenue grow in 2024?"
PAGE_TEXTS = ("Revenue grew 12%", "Installed 1,240 systems", "Board of directors", "Safety report")


@dataclass(frozen=True)
class RerankCase:
    """What to rerank: ``query``, ``hits`` (best first, from earlier stages), ``context``.

    ``twins``: the ids of two hits showing the same page (image and text), so they must score
    the same, the first earlier in ``hits``; ``None`` when the case has none (the tie check is
    then skipped).
    """

    query: Query
    hits: list[Hit]
    context: RerankContext | None = None
    twins: tuple[str, str] | None = None


def page_hits(images: Sequence, *, source: str = "report.pdf") -> list[Hit]:
    """Hits on pages 1…n of ``source`` showing ``images``, with a retrieval score (``full``)
    that falls with the page number."""
    hits = []
    for page, image in enumerate(images, start=1):
        item = Item(
            source=source,
            source_sha256="ab" * 32,
            modality=Modality.PDF_PAGE,
            page=page,
            image_loader=lambda image=image: image,
        )
        score = 1.0 / page
        hits.append(Hit(id=item.id, score=score, item=item, stage_scores={"full": score}))
    return hits


def default_case() -> RerankCase:
    """A text query and five page hits with images; the last is a twin of the first."""
    images = [text_frame(text, (100 + 20 * i, 80)) for i, text in enumerate(PAGE_TEXTS)]
    hits = page_hits([*images, images[0]])
    return RerankCase(Query(text=QUERY), hits, twins=(hits[0].id, hits[-1].id))


def _snapshot(hits: Sequence[Hit]) -> list[tuple]:
    return [(h.id, h.score, dict(h.stage_scores), h.item) for h in hits]


class RerankerConformance:
    """Behaviour every reranker must have; subclass it and override the ``reranker`` fixture
    (see the module docstring for an example and the list of checks)."""

    #: Tolerance of "the same score" (repeat runs, another position in the list).
    atol: float = 1e-5
    #: Each hit's score depends on the query and that hit only (not on the other hits).
    pointwise: bool = True
    #: The case's twins get exactly the same score (set ``False`` for a reranker whose batched
    #: arithmetic can differ in the last bits; the tie's order is then checked only when the
    #: scores happen to be equal).
    exact_ties: bool = True

    # -- fixtures -----------------------------------------------------------------------------

    @pytest.fixture
    def reranker(self) -> Reranker:
        """The reranker under test. Override it in the subclass (see the module docstring)."""
        pytest.fail(
            f"{type(self).__name__} must override the `reranker` fixture with the reranker "
            "under test",
            pytrace=False,
        )

    @pytest.fixture
    def case(self) -> RerankCase:
        """What to rerank: see :func:`default_case`."""
        return default_case()

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def rerank(reranker: Reranker, case: RerankCase, hits=None, **kwargs) -> list[Hit]:
        """``reranker.rerank`` on the case (or on ``hits``)."""
        hits = case.hits if hits is None else hits
        return reranker.rerank(case.query, hits, context=case.context, **kwargs)

    # -- checks -------------------------------------------------------------------------------

    def test_follows_the_reranker_protocol(self, reranker):
        assert isinstance(reranker, Reranker)
        assert isinstance(reranker.stage, str) and reranker.stage.strip()
        assert reranker.top_n is None or (isinstance(reranker.top_n, int) and reranker.top_n > 0)
        data = reranker.to_dict()
        assert set(data) >= {"type", "init_parameters"} and data["type"]
        assert json.loads(json.dumps(data)) == data  # JSON-safe: a config file can hold it

    def test_scores_every_hit_and_sorts_best_first(self, reranker, case):
        given = {h.id: h for h in case.hits}
        out = self.rerank(reranker, case, top_n=len(case.hits))
        assert isinstance(out, list) and all(isinstance(h, Hit) for h in out)
        assert sorted(h.id for h in out) == sorted(given)  # the same hits, none twice
        scores = [h.score for h in out]
        assert all(math.isfinite(s) for s in scores)
        assert scores == sorted(scores, reverse=True)
        for hit in out:
            before = given[hit.id]
            assert hit.item == before.item
            assert hit.stage_scores.get(reranker.stage) == hit.score
            earlier = {k: v for k, v in before.stage_scores.items() if k != reranker.stage}
            assert {k: hit.stage_scores.get(k) for k in earlier} == earlier

    def test_default_top_n_is_the_rerankers(self, reranker, case):
        out = self.rerank(reranker, case)
        want = len(case.hits) if reranker.top_n is None else min(reranker.top_n, len(case.hits))
        assert len(out) == want

    def test_top_n_keeps_the_best(self, reranker, case):
        full = self.rerank(reranker, case, top_n=len(case.hits))
        best = self.rerank(reranker, case, top_n=2)
        assert [h.id for h in best] == [h.id for h in full[:2]]
        assert [h.score for h in best] == pytest.approx([h.score for h in full[:2]], abs=self.atol)
        assert len(self.rerank(reranker, case, top_n=len(case.hits) + 5)) == len(case.hits)

    def test_inputs_are_not_mutated(self, reranker, case):
        hits = list(case.hits)
        before = _snapshot(hits)
        out = self.rerank(reranker, case, hits=hits, top_n=len(hits))
        assert _snapshot(hits) == before
        assert [id(h) for h in hits] == [id(h) for h in case.hits]
        assert not any(new is old for new in out for old in hits)  # new Hit objects
        for new in out:
            old = next(h for h in hits if h.id == new.id)
            assert new.stage_scores is not old.stage_scores

    def test_no_hits_give_no_hits(self, reranker, case):
        assert self.rerank(reranker, case, hits=[]) == []
        assert self.rerank(reranker, case, hits=[], top_n=3) == []

    def test_scores_are_deterministic(self, reranker, case):
        first = self.rerank(reranker, case, top_n=len(case.hits))
        second = self.rerank(reranker, case, top_n=len(case.hits))
        assert [h.id for h in first] == [h.id for h in second]
        assert [h.score for h in second] == pytest.approx([h.score for h in first], abs=self.atol)

    def test_a_score_does_not_depend_on_the_position(self, reranker, case):
        if not self.pointwise:
            pytest.skip(f"{type(self).__name__}.pointwise is False")
        forward = {h.id: h.score for h in self.rerank(reranker, case, top_n=len(case.hits))}
        backward = self.rerank(reranker, case, hits=case.hits[::-1], top_n=len(case.hits))
        assert {h.id for h in backward} == set(forward)
        for hit in backward:
            assert hit.score == pytest.approx(forward[hit.id], abs=self.atol), hit.id

    def test_equal_scores_keep_the_incoming_order(self, reranker, case):
        if case.twins is None:
            pytest.skip("the case has no twins (two hits with the same content)")
        first, second = case.twins
        out = self.rerank(reranker, case, top_n=len(case.hits))
        scores = {h.id: h.score for h in out}
        order = [h.id for h in out]
        assert {first, second} <= set(scores), "both twins must come back"
        if not self.exact_ties:
            assert scores[first] == pytest.approx(scores[second], abs=self.atol)
            if scores[first] != scores[second]:
                return  # not a tie after all: the order is the scores' (checked elsewhere)
        assert scores[first] == scores[second]
        assert order.index(first) < order.index(second)  # a tie keeps the incoming order
