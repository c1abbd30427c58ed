"""The embedder conformance suite: what every :class:`~mmrag.embedders.base.Embedder` does.

:class:`EmbedderConformance` is a pytest base class. An embedder subclasses it in its own tests
and overrides one fixture, ``embedder``, returning the embedder under test (scope it to the
class so the model loads once; a ``batch_size`` above 1 lets the batching checks bite). The
checks:

* ``kind`` is ``single`` or ``multi``, ``dim`` a positive int, ``id`` a non-empty string that
  does not change as the embedder is used (indexes record it);
* ``embed_documents`` (any iterable of :class:`~mmrag.types.Item`) and ``embed_queries`` return
  one :class:`~mmrag.types.Embedding` per input, in input order, of the declared kind and
  dimension: dense ``(dim,)``, or multi ``(n, dim)`` with ``n >= 1`` and at least one stored
  (``mask``-ed) vector; every value finite; different inputs give different embeddings;
* the same input gives the same embedding, and a batch gives what one-at-a-time gives (within
  ``atol``): padding in a batch must not leak into an embedding;
* every vector has unit L2 norm (``normalized = True``, as every mmrag family documents; MaxSim
  and MUVERA scores are dot products);
* image queries (``image_queries = True``) and text + image queries
  (``text_image_queries = True``) give one embedding each, like text queries;
* empty input gives empty output;
* ``embed_images`` (where offered) equals ``embed_documents`` of the same images;
* ``to_dict`` / ``from_dict`` (where offered) is JSON-safe and rebuilds an embedder with the
  same ``id``, ``kind`` and ``dim``.

Example — a third-party embedder's test module::

    import pytest

    from mmrag.testing.conformance.embedder import EmbedderConformance
    from my_package.embedder import MyEmbedder


    class TestMyEmbedder(EmbedderConformance):
        image_queries = False  # it embeds text queries only

        @pytest.fixture(scope="class")
        @classmethod
        def embedder(cls):
            return MyEmbedder("my-org/my-model", device="cpu", batch_size=4)

mmrag runs the suite on its CLIP, ColPali-family (ColPali, ColQwen2, ColModernVBert), VLM2Vec and
E5-V embedders over the tiny offline models of :mod:`mmrag.testing`
(``tests/integration/embedders/test_conformance_embedders.py``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from mmrag.embedders.base import Embedder, Query
from mmrag.testing.inputs import sample_image
from mmrag.types import Embedding, Item, Modality

__all__ = ["EmbedderConformance", "assert_same_embedding", "sample_documents"]

#: Text queries of different lengths (so a batch needs padding).
TEXT_QUERIES = ("revenue", "what was the total revenue growth in the last fiscal year?", "chart")


def _page(image: Any, page: int) -> Item:
    return Item(
        source="conformance.pdf",
        source_sha256="c0" * 32,
        modality=Modality.PDF_PAGE,
        page=page,
        image_loader=lambda: image,
    )


def sample_documents() -> list[Item]:
    """Three pages of different sizes and aspect ratios, each with its image."""
    images = [sample_image(100, 80, seed=0), sample_image(200, 60, seed=1)]
    images.append(sample_image(40, 130, seed=2))
    return [_page(image, page) for page, image in enumerate(images, start=1)]


def assert_same_embedding(got: Embedding, want: Embedding, atol: float) -> None:
    """``got`` equals ``want``: same kind, shapes, mask and grid, values within ``atol``."""
    assert got.kind == want.kind
    if want.dense is not None:
        np.testing.assert_allclose(got.dense, want.dense, atol=atol)
        return
    assert got.multi.shape == want.multi.shape
    assert got.grid == want.grid
    if want.mask is None:
        assert got.mask is None
    else:
        np.testing.assert_array_equal(got.mask, want.mask)
    np.testing.assert_allclose(got.multi, want.multi, atol=atol)


def _differ(a: Embedding, b: Embedding, atol: float) -> bool:
    x, y = (a.dense, b.dense) if a.dense is not None else (a.multi, b.multi)
    return x.shape != y.shape or not np.allclose(x, y, atol=atol)


class EmbedderConformance:
    """Behaviour every embedder must have; subclass it and override the ``embedder`` fixture
    (see the module docstring for an example and the list of checks)."""

    #: Tolerance of "the same embedding" (repeat runs, batch vs one at a time).
    atol: float = 1e-5
    #: Every vector (a dense vector, or each row of ``multi``) has unit L2 norm.
    normalized: bool = True
    #: ``embed_queries`` takes images (a PIL image or ``Query(image=...)``).
    image_queries: bool = True
    #: ``embed_queries`` takes ``Query(text=..., image=...)`` as one query.
    text_image_queries: bool = False

    # -- fixtures -----------------------------------------------------------------------------

    @pytest.fixture
    def embedder(self) -> Embedder:
        """The embedder under test. Override it in the subclass (see the module docstring)."""
        pytest.fail(
            f"{type(self).__name__} must override the `embedder` fixture with the embedder "
            "under test",
            pytrace=False,
        )

    @pytest.fixture
    def documents(self) -> list[Item]:
        """The pages to embed: see :func:`sample_documents`."""
        return sample_documents()

    # -- checks -------------------------------------------------------------------------------

    def check_embedding(self, embedder: Embedder, embedding: Embedding) -> None:
        """One embedding has the embedder's kind and dimension, the right shape, finite values
        and (when ``normalized``) unit vectors."""
        assert isinstance(embedding, Embedding)
        assert embedding.kind == embedder.kind
        assert embedding.dim == embedder.dim
        if embedding.dense is not None:
            vectors = embedding.dense[None, :]  # (1, dim)
            assert embedding.dense.shape == (embedder.dim,)
        else:
            vectors = embedding.multi  # (n, dim)
            assert vectors.shape[0] >= 1
            assert embedding.visual().shape[0] >= 1, "a multi-vector embedding stores no vectors"
        assert np.isfinite(vectors).all()
        if self.normalized:
            norms = np.linalg.norm(vectors.astype(np.float32), axis=-1)
            np.testing.assert_allclose(
                norms, 1.0, atol=1e-3 if vectors.dtype == np.float16 else 1e-4
            )

    def check_all(
        self, embedder: Embedder, embeddings: Sequence[Embedding], inputs: Sequence[Any]
    ) -> None:
        """One valid embedding per input, each different from the next."""
        assert isinstance(embeddings, list)
        assert len(embeddings) == len(inputs)
        for embedding in embeddings:
            self.check_embedding(embedder, embedding)
        for a, b in itertools.pairwise(embeddings):
            assert _differ(a, b, self.atol), "different inputs gave the same embedding"

    # -- identity -----------------------------------------------------------------------------

    def test_follows_the_embedder_protocol(self, embedder):
        assert isinstance(embedder, Embedder)
        assert embedder.kind in ("single", "multi")
        assert isinstance(embedder.dim, int) and not isinstance(embedder.dim, bool)
        assert embedder.dim > 0
        assert isinstance(embedder.id, str) and embedder.id.strip()

    def test_id_is_stable_as_the_embedder_is_used(self, embedder, documents):
        before = (embedder.id, embedder.kind, embedder.dim)
        embedder.embed_documents(documents[:1])
        embedder.embed_queries([TEXT_QUERIES[0]])
        assert (embedder.id, embedder.kind, embedder.dim) == before

    def test_serialisation_round_trip_keeps_the_id(self, embedder):
        from_dict = getattr(type(embedder), "from_dict", None)
        if not hasattr(embedder, "to_dict") or from_dict is None:
            pytest.skip(f"{type(embedder).__name__} offers no to_dict / from_dict")
        data = embedder.to_dict()
        assert set(data) >= {"type", "init_parameters"}
        assert isinstance(data["type"], str) and data["type"]
        assert json.loads(json.dumps(data)) == data  # JSON-safe: a config file can hold it
        rebuilt = from_dict(data)
        assert type(rebuilt) is type(embedder)
        assert (rebuilt.id, rebuilt.kind, rebuilt.dim) == (embedder.id, embedder.kind, embedder.dim)
        assert rebuilt.to_dict() == data

    # -- documents ----------------------------------------------------------------------------

    def test_documents_give_one_embedding_each(self, embedder, documents):
        self.check_all(embedder, embedder.embed_documents(documents), documents)

    def test_documents_come_back_in_input_order(self, embedder, documents):
        forward = embedder.embed_documents(documents)
        backward = embedder.embed_documents(iter(documents[::-1]))  # any iterable of Items
        for got, want in zip(backward[::-1], forward, strict=True):
            assert_same_embedding(got, want, self.atol)

    def test_document_batch_equals_one_at_a_time(self, embedder, documents):
        together = embedder.embed_documents(documents)
        for document, batched in zip(documents, together, strict=True):
            (alone,) = embedder.embed_documents([document])
            assert_same_embedding(batched, alone, self.atol)

    def test_documents_are_deterministic(self, embedder, documents):
        first = embedder.embed_documents(documents[:2])
        second = embedder.embed_documents(documents[:2])
        for a, b in zip(first, second, strict=True):
            assert_same_embedding(a, b, self.atol)

    def test_embed_images_equals_embed_documents(self, embedder, documents):
        if not callable(getattr(embedder, "embed_images", None)):
            pytest.skip(f"{type(embedder).__name__} offers no embed_images")
        images = [document.load_image() for document in documents]
        from_images = embedder.embed_images(images)
        self.check_all(embedder, from_images, images)
        for got, want in zip(from_images, embedder.embed_documents(documents), strict=True):
            assert_same_embedding(got, want, self.atol)

    # -- queries ------------------------------------------------------------------------------

    def test_text_queries_give_one_embedding_each_in_order(self, embedder):
        forward = embedder.embed_queries(list(TEXT_QUERIES))
        self.check_all(embedder, forward, TEXT_QUERIES)
        backward = embedder.embed_queries([Query(text=t) for t in TEXT_QUERIES[::-1]])
        for got, want in zip(backward[::-1], forward, strict=True):
            assert_same_embedding(got, want, self.atol)

    def test_query_batch_equals_one_at_a_time(self, embedder):
        together = embedder.embed_queries(list(TEXT_QUERIES))
        for text, batched in zip(TEXT_QUERIES, together, strict=True):
            (alone,) = embedder.embed_queries([text])
            assert_same_embedding(batched, alone, self.atol)
        (again,) = embedder.embed_queries([TEXT_QUERIES[1]])
        assert_same_embedding(again, together[1], self.atol)  # deterministic

    def test_image_queries(self, embedder):
        if not self.image_queries:
            pytest.skip(f"{type(self).__name__}.image_queries is False")
        images = [sample_image(90, 70, seed=5), sample_image(60, 120, seed=6)]
        queries = [images[0], Query(image=images[1])]
        together = embedder.embed_queries(queries)
        self.check_all(embedder, together, queries)
        for query, batched in zip(queries, together, strict=True):
            (alone,) = embedder.embed_queries([query])
            assert_same_embedding(batched, alone, self.atol)

    def test_text_and_image_queries(self, embedder):
        if not self.text_image_queries:
            pytest.skip(f"{type(self).__name__}.text_image_queries is False")
        image = sample_image(90, 70, seed=5)
        text, both, image_only = embedder.embed_queries(
            [TEXT_QUERIES[0], Query(text=TEXT_QUERIES[0], image=image), Query(image=image)]
        )
        self.check_embedding(embedder, both)
        assert _differ(both, text, self.atol) and _differ(both, image_only, self.atol)

    # -- edge cases ---------------------------------------------------------------------------

    def test_empty_input_gives_empty_output(self, embedder):
        assert embedder.embed_documents([]) == []
        assert embedder.embed_documents(iter([])) == []
        assert embedder.embed_queries([]) == []
        if callable(getattr(embedder, "embed_images", None)):
            assert embedder.embed_images([]) == []
