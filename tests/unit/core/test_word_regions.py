"""Word regions: the boxes where the query's terms are written on a page."""

from __future__ import annotations

import dataclasses

import pymupdf
import pytest

from mmrag.pipeline.word_regions import attach_word_regions, page_words, word_boxes
from mmrag.types import Hit, Item

pytestmark = pytest.mark.unit

LINE = [
    [10, 10, 60, 20, "Revenue"],
    [64, 10, 90, 20, "grew"],
    [94, 10, 110, 20, "12%"],
    [114, 10, 130, 20, "in"],
    [134, 10, 160, 20, "2024."],
]


def test_matching_words_on_a_line_join_one_box_scored_by_the_terms_it_holds():
    words = [*LINE, [10, 200, 60, 210, "revenues"], [300, 10, 340, 20, "2024"]]
    boxes = word_boxes("How much did revenue grow in 2024?", words)
    assert [b.kind for b in boxes] == ["words"] * len(boxes)
    best = boxes[0]
    # "revenue" and "2024" on the first line (stop words and "grew" vs "grow" do not match)
    assert (best.x0, best.y0, best.x1, best.y1) == (10.0, 10.0, 160.0, 20.0)
    assert best.score == pytest.approx(2 / 4)  # revenue, 2024 of {much, revenue, grow, 2024}
    # another line is another box; a word far along the same line too
    rest = {(b.x0, b.y0, b.x1, b.y1) for b in boxes[1:]}
    assert rest == {(10.0, 200.0, 60.0, 210.0), (300.0, 10.0, 340.0, 20.0)}
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)


def test_no_terms_in_common_or_no_query_terms_give_no_boxes():
    assert word_boxes("safety record", LINE) == []
    assert word_boxes("the of and", LINE) == []  # stop words only
    assert word_boxes("revenue", []) == []
    lines = [[10, 10 + 20 * n, 60, 20 + 20 * n, "Revenue"] for n in range(10)]
    assert len(word_boxes("revenue", lines)) == 5  # one box per line, at most five
    assert len(word_boxes("revenue", lines, max_regions=2)) == 2


def test_pdf_text_layer_words_are_read_from_the_source_file(tmp_path):
    path = tmp_path / "report.pdf"
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    page.insert_text((72, 300), "Solar revenue grew 12% in 2024", fontsize=12)
    document.save(path)
    item = Item(
        source=str(path),
        source_sha256="ab" * 32,
        modality="pdf_page",
        page=1,
        text="Solar revenue grew 12% in 2024",
    )
    words = page_words(item)
    assert [w[4] for w in words] == ["Solar", "revenue", "grew", "12%", "in", "2024"]
    hit = Hit(id=item.id, score=1.0, item=item)
    (found,) = attach_word_regions("revenue in 2024", [hit])
    (box,) = found.regions
    assert box.kind == "words" and box.score == 1.0
    assert 100 < box.x0 < 140 and 285 < box.y0 < 300 and box.y1 <= 305  # PDF points
    # a page without a text layer, or a vanished file, has no words (and fails nothing)
    assert page_words(dataclasses.replace(item, text=None)) == []
    assert page_words(dataclasses.replace(item, source=str(tmp_path / "gone.pdf"))) == []
    assert attach_word_regions(None, [hit]) == [hit]


def test_ocr_words_in_the_details_come_first():
    item = Item(
        source="/nowhere/scan.png",
        source_sha256="cd" * 32,
        modality="image",
        details={"words": LINE},
        text="Revenue grew 12% in 2024.",
    )
    assert page_words(item) == LINE
