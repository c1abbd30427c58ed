"""An extractive answerer: the retrieved pages' sentences that best match the question, quoted.

No model: each hit's text (its PDF text layer or OCR, ``Item.text``) is split into sentences,
every sentence is scored against the question with BM25 (the text channel's own tokenizer,
:mod:`mmrag.store.text`: stemming and stop words; IDF over the sentences of the hits shown),
and the best ones are quoted with the citation of the page they come from::

    “Revenue grew 12% to $48.2 million, up from $43.0 million in 2023.” [1] report.pdf p.2

Two refinements keep the quote on topic. Question words that name the source itself (its file
name or title, e.g. *ACME Solar* and *2024* in ``acme_solar_annual_report_2024.pdf``) are in
every passage's context, so they do not tell one sentence of it from another and are left out
(unless nothing else matches). A question word also matches a close variant (*grow* ~ *grew*,
*growth*) at half weight. Lines repeated on several pages (running headers) and fragments
under ``min_words`` words (labels, table cells) are not quoted.

It answers only with words the pages contain, so it is what the offline quickstart shows when
no generator model is reachable, and a cheap, model-free generator for anyone
(``[generator] type = "extractive"``).

Example:
    >>> from mmrag.generators.extractive import ExtractiveGenerator
    >>> from mmrag.types import Hit, Item
    >>> page = Item(source="report.pdf", source_sha256="ab" * 32, modality="pdf_page", page=2,
    ...             text="Costs fell 3% in 2024. Revenue grew 12% to $48.2 million in 2024.")
    >>> answer = ExtractiveGenerator().generate("How much did revenue grow?", [Hit("1", 1.0, page)])
    >>> print(answer.text)
    “Revenue grew 12% to $48.2 million in 2024.” [1] report.pdf p.2
    >>> [hit.citation() for hit in answer.citations]
    ['report.pdf p.2']
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError

if TYPE_CHECKING:
    from mmrag.types import Answer, Hit

__all__ = ["NO_MATCH", "ExtractiveGenerator", "sentences"]

#: ``Answer.text`` when no sentence of the pages shares a word with the question.
NO_MATCH = (
    "No sentence of the retrieved pages matches the question's words, so there is nothing to "
    "quote; the best-ranked pages are listed as sources."
)

_WORD = re.compile(r"[^\W_]+(?:['’.,%-][^\W_]+)*%?")
_TERMINAL = re.compile(r"[.!?…]['\"’”)\]]*$")
_SPLIT = re.compile(r"(?<=[.!?…])\s+(?=[\"'“‘(\[$€£]?[A-Z0-9])")
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_FUZZY_WEIGHT = 0.5
_FUZZY_MIN_CHARS = 4


@functools.lru_cache(maxsize=65536)
def _terms(word: str) -> tuple[int, ...]:
    """The text channel's term ids of one word (its stem; none for a stop word)."""
    from mmrag.store.text import bm25_query

    return bm25_query(word).indices


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _tokens(text: str) -> list[tuple[str, int]]:
    """``(word, term id)`` pairs of ``text``, stop words left out."""
    return [(word, term) for word in _words(text) for term in _terms(word)]


def sentences(text: str) -> list[str]:
    """The sentences of a page's text, whitespace collapsed.

    Lines are joined into paragraphs where a line wraps (it is long, at least 60% of the page's
    longest line, and does not end a sentence); short lines (headings, labels, table cells)
    stand alone. Paragraphs are split after ``.``, ``!``, ``?`` followed by a capital or digit.

    Example:
        >>> from mmrag.generators.extractive import sentences
        >>> sentences("Key figures\\nRevenue grew 12% to $48.2 million, up from $43.0 million in\\n"
        ...           "2023. Margins improved.")
        ['Key figures', 'Revenue grew 12% to $48.2 million, up from $43.0 million in 2023.', \
'Margins improved.']
    """
    lines = [" ".join(line.split()) for line in text.splitlines()]
    longest = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        wraps = bool(line) and len(line) >= 0.6 * longest and len(line.split()) >= 6
        if current and (not wraps or _TERMINAL.search(line)):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return [s.strip() for p in paragraphs for s in _SPLIT.split(p) if s.strip()]


def _close(a: str, b: str) -> bool:
    """Whether two different words are close variants: one a prefix of the other, or one edit
    apart (both at least 4 characters, letters only)."""
    if min(len(a), len(b)) < _FUZZY_MIN_CHARS or not (a.isalpha() and b.isalpha()):
        return False
    if a.startswith(b) or b.startswith(a):
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


@dataclass
class _Sentence:
    text: str
    hit: int  # index into the hits shown
    tokens: list[tuple[str, int]]


class ExtractiveGenerator:
    """Answer by quoting the retrieved pages' best-matching sentences, with their citations.

    ``max_sentences``: at most this many sentences are quoted, each scoring at least
    ``min_relative_score`` × the best one's; ``max_pages``: at most this many hits are read (the
    best first; default all); ``min_words``: shorter fragments are not quoted (unless nothing
    longer matches); ``max_chars``: a longer sentence is cut with ``…``; ``k1``, ``b``: BM25.

    Example:
        >>> from mmrag.generators.extractive import ExtractiveGenerator
        >>> gen = ExtractiveGenerator(max_sentences=1)
        >>> gen.to_dict()["type"], gen.to_dict()["init_parameters"]["max_sentences"]
        ('extractive', 1)
    """

    type_name = "extractive"
    #: nothing to load (``mmrag.pipeline.startup.load_models`` skips it)
    is_loaded = True

    def __init__(
        self,
        *,
        max_sentences: int = 2,
        min_relative_score: float = 0.5,
        max_pages: int | None = None,
        min_words: int = 4,
        max_chars: int = 400,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        if max_sentences < 1:
            raise ConfigError(f"max_sentences must be >= 1, got {max_sentences}")
        if not 0.0 <= min_relative_score <= 1.0:
            raise ConfigError(f"min_relative_score must be in [0, 1], got {min_relative_score}")
        if max_pages is not None and max_pages < 1:
            raise ConfigError(f"max_pages must be >= 1, got {max_pages}")
        if max_chars < 20:
            raise ConfigError(f"max_chars must be >= 20, got {max_chars}")
        self.max_sentences = max_sentences
        self.min_relative_score = min_relative_score
        self.max_pages = max_pages
        self.min_words = min_words
        self.max_chars = max_chars
        self.k1 = k1
        self.b = b

    def __repr__(self) -> str:
        return f"ExtractiveGenerator(max_sentences={self.max_sentences})"

    def to_dict(self) -> dict[str, Any]:
        """``{"type": "extractive", "init_parameters": {...}}``."""
        return {
            "type": self.type_name,
            "init_parameters": {
                "max_sentences": self.max_sentences,
                "min_relative_score": self.min_relative_score,
                "max_pages": self.max_pages,
                "min_words": self.min_words,
                "max_chars": self.max_chars,
                "k1": self.k1,
                "b": self.b,
            },
        }

    # -- answering -------------------------------------------------------------------------------

    def generate(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """Quote the best-matching sentences of ``hits`` (cited ``[n]``: ``hits[n - 1]``)."""
        from mmrag.types import Answer

        shown = list(hits[: self.max_pages] if self.max_pages else hits)
        candidates = self._candidates(shown)
        chosen = self._best(question, candidates, shown)
        notes = []
        blank = [h for h in shown if not (h.item.text or "").strip()]
        if blank:
            notes.append(
                f"{len(blank)} of the {len(shown)} pages shown have no text (no text layer or "
                "OCR), so the extractive answer cannot quote them."
            )
        if not chosen:
            lines, citations = [NO_MATCH], shown
        else:
            lines = [
                f"“{self._quote(s.text)}” [{s.hit + 1}] {_short_citation(shown[s.hit])}"
                for s in chosen
            ]
            citations = [shown[i] for i in dict.fromkeys(s.hit for s in chosen)]
        if on_token is not None:
            for number, line in enumerate(lines):
                on_token(line if number == 0 else "\n" + line)
        text = "\n".join(lines)
        return Answer(text=text, citations=citations, sources=shown, notes=notes)

    def _quote(self, text: str) -> str:
        """``text`` cut at ``max_chars``; its own ``[n]`` markers (a paper's references) become
        ``(n)``, so that every ``[n]`` of the answer is a citation of the hits."""
        text = _MARKER.sub(r"(\1)", text)
        return text if len(text) <= self.max_chars else text[: self.max_chars - 1].rstrip() + "…"

    def _candidates(self, hits: Sequence[Hit]) -> list[_Sentence]:
        per_page = [sentences(h.item.text or "") for h in hits]
        pages_with: dict[str, int] = {}
        for page in per_page:
            for s in set(page):
                pages_with[s] = pages_with.get(s, 0) + 1
        out = []
        for index, page in enumerate(per_page):
            for s in dict.fromkeys(page):
                if len(hits) > 1 and pages_with[s] > 1:
                    continue  # a running header or footer: on several pages, about none
                tokens = _tokens(s)
                if tokens:
                    out.append(_Sentence(s, index, tokens))
        return out

    def _best(
        self, question: str, candidates: list[_Sentence], hits: Sequence[Hit]
    ) -> list[_Sentence]:
        query: dict[int, str] = {}
        for word, term in _tokens(question):
            query.setdefault(term, word)
        if not query or not candidates:
            return []
        long_enough = [s for s in candidates if len(s.tokens) >= self.min_words]
        pool = long_enough or candidates
        naming = [_naming_terms(h) for h in hits]
        scores = self._scores(query, pool, naming)
        if not any(scores):  # the question only names the source: match those words too
            scores = self._scores(query, pool, [set() for _ in hits])
        best = max(scores)
        if best <= 0:
            return []
        ranked = sorted(range(len(pool)), key=lambda i: -scores[i])
        keep = [i for i in ranked if scores[i] >= self.min_relative_score * best and scores[i] > 0]
        return [pool[i] for i in keep[: self.max_sentences]]

    def _scores(
        self, query: dict[int, str], pool: list[_Sentence], naming: list[set[int]]
    ) -> list[float]:
        """BM25 of each sentence (IDF over ``pool``), with close variants at half weight."""
        matches = [
            {
                term: _match(term, word, s) * (term not in naming[s.hit])
                for term, word in query.items()
            }
            for s in pool
        ]
        count = len(pool)
        average = sum(len(s.tokens) for s in pool) / count
        idf = {}
        for term in query:
            df = sum(1 for m in matches if m[term] > 0)
            idf[term] = math.log(1.0 + (count - df + 0.5) / (df + 0.5))
        scores = []
        for s, m in zip(pool, matches, strict=True):
            norm = self.k1 * (1.0 - self.b + self.b * len(s.tokens) / average)
            scores.append(
                sum(idf[t] * tf * (self.k1 + 1.0) / (tf + norm) for t, tf in m.items() if tf > 0)
            )
        return scores


def _match(term: int, word: str, sentence: _Sentence) -> float:
    """The term frequency of a query term in a sentence: 1 per exact (same stem) occurrence,
    :data:`_FUZZY_WEIGHT` per close variant."""
    total = 0.0
    for w, t in sentence.tokens:
        if t == term:
            total += 1.0
        elif _close(word, w):
            total += _FUZZY_WEIGHT
    return total


def _naming_terms(hit: Hit) -> set[int]:
    """Term ids of the words that name a hit's source: its file name and title."""
    name = re.split(r"[\\/]", hit.item.source.rstrip("/\\"))[-1]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    title = hit.item.details.get("title") if hit.item.details else None
    text = stem.replace("_", " ").replace("-", " ") + " " + (str(title) if title else "")
    return {term for _, term in _tokens(text)}


def _short_citation(hit: Hit) -> str:
    """``hit.citation()`` with the source's file name instead of its whole path or URL."""
    citation = hit.citation()
    source = hit.item.source
    name = re.split(r"[\\/]", source.rstrip("/\\"))[-1] or source
    return name + citation[len(source) :] if citation.startswith(source) else citation
