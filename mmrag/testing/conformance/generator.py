"""The generator conformance suite: what every :class:`~mmrag.generators.base.Generator` does.

:class:`GeneratorConformance` is a pytest base class. A generator subclasses it in its own tests
and overrides one fixture, ``generator`` (a fake on the far side of a network boundary is fine:
a fake chat model, a stub server). The ``hits`` fixture gives the context: a PDF page with a
text layer, a video frame and a photo, each with its image. The checks:

* ``to_dict`` gives a JSON-safe ``{"type", "init_parameters"}``;
* ``generate`` returns an :class:`~mmrag.types.Answer` with non-empty text; ``sources`` are
  hits it was given (in their order, none twice); ``citations`` are the sources the text cites
  as ``[n]`` (``sources[n - 1]``), first mention first, or every source when it cites none;
  ``usage`` counts tokens as non-negative ints;
* the hits and their list are not mutated;
* with ``on_token`` (``streaming = True``) the pieces, joined, are the answer's text, and
  (``deterministic = True``) the same answer as without streaming;
* with no hits it still answers, with no sources and no citations.

Example — a third-party generator's test module::

    import pytest

    from mmrag.testing.conformance.generator import GeneratorConformance
    from my_package.generator import MyGenerator


    class TestMyGenerator(GeneratorConformance):
        deterministic = False  # it samples

        @pytest.fixture
        def generator(self):
            return MyGenerator(endpoint="http://localhost:8000", max_images=2)

mmrag runs the suite on its LangChain generator with langchain-core's fake chat models and on
its transformers generator with a tiny Idefics3
(``tests/integration/generators/test_conformance_generators.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

import pytest

from mmrag.generators.base import Generator
from mmrag.testing.media import text_frame
from mmrag.types import Answer, Hit, Item, Modality

__all__ = ["GeneratorConformance", "context_hits"]

QUESTION = "How much did revenue grow in 2024?"
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def context_hits() -> list[Hit]:
    """Three hits with images: a PDF page with a text layer, a video frame and a photo."""
    page = Item(
        source="report.pdf",
        source_sha256="ab" * 32,
        modality=Modality.PDF_PAGE,
        page=2,
        text="Revenue grew 12% in 2024.",
        image_loader=lambda: text_frame("Revenue +12%", (200, 120)),
    )
    frame = Item(
        source="update.mp4",
        source_sha256="cd" * 32,
        modality=Modality.VIDEO_FRAME,
        frame_index=96,
        timestamp_s=4.0,
        image_loader=lambda: text_frame("Southwest 1,240", (160, 90)),
    )
    photo = Item(
        source="roof.jpg",
        source_sha256="ef" * 32,
        modality=Modality.IMAGE,
        image_loader=lambda: text_frame("roof", (90, 120)),
    )
    items = (page, frame, photo)
    return [Hit(id=i.id, score=1.0 - n / 10, item=i) for n, i in enumerate(items)]


def cited_numbers(text: str) -> list[int]:
    """The source numbers ``text`` cites as ``[n]`` or ``[n, m]``, first mention first.

    Example:
        >>> cited_numbers("grew [2], see [1, 2] and [3]")
        [2, 1, 3]
    """
    numbers: list[int] = []
    for match in _MARKER.finditer(text):
        for number in match.group(1).split(","):
            if int(number) not in numbers:
                numbers.append(int(number))
    return numbers


def _snapshot(hits: Sequence[Hit]) -> list[tuple]:
    return [(h.id, h.score, dict(h.stage_scores), h.item) for h in hits]


class GeneratorConformance:
    """Behaviour every generator must have; subclass it and override the ``generator`` fixture
    (see the module docstring for an example and the list of checks)."""

    #: ``generate(..., on_token=...)`` streams the text piece by piece.
    streaming: bool = True
    #: The same question and hits give the same answer (greedy decoding, a scripted fake).
    deterministic: bool = True

    # -- fixtures -----------------------------------------------------------------------------

    @pytest.fixture
    def generator(self) -> Generator:
        """The generator under test. Override it in the subclass (see the module docstring)."""
        pytest.fail(
            f"{type(self).__name__} must override the `generator` fixture with the generator "
            "under test",
            pytrace=False,
        )

    @pytest.fixture
    def hits(self) -> list[Hit]:
        """The context: see :func:`context_hits`."""
        return context_hits()

    # -- checks -------------------------------------------------------------------------------

    def check_answer(self, answer: Answer, hits: Sequence[Hit]) -> None:
        """``answer`` is well formed for a question over ``hits`` (see the module docstring)."""
        assert isinstance(answer, Answer)
        assert isinstance(answer.text, str) and answer.text.strip()
        given = [h.id for h in hits]
        shown = [h.id for h in answer.sources]
        assert all(isinstance(h, Hit) for h in answer.sources)
        assert len(set(shown)) == len(shown), "a hit is shown twice"
        assert set(shown) <= set(given), "sources must be hits the generator was given"
        assert shown == [i for i in given if i in shown], "sources keep the hits' order"
        for source in answer.sources:
            assert source == next(h for h in hits if h.id == source.id)
        numbers = [n for n in cited_numbers(answer.text) if 1 <= n <= len(answer.sources)]
        # Citing nothing, the answer returns every source as its evidence.
        want = [answer.sources[n - 1].id for n in numbers] if numbers else shown
        assert [h.id for h in answer.citations] == want
        assert isinstance(answer.usage, Mapping)
        for name, count in answer.usage.items():
            assert isinstance(name, str) and isinstance(count, int) and count >= 0

    def test_follows_the_generator_protocol(self, generator):
        assert isinstance(generator, Generator)
        data = generator.to_dict()
        assert set(data) >= {"type", "init_parameters"} and data["type"]
        assert json.loads(json.dumps(data)) == data  # JSON-safe: a config file can hold it

    def test_answers_citing_the_hits_it_was_shown(self, generator, hits):
        answer = generator.generate(QUESTION, hits)
        self.check_answer(answer, hits)
        assert answer.sources, "the hits were shown to the generator: sources is not empty"

    def test_a_single_hit_is_its_only_source(self, generator, hits):
        answer = generator.generate(QUESTION, hits[:1])
        self.check_answer(answer, hits[:1])
        assert [h.id for h in answer.sources] == [hits[0].id]

    def test_inputs_are_not_mutated(self, generator, hits):
        given = list(hits)
        before = _snapshot(given)
        generator.generate(QUESTION, given)
        assert _snapshot(given) == before
        assert [id(h) for h in given] == [id(h) for h in hits]

    def test_streaming_gives_the_same_text(self, generator, hits):
        if not self.streaming:
            pytest.skip(f"{type(self).__name__}.streaming is False")
        pieces: list[str] = []
        streamed = generator.generate(QUESTION, hits, on_token=pieces.append)
        self.check_answer(streamed, hits)
        assert pieces and all(isinstance(p, str) for p in pieces)
        assert "".join(pieces).strip() == streamed.text
        if self.deterministic:
            plain = generator.generate(QUESTION, hits)
            assert streamed.text == plain.text
            assert [h.id for h in streamed.sources] == [h.id for h in plain.sources]
            assert [h.id for h in streamed.citations] == [h.id for h in plain.citations]

    def test_no_hits_still_answer(self, generator):
        answer = generator.generate(QUESTION, [])
        self.check_answer(answer, [])
        assert answer.sources == [] and answer.citations == []
