"""Region citations from the page's words: the boxes where the query's terms are written.

Patch regions (:mod:`mmrag.pipeline.regions`) say where a multi-vector embedder found the match.
Word regions say where the query's *words* stand on the page: the words OCR read (stored in
``Item.details["words"]`` as ``[x0, y0, x1, y1, word]`` in the page's own coordinates), or, for a
PDF page with a text layer, the words PyMuPDF reads from the source file at query time (nothing
extra is stored). A word matches when it shares a term with the query under the BM25 text
channel's own tokenizer (lower case, stemmed, stop words dropped), so what the text channel
found is what gets outlined. Matching words on one line, close in reading order, join one box; a box
scores the share of the query's distinct terms it holds (0..1). They come back as
:class:`~mmrag.types.Region` with ``kind="words"``, after the patch regions, and work for
every embedder (single-vector ones included).

Example:
    >>> from mmrag.pipeline.word_regions import word_boxes
    >>> words = [[10, 10, 60, 20, "Revenue"], [64, 10, 90, 20, "grew"], [94, 10, 110, 20, "12%"],
    ...          [10, 40, 50, 50, "Costs"]]
    >>> [(b.x0, b.x1, b.score) for b in word_boxes("revenue 12%", words)]
    [(10.0, 110.0, 1.0)]
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmrag.types import Hit, Item, Modality, Region

__all__ = ["attach_word_regions", "page_words", "word_boxes"]

logger = logging.getLogger(__name__)

#: At most this many word boxes per hit.
MAX_WORD_REGIONS = 5

#: Matching words on one line with at most this many other words between them join one box.
_MAX_WORDS_BETWEEN = 3


@functools.lru_cache(maxsize=65536)
def _terms(text: str) -> frozenset[int]:
    from mmrag.store.text import bm25_query

    return frozenset(bm25_query(text).indices) if text.strip() else frozenset()


def word_boxes(
    query: str, words: Sequence[Sequence[Any]], *, max_regions: int = MAX_WORD_REGIONS
) -> list[Region]:
    """Boxes of the ``words`` (``[x0, y0, x1, y1, word]``, in reading order) that hold the
    query's terms, best first: matching words on one line with at most three other words
    between them join one box, scored by the share of the query's distinct terms inside it."""
    wanted = _terms(query)
    if not wanted:
        return []
    matched = []
    for index, word in enumerate(words):
        x0, y0, x1, y1, text = (*map(float, word[:4]), str(word[4]))
        terms = _terms(text) & wanted
        if terms and x1 > x0 and y1 > y0:
            matched.append((index, x0, y0, x1, y1, terms))
    groups: list[list[Any]] = []  # [x0, y0, x1, y1, terms, last word index]
    for index, x0, y0, x1, y1, terms in matched:  # in reading order
        group = groups[-1] if groups else None
        if group is not None and index - group[5] <= _MAX_WORDS_BETWEEN + 1:
            centre, group_centre = (y0 + y1) / 2, (group[1] + group[3]) / 2
            if abs(centre - group_centre) <= (y1 - y0) / 2:  # the same line
                group[:4] = [min(group[0], x0), min(group[1], y0), max(group[2], x1),
                             max(group[3], y1)]  # fmt: skip
                group[4], group[5] = group[4] | terms, index
                continue
        groups.append([x0, y0, x1, y1, terms, index])
    boxes = [
        Region(
            x0=round(g[0], 2),
            y0=round(g[1], 2),
            x1=round(g[2], 2),
            y1=round(g[3], 2),
            score=round(len(g[4]) / len(wanted), 4),
            kind="words",
        )
        for g in groups
    ]
    boxes.sort(key=lambda r: (-r.score, r.y0, r.x0))
    return boxes[:max_regions]


def page_words(item: Item) -> list[list[Any]]:
    """The words of ``item`` with their boxes: OCR's (``details["words"]``), else a PDF page's
    text layer read from its source file (when that file is still there), else none."""
    stored = (item.details or {}).get("words")
    if stored:
        return list(stored)
    if item.modality is not Modality.PDF_PAGE or not item.page or not (item.text or "").strip():
        return []
    path = Path(item.source)
    if not path.is_file():
        return []
    try:
        import pymupdf

        with pymupdf.open(path) as document:
            if item.page > document.page_count:
                return []
            return [list(w[:5]) for w in document[item.page - 1].get_text("words")]
    except Exception as exc:  # an extra: a changed or unreadable file just gives no word boxes
        logger.debug("no word boxes for %s p.%s: %s", path, item.page, exc)
        return []


def attach_word_regions(query: str | None, hits: Sequence[Hit]) -> list[Hit]:
    """``hits`` with their word regions appended to :attr:`~mmrag.types.Hit.regions`.

    A box repeated at the same place with the same terms on several of the hits' pages of one
    source (a running header or footer such as "ACME Solar · Annual report 2024") is a page
    template, not evidence: it is left out.
    """
    if not query or not query.strip():
        return list(hits)
    found = [word_boxes(query, page_words(hit.item), max_regions=50) for hit in hits]

    def place(hit: Hit, box: Region) -> tuple[Any, ...]:
        return (hit.item.source, round(box.y0), round(box.x0), box.score)

    seen: dict[tuple[Any, ...], set[str]] = {}
    for hit, boxes in zip(hits, found, strict=True):
        for box in boxes:
            seen.setdefault(place(hit, box), set()).add(hit.id)
    out = []
    for hit, boxes in zip(hits, found, strict=True):
        kept = [b for b in boxes if len(seen[place(hit, b)]) < 2][:MAX_WORD_REGIONS]
        out.append(dataclasses.replace(hit, regions=(*hit.regions, *kept)) if kept else hit)
    return out
