"""The extractive answerer: quotes the best-matching sentences of the hits' text, cited.

On the text of the bundled report's pages (as its PDF text layer reads), with the real BM25
tokenizer of the text channel; and the generator conformance suite.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from mmrag.config import GeneratorSpec
from mmrag.errors import ConfigError
from mmrag.generators.extractive import NO_MATCH, ExtractiveGenerator, sentences
from mmrag.testing.conformance.generator import GeneratorConformance
from mmrag.types import Hit, Item

pytestmark = pytest.mark.unit

QUESTION = "How much did ACME Solar's revenue grow in 2024?"
SOURCE = "/data/examples/acme_solar_annual_report_2024.pdf"
HEADER = "ACME Solar - Annual Report 2024"
PAGES = {
    1: "ACME Solar\nAnnual Report 2024\nRevenue up 12% to $48.2 million - 3,150 homes powered\n",
    2: (
        f"2024 in review\n{HEADER}\n"
        "ACME Solar designs, installs and maintains rooftop solar systems with battery storage "
        "for households and\nsmall businesses. 2024 was our strongest year so far.\n"
        "Revenue grew 12% to $48.2 million, up from $43.0 million in 2023. Growth came from "
        "larger systems and\nfrom battery storage, which was added to 38% of new installations "
        "(2023: 27%).\nKey figures\nRevenue\n$48.2M (+12%)\nHomes installed\n3,150\n"
    ),
    3: (
        f"Revenue by quarter\n{HEADER}\n"
        "Quarterly revenue rose through the year and peaked in the third quarter, when the new "
        "battery bundle\nlaunched. Figure 1 shows revenue per quarter in millions of US dollars.\n"
        "$0M\n$5M\n10.1\nQ1\n11.6\nQ2\nRevenue (US$ million)\n"
        "Figure 1: ACME Solar quarterly revenue, 2024. Full-year revenue: $48.2 million.\n"
    ),
    5: (
        f"Outlook for 2025\n{HEADER}\n"
        "For 2025 we target 5,000 installed homes and revenue of $60 million. We will open two "
        "new regional\nwarehouses, in Phoenix and Atlanta, to shorten delivery times.\n"
    ),
}
GREW = "Revenue grew 12% to $48.2 million, up from $43.0 million in 2023."


def page(number: int, text: str | None = None, source: str = SOURCE) -> Item:
    return Item(
        source=source,
        source_sha256="ab" * 32,
        modality="pdf_page",
        page=number,
        text=PAGES[number] if text is None else text,
    )


def hits_for(*numbers: int) -> list[Hit]:
    return [Hit(id=str(n), score=1.0 - i / 10, item=page(n)) for i, n in enumerate(numbers)]


@pytest.mark.parametrize("order", [(3, 2, 1), (2, 3, 1), (5, 3, 1, 2), (2,)])
def test_quotes_the_12_percent_sentence_citing_its_page(order):
    hits = hits_for(*order)
    answer = ExtractiveGenerator().generate(QUESTION, hits)
    first = answer.text.splitlines()[0]
    number = order.index(2) + 1
    assert first == f"“{GREW}” [{number}] acme_solar_annual_report_2024.pdf p.2"
    assert answer.citations[0].item.page == 2
    assert answer.sources == hits
    # every quoted sentence is word for word in the page its marker cites
    for line in answer.text.splitlines():
        quote, _, rest = line[1:].partition("” [")
        cited = answer.sources[int(rest.split("]")[0]) - 1]
        assert quote in " ".join(cited.item.text.split())


def test_words_naming_the_source_and_running_headers_do_not_pick_the_sentence():
    # "ACME Solar … 2024" is in the file name and in every page's header: without leaving those
    # words out, "Figure 1: ACME Solar quarterly revenue, 2024." would match four question words
    answer = ExtractiveGenerator(max_sentences=3, min_relative_score=0.0).generate(
        QUESTION, hits_for(3, 2, 5)
    )
    assert HEADER not in answer.text
    assert answer.text.splitlines()[0].startswith(f"“{GREW}”")
    # a question of nothing but the source's name still matches those words
    named = ExtractiveGenerator(max_sentences=1).generate("ACME Solar", hits_for(3, 2))
    assert named.text != NO_MATCH and "ACME Solar" in named.text


def test_other_questions_find_their_sentence():
    hits = hits_for(1, 2, 3, 5)
    generator = ExtractiveGenerator(max_sentences=1)
    warehouses = generator.generate("Where will the new warehouses open?", hits)
    assert "Phoenix and Atlanta" in warehouses.text and "[4]" in warehouses.text
    assert [h.item.page for h in warehouses.citations] == [5]


def test_nothing_matching_says_so_and_cites_every_page():
    hits = hits_for(2, 3)
    answer = ExtractiveGenerator().generate("quantum chromodynamics lattice", hits)
    assert answer.text == NO_MATCH
    assert answer.citations == hits and answer.sources == hits


def test_pages_without_text_are_noted_and_markers_in_quotes_are_not_citations():
    blank = Hit(id="b", score=1.0, item=page(1, text=""))
    paper = Hit(
        id="p",
        score=0.9,
        item=page(2, text="Revenue grew 12% in 2024 as reported earlier [3]."),
    )
    answer = ExtractiveGenerator().generate(QUESTION, [blank, paper])
    quote = "“Revenue grew 12% in 2024 as reported earlier (3).”"
    assert answer.text == f"{quote} [2] acme_solar_annual_report_2024.pdf p.2"
    assert answer.citations == [paper]
    assert answer.notes and "1 of the 2 pages" in answer.notes[0]


def test_sentences_join_wrapped_lines_and_keep_labels_apart():
    split = sentences(PAGES[2])
    assert GREW in split
    assert "2024 was our strongest year so far." in split
    assert "Key figures" in split and "$48.2M (+12%)" in split


def test_built_from_config_and_checked():
    generator = GeneratorSpec(type="extractive", init_parameters={"max_sentences": 1}).build()
    assert isinstance(generator, ExtractiveGenerator)
    assert generator.to_dict()["init_parameters"]["max_sentences"] == 1
    for bad in ({"max_sentences": 0}, {"min_relative_score": 2.0}, {"max_pages": 0}):
        with pytest.raises(ConfigError):
            ExtractiveGenerator(**bad)


def test_docstring_examples():
    module = importlib.import_module("mmrag.generators.extractive")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


class TestExtractiveConformance(GeneratorConformance):
    """The conformance suite (its context: a PDF page with text, a video frame, a photo)."""

    @pytest.fixture
    def generator(self) -> ExtractiveGenerator:
        return ExtractiveGenerator()
