"""The conformance suites themselves: a third party's toy implementations pass them, broken ones
fail the check that names their fault, and ``import mmrag`` never loads them (or pytest).

The toys are small NumPy stand-ins written only against the public contracts, as a third-party
package would write them; no model is loaded.
"""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import importlib
import inspect
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pytest

from mmrag.embedders.base import Query
from mmrag.generators.base import cited_hits
from mmrag.rerankers.base import rescore
from mmrag.testing.conformance.embedder import EmbedderConformance, sample_documents
from mmrag.testing.conformance.generator import GeneratorConformance, context_hits
from mmrag.testing.conformance.reranker import RerankerConformance, default_case
from mmrag.types import Answer, Embedding, Hit

pytestmark = pytest.mark.unit


# -- toy implementations (what a third party writes) ---------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x)).astype(np.float32)


class ToyEmbedder:
    """Single vectors: a fixed projection of an image's 8 x 8 grey thumbnail, or of a text's
    hash; a text + image query is the normalised sum."""

    kind = "single"
    dim = 8

    def __init__(self, batch_size: int = 2) -> None:
        self.batch_size = batch_size
        self._projection = np.random.default_rng(0).standard_normal((64, self.dim))

    @property
    def id(self) -> str:
        return "toy:projection@1"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "toy", "init_parameters": {"batch_size": self.batch_size}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToyEmbedder:
        return cls(**data["init_parameters"])

    def _image(self, image: Any) -> np.ndarray:
        pixels = np.asarray(image.convert("L").resize((8, 8)), dtype=np.float64) / 255.0
        return self._projection.T @ (pixels.reshape(-1) - 0.5)  # (dim,)

    def _text(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def _embed_batch(self, vectors: list[np.ndarray]) -> list[Embedding]:
        return [Embedding(dense=_unit(v)) for v in vectors]

    def embed_images(self, images: Iterable[Any]) -> list[Embedding]:
        return self._embed_batch([self._image(image) for image in images])

    def embed_documents(self, items: Iterable[Any]) -> list[Embedding]:
        return self.embed_images(item.load_image() for item in items)

    def embed_queries(self, queries: Sequence[Any]) -> list[Embedding]:
        vectors = []
        for query in map(Query.coerce, queries):
            vector = np.zeros(self.dim)
            if query.text is not None:
                vector += _unit(self._text(query.text))
            if query.image is not None:
                vector += _unit(self._image(query.image))
            vectors.append(vector)
        return self._embed_batch(vectors)


class ToyReranker:
    """Scores a page by how bright it is (pointwise; twins tie exactly)."""

    stage = "brightness"

    def __init__(self, top_n: int | None = None) -> None:
        self.top_n = top_n

    def to_dict(self) -> dict[str, Any]:
        return {"type": "toy", "init_parameters": {"top_n": self.top_n}}

    def score(self, hit: Hit) -> float:
        return float(np.asarray(hit.item.load_image().convert("L")).mean()) / 255.0

    def rerank(self, query, hits, *, top_n=None, context=None) -> list[Hit]:
        scores = [self.score(hit) for hit in hits]
        return rescore(hits, scores, stage=self.stage, top_n=top_n or self.top_n)


class ToyGenerator:
    """Cites its first source; streams word by word."""

    def __init__(self, max_images: int = 2) -> None:
        self.max_images = max_images

    def to_dict(self) -> dict[str, Any]:
        return {"type": "toy", "init_parameters": {"max_images": self.max_images}}

    def reply(self, question: str, shown: list[Hit]) -> str:
        return "It grew 12% [1]." if shown else "I cannot find it in the sources."

    def generate(self, question, hits, *, on_token: Callable[[str], None] | None = None):
        shown = list(hits[: self.max_images])
        text = self.reply(question, shown)
        if on_token is not None:
            for piece in text.split(" "):
                on_token(piece + " ")
        usage = {"prompt_tokens": len(question.split()), "completion_tokens": len(text.split())}
        return Answer(text=text, citations=cited_hits(text, shown), sources=shown, usage=usage)


class TestToyEmbedder(EmbedderConformance):
    text_image_queries = True

    @pytest.fixture
    def embedder(self) -> ToyEmbedder:
        return ToyEmbedder()


class TestToyReranker(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ToyReranker:
        return ToyReranker(top_n=3)


class TestToyGenerator(GeneratorConformance):
    @pytest.fixture
    def generator(self) -> ToyGenerator:
        return ToyGenerator()


# -- broken implementations: the suite catches each fault ----------------------------------------


class LeakyBatches(ToyEmbedder):
    """Padding leaks into the vectors: an embedding depends on the rest of its batch."""

    def _embed_batch(self, vectors):
        return super()._embed_batch([v + 0.05 * len(vectors) for v in vectors])


class Unnormalised(ToyEmbedder):
    def _embed_batch(self, vectors):
        return [Embedding(dense=(3 * _unit(v)).astype(np.float32)) for v in vectors]


class ReversedOrder(ToyEmbedder):
    def _embed_batch(self, vectors):
        return super()._embed_batch(vectors[::-1])


class WrongDim(ToyEmbedder):
    def _embed_batch(self, vectors):
        return [Embedding(dense=_unit(np.append(v, 1.0))) for v in vectors]


class IdChangesOnUse(ToyEmbedder):
    used = False

    @property
    def id(self) -> str:
        return "toy:projection@2" if self.used else "toy:projection@1"

    def embed_documents(self, items):
        self.used = True
        return super().embed_documents(items)


class EmptyNotEmpty(ToyEmbedder):
    def embed_queries(self, queries):
        return super().embed_queries(list(queries) or ["filler"])


class LossyRoundTrip(ToyEmbedder):
    def __init__(self, batch_size: int = 5) -> None:
        super().__init__(batch_size)

    @property
    def id(self) -> str:
        return f"toy:projection@1#{self.batch_size}"

    def to_dict(self):  # forgets batch_size, which is part of the id
        return {"type": "toy", "init_parameters": {}}

    @classmethod
    def from_dict(cls, data):
        return cls(**{"batch_size": 1, **data["init_parameters"]})


class MutatesHits(ToyReranker):
    def rerank(self, query, hits, *, top_n=None, context=None):
        for hit in hits:
            hit.stage_scores[self.stage] = self.score(hit)  # writes into the caller's hits
        return super().rerank(query, hits, top_n=top_n, context=context)


class IgnoresTopN(ToyReranker):
    def rerank(self, query, hits, *, top_n=None, context=None):
        return super().rerank(query, hits, top_n=None, context=context)


class IgnoresItsOwnTopN(ToyReranker):
    def rerank(self, query, hits, *, top_n=None, context=None):
        return rescore(hits, [self.score(h) for h in hits], stage=self.stage, top_n=top_n)


class UnstableTies(ToyReranker):
    def rerank(self, query, hits, *, top_n=None, context=None):
        ranked = super().rerank(query, hits[::-1], top_n=len(hits), context=context)
        return ranked[: top_n or self.top_n]


class ForgetsEarlierStages(ToyReranker):
    def rerank(self, query, hits, *, top_n=None, context=None):
        fresh = [dataclasses.replace(h, stage_scores={}) for h in hits]
        return super().rerank(query, fresh, top_n=top_n, context=context)


class RecordsNoStageScore(ToyReranker):
    def rerank(self, query, hits, *, top_n=None, context=None):
        out = super().rerank(query, hits, top_n=top_n, context=context)
        return [dataclasses.replace(h, stage_scores={}) for h in out]


class CitesAForeignHit(ToyGenerator):
    def generate(self, question, hits, *, on_token=None):
        answer = super().generate(question, hits, on_token=on_token)
        return dataclasses.replace(answer, citations=[*answer.citations, *context_hits()[2:]])


class SourcesOutOfOrder(ToyGenerator):
    def generate(self, question, hits, *, on_token=None):
        answer = super().generate(question, hits, on_token=on_token)
        return dataclasses.replace(answer, sources=answer.sources[::-1])


class StreamsOtherText(ToyGenerator):
    def generate(self, question, hits, *, on_token=None):
        if on_token is not None:
            on_token("Something else.")
        return super().generate(question, hits)


class NoAnswerWithoutHits(ToyGenerator):
    def reply(self, question, shown):
        return super().reply(question, shown) if shown else ""


class CitationsIgnoreMarkers(ToyGenerator):
    def generate(self, question, hits, *, on_token=None):
        answer = super().generate(question, hits, on_token=on_token)
        return dataclasses.replace(answer, citations=list(answer.sources))


EMBEDDER_FAULTS = [
    (LeakyBatches, "test_document_batch_equals_one_at_a_time"),
    (LeakyBatches, "test_query_batch_equals_one_at_a_time"),
    (Unnormalised, "test_documents_give_one_embedding_each"),
    (ReversedOrder, "test_document_batch_equals_one_at_a_time"),
    (WrongDim, "test_documents_give_one_embedding_each"),
    (IdChangesOnUse, "test_id_is_stable_as_the_embedder_is_used"),
    (EmptyNotEmpty, "test_empty_input_gives_empty_output"),
    (LossyRoundTrip, "test_serialisation_round_trip_keeps_the_id"),
]
RERANKER_FAULTS = [
    (MutatesHits, "test_inputs_are_not_mutated"),
    (IgnoresTopN, "test_top_n_keeps_the_best"),
    (IgnoresItsOwnTopN, "test_default_top_n_is_the_rerankers"),
    (UnstableTies, "test_equal_scores_keep_the_incoming_order"),
    (ForgetsEarlierStages, "test_scores_every_hit_and_sorts_best_first"),
    (RecordsNoStageScore, "test_scores_every_hit_and_sorts_best_first"),
]
GENERATOR_FAULTS = [
    (CitesAForeignHit, "test_answers_citing_the_hits_it_was_shown"),
    (SourcesOutOfOrder, "test_answers_citing_the_hits_it_was_shown"),
    (StreamsOtherText, "test_streaming_gives_the_same_text"),
    (NoAnswerWithoutHits, "test_no_hits_still_answer"),
    (CitationsIgnoreMarkers, "test_answers_citing_the_hits_it_was_shown"),
]


def _arguments(test: Callable[..., Any], available: dict[str, Any]) -> dict[str, Any]:
    """The fixture values a suite's (bound) test method asks for."""
    return {name: available[name] for name in inspect.signature(test).parameters}


@pytest.mark.parametrize(("broken", "check"), EMBEDDER_FAULTS)
def test_the_embedder_suite_catches(broken, check):
    test = getattr(EmbedderConformance(), check)
    args = _arguments(test, {"embedder": broken(), "documents": sample_documents()})
    with pytest.raises(AssertionError):
        test(**args)
    healthy = getattr(EmbedderConformance(), check)
    healthy(**_arguments(healthy, {"embedder": ToyEmbedder(), "documents": sample_documents()}))


@pytest.mark.parametrize(("broken", "check"), RERANKER_FAULTS)
def test_the_reranker_suite_catches(broken, check):
    test = getattr(RerankerConformance(), check)
    with pytest.raises(AssertionError):
        test(**_arguments(test, {"reranker": broken(top_n=3), "case": default_case()}))
    healthy = getattr(RerankerConformance(), check)
    healthy(**_arguments(healthy, {"reranker": ToyReranker(top_n=3), "case": default_case()}))


@pytest.mark.parametrize(("broken", "check"), GENERATOR_FAULTS)
def test_the_generator_suite_catches(broken, check):
    test = getattr(GeneratorConformance(), check)
    with pytest.raises(AssertionError):
        test(**_arguments(test, {"generator": broken(), "hits": context_hits()}))
    healthy = getattr(GeneratorConformance(), check)
    healthy(**_arguments(healthy, {"generator": ToyGenerator(), "hits": context_hits()}))


def test_a_subclass_that_overrides_no_fixture_is_told_which(tmp_path):
    module = tmp_path / "test_forgot.py"
    module.write_text(
        "from mmrag.testing.conformance.embedder import EmbedderConformance\n\n"
        "class TestForgot(EmbedderConformance):\n    pass\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(module), "-q", "-p", "no:cacheprovider", "-x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "TestForgot must override the `embedder` fixture" in result.stdout


# -- packaging -----------------------------------------------------------------------------------


def test_import_mmrag_loads_neither_the_suites_nor_pytest():
    code = (
        "import sys, mmrag, mmrag.testing; "
        "print(sorted(m for m in sys.modules if m == 'pytest' or '.conformance' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["store", "embedder", "reranker", "generator", "corpus"])
def test_the_suites_asserts_are_rewritten_by_pytest(module):
    # A failing check must show the values it compared, as in a test module.
    loaded = importlib.import_module(f"mmrag.testing.conformance.{module}")
    assert type(loaded.__loader__).__name__ == "AssertionRewritingHook"


@pytest.mark.parametrize("module", ["corpus", "generator"])
def test_docstring_examples(module):
    loaded = importlib.import_module(f"mmrag.testing.conformance.{module}")
    result = doctest.testmod(loaded, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_default_rerank_case_has_distinct_pages_and_one_tie():
    # The order checks bite only if the pages score differently and the twins the same.
    case = default_case()
    scores = [ToyReranker().score(hit) for hit in case.hits]
    assert len(set(scores[:4])) == 4 and scores[0] == scores[4]
    assert case.twins == (case.hits[0].id, case.hits[4].id)
