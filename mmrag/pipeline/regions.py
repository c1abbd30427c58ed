"""Region citations: which boxes of a page carry a hit's match.

A multi-vector embedder with a patch grid stores one vector per patch of the page (``full``,
row-major on ``details["grid"] = [rows, cols]``), followed, when it stores every document token
(``document_tokens="all"``, the ColPali recipe), by the vectors of the document prompt's other
tokens, which lie nowhere on the page. MaxSim sums, over the query tokens, each token's best
similarity with any patch. Giving each token's share to the patch that won it yields a per-patch
score map whose total is the page's MaxSim score over its patches (:func:`patch_scores`).
The cells that carry a good part of it are grouped into connected boxes (:func:`cell_boxes`),
each scored by the share it carries, and mapped to the page's own coordinates: PDF points for
PDF pages (pixels ÷ ``render_dpi`` × 72, plus the crop offset), pixels for images and frames
(:func:`page_regions`). :func:`attach_regions` does this for a list of hits, reading their
stored vectors in one call.

Example:
    >>> import numpy as np
    >>> from mmrag.pipeline.regions import cell_boxes, patch_scores
    >>> patches = np.eye(6, dtype=np.float32)            # a 2 x 3 grid of distinct patches
    >>> query = patches[[1, 2]]                          # tokens matching the top-right cells
    >>> scores = patch_scores(query, patches, (2, 3))
    >>> scores.tolist()
    [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    >>> cell_boxes(scores)                               # (row0, col0, row1, col1, score)
    [(0, 1, 1, 3, 2.0)]
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.store.contract import FULL_MERGE_FIELD, StoreError
from mmrag.store.tokens import unpack_assignment
from mmrag.types import Embedding, Hit, Item, Modality, Region

if TYPE_CHECKING:
    from mmrag.store.contract import VectorStore
    from mmrag.store.schema import CollectionSchema

__all__ = [
    "REGIONS_MAX_K",
    "attach_regions",
    "cell_boxes",
    "grid_of",
    "merged_full",
    "page_regions",
    "page_transform",
    "patch_scores",
    "stored_patches",
]

logger = logging.getLogger(__name__)

#: ``Pipeline.search(regions=None)`` computes regions when at most this many hits are asked for.
REGIONS_MAX_K = 20

Box = tuple[int, int, int, int, float]


def patch_scores(
    query: np.ndarray,
    patches: np.ndarray,
    grid: Sequence[int],
    assignment: np.ndarray | None = None,
) -> np.ndarray:
    """The ``(rows, cols)`` map of each patch's share of the MaxSim score.

    Each query token adds its best similarity to the patch that gave it (ties: the first), so
    the map sums to ``maxsim(query, patches[:rows * cols])``. ``query`` is ``(q, d)``,
    ``patches`` ``(n, d)`` with ``n >= rows * cols``: the first ``rows * cols`` are the grid,
    row-major; any after are a document's prompt tokens (``document_tokens="all"``), which lie
    nowhere on the page and are left out.

    A page stored with its tokens merged (``full_pool_factor`` > 1) passes the merged vectors
    as ``patches`` and ``assignment`` (token -> merged vector,
    :func:`mmrag.store.tokens.merge_tokens`): a merged vector's share is spread evenly over
    the cells merged into it, so a match on a content region (kept whole) stays on its cells
    and one on merged background spreads thin.

    Example:
        >>> import numpy as np
        >>> from mmrag.pipeline.regions import patch_scores
        >>> merged = np.eye(3, dtype=np.float32)                 # 3 vectors for 4 cells
        >>> patch_scores(merged[[2]], merged, (2, 2), np.array([0, 0, 1, 2])).tolist()
        [[0.0, 0.0], [0.0, 1.0]]
    """
    rows, cols = (int(v) for v in grid)
    patches = np.asarray(patches, dtype=np.float32)
    cells = rows * cols
    query = np.asarray(query, dtype=np.float32)
    if assignment is not None:
        assignment = np.asarray(assignment)
        if patches.ndim != 2 or assignment.shape[0] < cells or assignment.max() >= len(patches):
            raise ValueError(f"a {rows}x{cols} grid needs a token assignment for {cells} cells")
        on_grid = assignment[:cells]  # (cells,) merged vector of each cell
        counts = np.bincount(on_grid, minlength=len(patches))  # cells per merged vector
        candidates = np.flatnonzero(counts)  # merged vectors with a cell on the page
        sim = query @ patches[candidates].T  # (q, m')
        best = sim.argmax(axis=1)
        share = np.zeros(len(patches), dtype=np.float64)
        np.add.at(share, candidates[best], sim[np.arange(len(best)), best])
        return (share[on_grid] / counts[on_grid]).reshape(rows, cols)
    if patches.ndim != 2 or patches.shape[0] < cells:
        raise ValueError(f"a {rows}x{cols} grid needs {cells} patch vectors")
    sim = query @ patches[:cells].T  # (q, cells)
    best = sim.argmax(axis=1)
    scores = np.zeros(cells, dtype=np.float64)
    np.add.at(scores, best, sim[np.arange(len(best)), best])
    return scores.reshape(rows, cols)


def cell_boxes(
    scores: np.ndarray,
    *,
    threshold: float = 0.25,
    gap: int = 1,
    max_regions: int = 5,
    min_share: float = 0.05,
) -> list[Box]:
    """Boxes ``(row0, col0, row1, col1, score)`` of grid cells (end-exclusive), best first.

    Cells scoring at least ``threshold`` × the best cell are kept; kept cells at most ``gap``
    empty cells apart join one box (8-connected when ``gap`` is 0). A box scores the sum of its
    kept cells; boxes carrying less than ``min_share`` of the kept total are dropped.
    """
    rows, cols = scores.shape
    top = float(scores.max()) if scores.size else 0.0
    if top <= 0:
        return []
    kept = scores >= threshold * top
    label = np.full(scores.shape, -1, dtype=np.int64)
    reach = gap + 1
    boxes: list[Box] = []
    for r, c in zip(*np.nonzero(kept), strict=True):
        if label[r, c] >= 0:
            continue
        index = len(boxes)
        label[r, c] = index
        stack = [(int(r), int(c))]
        cells = []
        while stack:
            y, x = stack.pop()
            cells.append((y, x))
            for ny in range(max(0, y - reach), min(rows, y + reach + 1)):
                for nx in range(max(0, x - reach), min(cols, x + reach + 1)):
                    if kept[ny, nx] and label[ny, nx] < 0:
                        label[ny, nx] = index
                        stack.append((ny, nx))
        ys = [y for y, _ in cells]
        xs = [x for _, x in cells]
        total = float(sum(scores[y, x] for y, x in cells))
        boxes.append((min(ys), min(xs), max(ys) + 1, max(xs) + 1, total))
    overall = sum(b[4] for b in boxes)
    boxes = [b for b in boxes if b[4] >= min_share * overall]
    boxes.sort(key=lambda b: -b[4])
    return boxes[:max_regions]


def grid_of(item: Item, count: int) -> tuple[int, int] | None:
    """The patch grid of ``item``'s ``count`` stored vectors: ``details["grid"]`` when indexed
    with it (its ``rows x cols`` patches come first; more stored vectors are the document
    prompt's other tokens), else the ``rows x cols = count`` factorisation closest to the
    image's aspect ratio (older indexes), else ``None``."""
    stored = (item.details or {}).get("grid")
    if stored is not None and len(stored) == 2 and 0 < int(stored[0]) * int(stored[1]) <= count:
        return int(stored[0]), int(stored[1])
    if stored is not None or not item.width or not item.height or count < 1:
        return None
    aspect = item.height / item.width
    best: tuple[float, tuple[int, int]] | None = None
    for rows in range(1, count + 1):
        if count % rows:
            continue
        cols = count // rows
        error = abs(math.log((rows / cols) / aspect))
        if best is None or error < best[0]:
            best = (error, (rows, cols))
    return best[1] if best is not None else None


def page_transform(item: Item) -> tuple[float, float, float] | None:
    """``(scale, x_offset, y_offset)`` taking pixels of the item's image to page coordinates
    (``page = (pixel + offset) * scale``): PDF points for PDF pages, pixels otherwise."""
    details: Mapping[str, Any] = item.details or {}
    if item.modality is Modality.PDF_PAGE and details.get("render_dpi"):
        crop = details.get("crop_box") or (0, 0)
        return 72.0 / float(details["render_dpi"]), float(crop[0]), float(crop[1])
    return 1.0, 0.0, 0.0


def page_regions(
    query: np.ndarray,
    patches: np.ndarray,
    grid: Sequence[int],
    item: Item,
    assignment: np.ndarray | None = None,
    **options: Any,
) -> list[Region]:
    """The regions of ``item`` that carry the match of ``query`` (``(q, d)`` token vectors)
    over its stored ``patches`` on ``grid``, best first, in the page's own coordinates.

    ``assignment``: a merged page's token -> stored vector map (:func:`patch_scores`).
    ``options`` go to :func:`cell_boxes`. An item without its image size has no regions.
    """
    if not item.width or not item.height:
        return []
    rows, cols = (int(v) for v in grid)
    scale, dx, dy = page_transform(item) or (1.0, 0.0, 0.0)
    cell_w, cell_h = item.width / cols, item.height / rows
    regions = []
    for r0, c0, r1, c1, score in cell_boxes(
        patch_scores(query, patches, grid, assignment), **options
    ):
        regions.append(
            Region(
                x0=round((c0 * cell_w + dx) * scale, 2),
                y0=round((r0 * cell_h + dy) * scale, 2),
                x1=round((c1 * cell_w + dx) * scale, 2),
                y1=round((r1 * cell_h + dy) * scale, 2),
                score=round(score, 4),
            )
        )
    return regions


def query_tokens(embedding: Embedding) -> np.ndarray | None:
    """The token vectors a multi-vector query searches with (``None`` for a dense query)."""
    return embedding.multi  # every token the query scores with (an image query's too)


def merged_full(schema: CollectionSchema) -> bool:
    """Whether the collection stores its ``full`` pages merged (``full_pool_factor`` > 1):
    its points then carry the token -> vector map in the payload
    (:data:`~mmrag.store.contract.FULL_MERGE_FIELD`)."""
    return schema.full_pool_factor > 1


def stored_patches(
    record: Any, item: Item, merged: bool
) -> tuple[np.ndarray, tuple[int, int], np.ndarray | None] | None:
    """A stored record's ``full`` vectors placed on the page: ``(vectors, grid, assignment)``
    for :func:`patch_scores`, or ``None`` (no ``full`` vectors or no grid, or a merged page
    (``merged``) without a readable token -> vector map: one stored by an earlier version).
    """
    patches = record.vectors.get("full")
    if patches is None:
        return None
    assignment = None
    if merged:
        packed = record.payload.get(FULL_MERGE_FIELD)
        try:
            assignment = unpack_assignment(packed) if isinstance(packed, str) else None
        except ValueError:
            return None
        if assignment is None or not len(assignment) or assignment.max() >= len(patches):
            return None  # missing, or not a map onto these vectors
    grid = grid_of(item, len(patches) if assignment is None else len(assignment))
    return None if grid is None else (np.asarray(patches), grid, assignment)


def attach_regions(store: VectorStore, query: Embedding, hits: Sequence[Hit]) -> list[Hit]:
    """``hits`` with :attr:`~mmrag.types.Hit.regions` set, from their stored ``full`` vectors.

    A dense query or collection, or a hit with no grid, keeps no regions; nothing fails the
    search (a store error is logged and the hits come back as they were).
    """
    tokens = query_tokens(query)
    if tokens is None or not hits or "full" not in store.schema.vectors():
        return list(hits)
    merged = merged_full(store.schema)
    try:
        records = {r.id: r for r in store.retrieve([h.id for h in hits], with_vectors=True)}
    except StoreError as exc:  # regions are an extra: the hits stand without them
        logger.warning("region citations skipped: the stored vectors could not be read (%s)", exc)
        return list(hits)
    out = []
    for hit in hits:
        record = records.get(hit.id)
        found = None if record is None else stored_patches(record, hit.item, merged)
        if found is None:
            out.append(hit)
            continue
        patches, grid, assignment = found
        regions = page_regions(tokens, patches, grid, hit.item, assignment)
        out.append(dataclasses.replace(hit, regions=tuple(regions)))
    return out
