"""Seeded synthetic ColPali-shaped corpora for the retrieval benchmarks.

Two generators, both deterministic (page ``i`` is the same whatever chunk generates it) and both
producing ``(1030, dim)`` unit vectors per page: 6 prefix tokens, then a 32 x 32 patch grid.

- :class:`SyntheticCorpus` (``smooth``): text/figure blocks fill most of the page, patches are a
  spatially smooth field around each block's topic vector. Every pooled view does well on it.
- :class:`PageLikeCorpus` (``pagelike``): what real page images look like to a patch encoder.
  Most patches are near-identical paper background; every page uses one of a few shared
  templates (a header band, a footer line, a logo) whose patches repeat across many pages;
  the content sits in a few small regions (a paragraph, a table, a figure) of distinct "word"
  tokens; queries are about one region. ``context`` sets how much each patch vector carries
  page-level context: ``0.5`` is like ColPali's contextualised tokens (every patch "knows" what
  the page is about), ``0.05`` makes patches nearly independent of their page, the hard case
  for pooled views.

Example:
    >>> from _corpora import PageLikeCorpus, PageLikeSpec
    >>> corpus = PageLikeCorpus(PageLikeSpec(pages=20, context=0.05))
    >>> corpus.page(3).shape
    (1030, 128)
    >>> page, query = corpus.query(0)
    >>> query.shape
    (20, 128)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CHUNK",
    "GRID",
    "PREFIX",
    "CorpusSpec",
    "PageLikeCorpus",
    "PageLikeSpec",
    "Region",
    "SyntheticCorpus",
]

GRID = (32, 32)
PREFIX = 6
CHUNK = 100


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _with_prefix(patches: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``PREFIX`` prompt tokens (the page mean plus noise) before the ``(1024, d)`` patches."""
    d = patches.shape[1]
    noise = rng.standard_normal((PREFIX, d), dtype=np.float32) / np.sqrt(d)
    prefix = _unit(patches.mean(axis=0) + noise)
    return np.concatenate([prefix, patches]).astype(np.float32)  # (1030, d)


def _box3(padded: np.ndarray) -> np.ndarray:
    """3 x 3 box sum of a ``(r+2, c+2, d)`` array → ``(r, c, d)``."""
    rows, cols = padded.shape[0] - 2, padded.shape[1] - 2
    out = np.zeros((rows, cols, padded.shape[2]), dtype=np.float32)
    for dr in range(3):
        for dc in range(3):
            out += padded[dr : dr + rows, dc : dc + cols]
    return out


class _Corpus:
    """What both generators share: chunked generation of the whole corpus."""

    name: str
    spec: CorpusSpec | PageLikeSpec

    def page(self, page: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        """``(first page, (b, 1030, d))`` chunks of the whole corpus."""
        for start in range(0, self.spec.pages, size):
            stop = min(start + size, self.spec.pages)
            yield start, np.stack([self.page(i) for i in range(start, stop)])


# -- the smooth corpus -------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusSpec:
    """The knobs of the smooth synthetic corpus (everything else derives from ``seed``)."""

    pages: int
    dim: int = 128
    topics: int = 0  # 0: one per 10 pages (about 14 pages per subtopic at any size)
    subtopics: int = 4
    styles: int = 8
    seed: int = 0
    two_column: float = 0.4
    block_rows: tuple[int, int] = (3, 8)
    subtopic_weight: float = 0.6
    page_drift: float = 0.35
    style_spread: float = 0.3
    smooth_noise: float = 0.5
    white_noise: float = 0.2


class SyntheticCorpus(_Corpus):
    """Deterministic ColPali-like pages; page ``i`` is the same whatever chunk generates it.

    A page is a stack of text/figure blocks on paper: one column (blocks 30 patches wide) or two
    (15 wide), 3-8 patch rows high, separated by blank rows and margins. Each block is about a
    subtopic of a topic: its patches are the block's topic vector (topic + subtopic + a little
    page-specific drift) plus spatially smooth noise, so neighbouring patches correlate. Blank
    patches are the page's paper style (nearly the same on every page).

    Example:
        >>> from _corpora import CorpusSpec, SyntheticCorpus
        >>> SyntheticCorpus(CorpusSpec(pages=10)).page(0).shape
        (1030, 128)
    """

    name = "smooth"

    def __init__(self, spec: CorpusSpec) -> None:
        if spec.topics == 0:
            spec = dataclasses.replace(spec, topics=max(spec.pages // 10, 4))
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        d = spec.dim
        self.topics = _unit(rng.standard_normal((spec.topics, d), dtype=np.float32))
        self.subtopics = _unit(
            rng.standard_normal((spec.topics, spec.subtopics, d), dtype=np.float32)
        )
        paper = _unit(rng.standard_normal(d, dtype=np.float32))
        spread = spec.style_spread * _unit(rng.standard_normal((spec.styles, d), dtype=np.float32))
        self.styles = _unit(paper + spread)

    def layout(self, page: int) -> list[tuple[int, int, int, int, int, int]]:
        """The page's blocks: ``(row, col, height, width, topic, subtopic)``."""
        s = self.spec
        rng = np.random.default_rng((s.seed, page, 1))
        columns = [(1, 15), (16, 15)] if rng.random() < s.two_column else [(1, 30)]
        blocks = []
        row = 1
        while row < GRID[0] - 3:
            height = min(int(rng.integers(s.block_rows[0], s.block_rows[1] + 1)), GRID[0] - 1 - row)
            for col, width in columns:
                topic = int(rng.integers(0, s.topics))
                sub = int(rng.integers(0, s.subtopics))
                blocks.append((row, col, height, width, topic, sub))
            row += height + 1
        return blocks

    def page(self, page: int) -> np.ndarray:
        """The page's ``(1030, dim)`` unit vectors: 6 prefix tokens, then 32 x 32 patches."""
        s = self.spec
        rng = np.random.default_rng((s.seed, page, 2))
        base = np.empty((*GRID, s.dim), dtype=np.float32)  # (r, c, d)
        base[:] = self.styles[page % s.styles]
        for row, col, height, width, topic, sub in self.layout(page):
            drift = _unit(rng.standard_normal(s.dim, dtype=np.float32))
            vector = self.topics[topic] + s.subtopic_weight * self.subtopics[topic, sub]
            base[row : row + height, col : col + width] = _unit(vector + s.page_drift * drift)
        noise = rng.standard_normal((GRID[0] + 2, GRID[1] + 2, s.dim), dtype=np.float32)
        smooth = _box3(noise) / 3.0  # (r, c, d): neighbouring patches share noise
        white = rng.standard_normal((*GRID, s.dim), dtype=np.float32)
        patches = base + (s.smooth_noise * smooth + s.white_noise * white) / np.sqrt(s.dim)
        patches = _unit(patches.reshape(-1, s.dim))  # (1024, d)
        return _with_prefix(patches, rng)

    def query(self, index: int, tokens: int = 20, noise: float = 0.5) -> tuple[int, np.ndarray]:
        """A query about one block of one page: ``(page, (tokens, d))`` unit vectors."""
        s = self.spec
        rng = np.random.default_rng((s.seed, index, 3))
        page = int(rng.integers(0, s.pages))
        blocks = self.layout(page)
        row, col, height, width, _, _ = blocks[int(rng.integers(0, len(blocks)))]
        vectors = self.page(page)[PREFIX:].reshape(*GRID, s.dim)
        rows = rng.integers(row, row + height, tokens)
        cols = rng.integers(col, col + width, tokens)
        picked = vectors[rows, cols]  # (tokens, d)
        jitter = rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(s.dim)
        return page, _unit(picked + noise * jitter)


# -- the page-like corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class PageLikeSpec:
    """The knobs of the page-like corpus (everything else derives from ``seed``).

    ``context`` is the weight of the page-context vector in every patch (0: patches know only
    their own pixels; 0.5: half of every patch vector says what the whole page is about).
    """

    pages: int
    dim: int = 128
    context: float = 0.05
    topics: int = 0  # 0: one per 10 pages
    subtopics: int = 4
    templates: int = 0  # 0: one per 50 pages, at least 4
    styles: int = 4
    regions: tuple[int, int] = (1, 4)  # content regions per page (inclusive)
    region_rows: tuple[int, int] = (2, 5)
    region_cols: tuple[int, int] = (4, 12)
    words: int = 16  # distinct token vectors ("words") per topic
    word_weight: float = 1.0  # weight of a content patch's word
    topic_weight: float = 0.5  # weight of the region's topic (+ subtopic + page drift) vector
    ink_weight: float = 1.0  # weight of the generic "printed content" vector shared by all regions
    subtopic_weight: float = 0.6
    page_drift: float = 0.35
    style_spread: float = 0.2
    background_noise: float = 0.15  # white noise on background and template patches
    content_noise: float = 0.5  # smooth + white noise on content patches
    seed: int = 0


@dataclass(frozen=True)
class Region:
    """One content region of a page, in patch coordinates."""

    row: int
    col: int
    height: int
    width: int
    topic: int
    subtopic: int


class PageLikeCorpus(_Corpus):
    """Background-dominated pages with shared templates and a few small content regions.

    Per page (32 x 32 patches): paper background of one of ``styles`` styles (plus a little
    white noise, so background patches are near-identical within and across pages); a template
    shared with about ``pages / templates`` other pages (a two-row header band and a footer row
    of fixed per-patch vectors, and a 3 x 3 logo in a top corner); and 1-4 non-overlapping
    content regions (2-5 rows by 4-12 columns; 6.5 % of the page on average). A content patch is
    ``ink + topic_weight * region + word_weight * word`` plus smooth noise: ``ink`` is shared by
    all printed content, ``region`` is the region's topic + subtopic + page-specific drift, and
    ``word`` one of the topic's ``words`` token vectors, so a region is a set of distinct
    tokens, not one repeated vector (its mean says little about any one of them). With
    ``context`` c every patch becomes ``unit((1 - c) * local + c * page_context)``, where the
    page context is the mean of the page's region vectors plus a page-specific direction.
    Queries are 20 noisy samples of one region's patches.

    Example:
        >>> from _corpora import PageLikeCorpus, PageLikeSpec
        >>> corpus = PageLikeCorpus(PageLikeSpec(pages=50, context=0.5))
        >>> 0.0 < corpus.content_fraction(7) < 0.25
        True
    """

    name = "pagelike"

    def __init__(self, spec: PageLikeSpec) -> None:
        if not 0.0 <= spec.context <= 1.0:
            raise ValueError(f"context must be in [0, 1], got {spec.context}")
        if spec.topics == 0:
            spec = dataclasses.replace(spec, topics=max(spec.pages // 10, 4))
        if spec.templates == 0:
            spec = dataclasses.replace(spec, templates=max(spec.pages // 50, 4))
        self.spec = spec
        rng = np.random.default_rng((spec.seed, 7))
        d = spec.dim
        self.topics = _unit(rng.standard_normal((spec.topics, d), dtype=np.float32))
        self.subtopics = _unit(
            rng.standard_normal((spec.topics, spec.subtopics, d), dtype=np.float32)
        )
        self.vocabulary = _unit(rng.standard_normal((spec.topics, spec.words, d), dtype=np.float32))
        paper = _unit(rng.standard_normal(d, dtype=np.float32))
        spread = spec.style_spread * _unit(rng.standard_normal((spec.styles, d), dtype=np.float32))
        self.styles = _unit(paper + spread)
        self.ink = _unit(rng.standard_normal(d, dtype=np.float32))
        # Template patches: header (2 rows x 28 cols), footer (1 x 28), logo (3 x 3). Header
        # and footer text varies slowly along the band (a few distinct vectors, repeated).
        t = spec.templates
        self.header = _unit(rng.standard_normal((t, 7, d), dtype=np.float32)).repeat(4, axis=1)
        self.footer = _unit(rng.standard_normal((t, 4, d), dtype=np.float32)).repeat(7, axis=1)
        self.logo = _unit(rng.standard_normal((t, 3, 3, d), dtype=np.float32))
        self.logo_right = rng.random(t) < 0.5

    def template(self, page: int) -> int:
        """The page's template (pages of one template share header, footer and logo)."""
        return int(np.random.default_rng((self.spec.seed, page, 4)).integers(self.spec.templates))

    def layout(self, page: int) -> list[Region]:
        """The page's content regions (non-overlapping, between header and footer)."""
        s = self.spec
        rng = np.random.default_rng((s.seed, page, 1))
        wanted = int(rng.integers(s.regions[0], s.regions[1] + 1))
        taken = np.zeros(GRID, dtype=bool)
        regions: list[Region] = []
        for _ in range(50 * wanted):
            if len(regions) == wanted:
                break
            h = int(rng.integers(s.region_rows[0], s.region_rows[1] + 1))
            w = int(rng.integers(s.region_cols[0], s.region_cols[1] + 1))
            row = int(rng.integers(4, GRID[0] - 2 - h))
            col = int(rng.integers(1, GRID[1] - 1 - w))
            if taken[row - 1 : row + h + 1, col - 1 : col + w + 1].any():
                continue  # keep a blank margin between regions
            taken[row : row + h, col : col + w] = True
            topic = int(rng.integers(0, s.topics))
            regions.append(Region(row, col, h, w, topic, int(rng.integers(0, s.subtopics))))
        return regions

    def content_fraction(self, page: int) -> float:
        """The share of the page's patches that belong to a content region."""
        return sum(r.height * r.width for r in self.layout(page)) / (GRID[0] * GRID[1])

    def page(self, page: int) -> np.ndarray:
        """The page's ``(1030, dim)`` unit vectors: 6 prefix tokens, then 32 x 32 patches."""
        s = self.spec
        d = s.dim
        rng = np.random.default_rng((s.seed, page, 2))
        local = np.empty((*GRID, d), dtype=np.float32)  # (r, c, d)
        local[:] = self.styles[page % s.styles]
        t = self.template(page)
        local[0:2, 2:30] = self.header[t][None]
        local[GRID[0] - 1, 2:30] = self.footer[t]
        logo_col = GRID[1] - 4 if self.logo_right[t] else 1
        local[0:3, logo_col : logo_col + 3] = self.logo[t]
        local += (
            s.background_noise * rng.standard_normal(local.shape, dtype=np.float32) / np.sqrt(d)
        )
        noise = rng.standard_normal((GRID[0] + 2, GRID[1] + 2, d), dtype=np.float32)
        smooth = _box3(noise) / 3.0  # (r, c, d): neighbouring patches share noise
        content = []
        for region in self.layout(page):
            drift = _unit(rng.standard_normal(d, dtype=np.float32))
            vector = (
                self.topics[region.topic]
                + s.subtopic_weight * self.subtopics[region.topic, region.subtopic]
            )
            vector = _unit(vector + s.page_drift * drift)
            content.append(vector)
            rows = slice(region.row, region.row + region.height)
            cols = slice(region.col, region.col + region.width)
            words = rng.integers(0, s.words, (region.height, region.width))
            text = s.word_weight * self.vocabulary[region.topic][words]  # (h, w, d)
            ink = s.ink_weight * self.ink + s.topic_weight * vector
            local[rows, cols] = ink + text + s.content_noise * smooth[rows, cols] / np.sqrt(d)
        local = _unit(local)
        own = _unit(rng.standard_normal(d, dtype=np.float32))
        context = _unit(np.mean(content, axis=0) + 0.5 * own)  # what the page is about
        patches = _unit((1 - s.context) * local + s.context * context).reshape(-1, d)  # (1024, d)
        return _with_prefix(patches, rng)

    def query(self, index: int, tokens: int = 20, noise: float = 0.5) -> tuple[int, np.ndarray]:
        """A query about one content region of one page: ``(page, (tokens, d))`` unit vectors."""
        s = self.spec
        rng = np.random.default_rng((s.seed, index, 3))
        page = int(rng.integers(0, s.pages))
        regions = self.layout(page)
        region = regions[int(rng.integers(0, len(regions)))]
        vectors = self.page(page)[PREFIX:].reshape(*GRID, s.dim)
        rows = rng.integers(region.row, region.row + region.height, tokens)
        cols = rng.integers(region.col, region.col + region.width, tokens)
        picked = vectors[rows, cols]  # (tokens, d)
        jitter = rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(s.dim)
        return page, _unit(picked + noise * jitter)
