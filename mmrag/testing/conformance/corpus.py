"""The data of the store conformance suite: a small seeded corpus of multi-vector pages.

Forty pages over four sources (two PDFs, an image, a video), with a text layer and metadata;
each page is a 4 x 4 grid of unit 16-d token vectors with its pooled views (``global``,
``rows``, ``muvera``). Queries are a few of one page's tokens, jittered, and
:func:`exact_scores` gives every page's reference score on a view, computed with
:func:`mmrag.scoring.maxsim`, so a store's scores can be checked exactly.

Example:
    >>> from mmrag.testing.conformance.corpus import make_corpus, schema_for
    >>> docs = make_corpus(8)
    >>> docs[0].item.citation(), docs[0].embedding.grid, sorted(docs[0].embedding.pooled)
    ('alpha.pdf p.1', (4, 4), ['global', 'muvera', 'rows'])
    >>> schema_for().embedder_id
    'toy-multi@1'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmrag.config import PoolingConfig
from mmrag.embedders.pooling import Pooler
from mmrag.store.schema import CollectionSchema
from mmrag.types import Embedding, Item, Modality

__all__ = [
    "DIM",
    "EMBEDDER_ID",
    "GRID",
    "POOLING",
    "SOURCES",
    "WORDS",
    "Doc",
    "exact_scores",
    "make_corpus",
    "query_of",
    "region_pages",
    "schema_for",
    "unit",
]

#: The dimension of every token vector.
DIM = 16
#: The patch grid of every page: ``(rows, cols)``.
GRID = (4, 4)
#: The pooled views stored with each page; ``full`` keeps every token (the reference scores are
#: MaxSim over all of them).
POOLING = PoolingConfig(
    views=["global", "rows", "muvera"],
    muvera={"k_sim": 2, "dim_proj": 4, "r_reps": 2},
    full_pool_factor=1,
)
#: Page ``i`` belongs to ``SOURCES[i % 4]``: a PDF, a PDF, an image, a video.
SOURCES = ("alpha.pdf", "beta.pdf", "gamma.png", "delta.mp4")
#: The words of the pages' text layers (for the BM25 text channel).
WORDS = ("revenue", "chart", "invoice", "diagram", "table", "summary", "contract", "map")
#: The embedder id the corpus is built for, unless another is given.
EMBEDDER_ID = "toy-multi@1"

_MODALITIES = (Modality.PDF_PAGE, Modality.PDF_PAGE, Modality.IMAGE, Modality.VIDEO_FRAME)


def unit(x: np.ndarray) -> np.ndarray:
    """``x`` with every row scaled to unit L2 norm, as float32."""
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@dataclass
class Doc:
    """One page of the corpus: the item and its embedding (with pooled views)."""

    item: Item
    embedding: Embedding


def region_pages(
    count: int, grid: tuple[int, int] = (16, 16), dim: int = 32, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Background-dominated pages, each with one small region of topic "words" (one of 4
    topics), and the token indices of each page's region: the pages where pooled views that
    average the page lose the content, and ``distinct`` keeps it.

    Example:
        >>> pages, regions = region_pages(3)
        >>> pages[0].shape, [len(r) for r in regions]
        ((256, 32), [3, 4, 5])
    """
    rng = np.random.default_rng(seed)
    paper = unit(rng.standard_normal(dim))
    topics = unit(rng.standard_normal((4, dim)))
    words = unit(rng.standard_normal((4, 10, dim)))
    n = grid[0] * grid[1]
    pages, regions = [], []
    for i in range(count):
        patches = np.repeat(paper[None], n, axis=0).reshape(*grid, dim)  # (rows, cols, d)
        row, col, width = 2 + i % 10, 1 + i % 5, 3 + i % 8
        for c in range(width):
            patches[row, col + c] = topics[i % 4] + words[i % 4, rng.integers(10)]
        pages.append(unit(patches.reshape(-1, dim) + 0.02 * rng.standard_normal((n, dim))))
        regions.append(row * grid[1] + col + np.arange(width))
    return pages, regions


def _locator(i: int, modality: Modality) -> dict:
    if modality is Modality.PDF_PAGE:
        return {"page": i // 4 + 1}
    if modality is Modality.VIDEO_FRAME:
        return {"frame_index": i, "timestamp_s": i / 2}
    return {"frame_index": i // 4}


def make_corpus(n: int = 40, seed: int = 0, embedder_id: str = EMBEDDER_ID) -> list[Doc]:
    """``n`` pages over four sources: pdf pages, images and video frames, with text and
    metadata; multi-vector embeddings on a 4 x 4 grid with their pooled views."""
    rng = np.random.default_rng(seed)
    pooler = Pooler(POOLING)
    docs = []
    for i in range(n):
        modality = _MODALITIES[i % 4]
        item = Item(
            source=SOURCES[i % 4],
            source_sha256=f"{i % 4:064x}",
            modality=modality,
            text=f"{WORDS[i % len(WORDS)]} {WORDS[(i * 3) % len(WORDS)]} page {i}",
            metadata={"lang": "en" if i % 2 else "de", "batch": i % 3},
            embedder_id=embedder_id,
            **_locator(i, modality),
        )
        multi = unit(rng.standard_normal((GRID[0] * GRID[1], DIM)).astype(np.float32))  # (16, d)
        embedding = Embedding(multi=multi, grid=GRID, pooled=pooler.document_views(multi, GRID))
        docs.append(Doc(item, embedding))
    return docs


def schema_for(embedder_id: str = EMBEDDER_ID, text: bool = True) -> CollectionSchema:
    """The collection schema of the corpus (with the BM25 text channel unless ``text=False``).

    ``full`` is float16: the reference scores (``exact_scores``) are float16's; each codec's
    quality is measured in ``tests/integration/store/test_codecs.py``."""
    return CollectionSchema.for_embedder(
        embedder_id, "multi", DIM, POOLING, text=text, codecs={"full": "float16"}
    )


def query_of(corpus: Sequence[Doc], index: int, tokens: int = 5, seed: int = 1) -> np.ndarray:
    """A query: a few of one page's tokens, jittered; ``(tokens, DIM)``."""
    rng = np.random.default_rng(seed + index)
    picked = corpus[index].embedding.multi[:tokens]  # (tokens, d)
    return unit(picked + 0.2 * rng.standard_normal(picked.shape).astype(np.float32))


def exact_scores(corpus: Sequence[Doc], query: np.ndarray, view: str) -> np.ndarray:
    """The reference score of every page on ``view``, computed with mmrag.scoring.maxsim.

    ``full`` is compared as the store keeps it (float16); ``muvera`` is a dot product of the
    fixed-dimensional encodings.
    """
    from mmrag.scoring import maxsim

    if view == "muvera":
        q = Pooler(POOLING).query_vector("muvera", query)
        return np.array([float(d.embedding.pooled["muvera"] @ q) for d in corpus])
    if view == "full":
        docs = [unit(d.embedding.multi).astype(np.float16).astype(np.float32) for d in corpus]
    else:
        docs = [unit(d.embedding.pooled[view]) for d in corpus]
    return maxsim([unit(query)], docs)[0]  # (n_docs,)
