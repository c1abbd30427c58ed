"""PDF page labels (the numbers a viewer shows: ``i``, ``ii``, ``A-1`` …) from the label rules.

Computed once per document from PyMuPDF's ``Document.get_page_labels()`` rules, so labelling
2,000 pages does not re-read the document's number tree per page. Letter styles follow the PDF
specification (ISO 32000-1, 12.4.2): ``a`` … ``z``, then ``aa`` … ``zz``, then ``aaa`` ….

Example:
    >>> labels = PageLabels([{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
    ...                      {"startpage": 2, "prefix": "A-", "style": "D", "firstpagenum": 1}])
    >>> [labels.label(i) for i in range(4)]
    ['i', 'ii', 'A-1', 'A-2']
    >>> PageLabels([]).label(0) is None
    True
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PageLabels", "to_letters", "to_roman"]

_ROMAN = (
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
)


def to_roman(number: int) -> str:
    """Upper-case Roman numeral of ``number`` (>= 1)."""
    out = []
    for value, letters in _ROMAN:
        count, number = divmod(number, value)
        out.append(letters * count)
    return "".join(out)


def to_letters(number: int) -> str:
    """Upper-case letter label of ``number`` (>= 1): A..Z, AA..ZZ, AAA.. (PDF style ``A``)."""
    repeat, index = divmod(number - 1, 26)
    return chr(ord("A") + index) * (repeat + 1)


class PageLabels:
    """Maps 0-based page indexes to their label, or ``None`` when the PDF defines no labels."""

    def __init__(self, rules: Sequence[Mapping[str, Any]]) -> None:
        self._rules = sorted(rules, key=lambda rule: int(rule.get("startpage", 0)))
        self._starts = [int(rule.get("startpage", 0)) for rule in self._rules]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def label(self, index: int) -> str | None:
        """The label of page ``index`` (0-based), or ``None`` when no rule covers it."""
        at = bisect.bisect_right(self._starts, index) - 1
        if at < 0:
            return None
        rule = self._rules[at]
        number = index - self._starts[at] + int(rule.get("firstpagenum", 1) or 1)
        style = rule.get("style", "") or ""
        prefix = rule.get("prefix", "") or ""
        if style == "D":
            body = str(number)
        elif style in ("r", "R"):
            body = to_roman(number) if number > 0 else str(number)
            body = body.lower() if style == "r" else body
        elif style in ("a", "A"):
            body = to_letters(number) if number > 0 else str(number)
            body = body.lower() if style == "a" else body
        else:
            body = ""
        return prefix + body
