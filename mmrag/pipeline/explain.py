"""Pictures of region citations: each hit's page with its similarity heat map and boxes.

``mmrag search --explain OUT_DIR`` writes one PNG per hit with :func:`explain_hits`: the stored
page image, the per-patch share of the MaxSim score (:func:`~mmrag.pipeline.regions.patch_scores`)
as a red overlay, and the hit's regions outlined.

Example:
    >>> import numpy as np
    >>> from PIL import Image
    >>> from mmrag.pipeline.explain import draw_explanation
    >>> from mmrag.types import Item, Region
    >>> item = Item(source="a.png", source_sha256="0" * 64, modality="image", width=40, height=20)
    >>> scores = np.array([[0.0, 1.0], [0.0, 0.0]])
    >>> picture = draw_explanation(Image.new("RGB", (40, 20), "white"), item, scores,
    ...                            [Region(20, 0, 40, 10, 1.0)])
    >>> picture.size, picture.getpixel((30, 5))[1] < 255      # the matching cell is tinted
    ((40, 20), True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmrag.pipeline.regions import (
    merged_full,
    page_transform,
    patch_scores,
    query_tokens,
    stored_patches,
)
from mmrag.types import Embedding, Hit, Item, Region

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore

__all__ = ["draw_explanation", "explain_hits", "region_pixels"]

#: Outline colours of the boxes, best first (the rest use the last).
_COLOURS = ("#00c853", "#2979ff", "#ffab00", "#d500f9", "#00b8d4")
_WORDS = "#2962ff"  # word regions (the query's terms written on the page)


def region_pixels(region: Region, item: Item) -> tuple[float, float, float, float]:
    """A region's box in pixels of the item's image (the inverse of the page transform)."""
    scale, dx, dy = page_transform(item) or (1.0, 0.0, 0.0)
    return (
        region.x0 / scale - dx,
        region.y0 / scale - dy,
        region.x1 / scale - dx,
        region.y1 / scale - dy,
    )


def draw_explanation(
    image: Image.Image, item: Item, scores: np.ndarray | None, regions: Sequence[Region]
) -> Image.Image:
    """``image`` with the ``(rows, cols)`` score map as a red heat map and ``regions`` outlined."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    base = image.convert("RGB")
    if scores is not None and scores.size and float(scores.max()) > 0:
        heat = np.clip(scores / float(scores.max()), 0.0, 1.0)
        small = PILImage.fromarray((heat * 255).astype(np.uint8), mode="L")
        alpha = small.resize(base.size, PILImage.BILINEAR).point(lambda v: int(v * 0.6))
        red = PILImage.new("RGB", base.size, (255, 0, 0))
        base = PILImage.composite(red, base, alpha)
    draw = ImageDraw.Draw(base)
    width = max(2, round(min(base.size) / 150))
    for rank, region in enumerate(regions):
        x0, y0, x1, y1 = region_pixels(region, item)
        colour = _WORDS if region.kind == "words" else _COLOURS[min(rank, len(_COLOURS) - 1)]
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=colour, width=width)
        draw.text((x0 + width + 1, y0 + width + 1), f"{rank + 1}", fill=colour)
    return base


def _file_name(rank: int, hit: Hit) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(hit.item.source).name)[:80]
    return f"{rank:02d}_{stem}_{hit.item.locator.replace('=', '').replace(';', '_')}.png"


def explain_hits(
    store: VectorStore,
    assets: AssetStore,
    query: Embedding,
    hits: Sequence[Hit],
    out_dir: str | Path,
) -> list[Path]:
    """Write one PNG per hit (``01_report.pdf_page3.png`` …) into ``out_dir``; returns the
    paths. A hit without a stored image is left out; one without a grid gets its boxes only."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokens = query_tokens(query)
    records = {}
    merged = merged_full(store.schema)
    if tokens is not None and hits:
        records = {r.id: r for r in store.retrieve([h.id for h in hits], with_vectors=True)}
    paths = []
    for rank, hit in enumerate(hits, 1):
        if not assets.exists(hit.id):
            continue
        scores = None
        record = records.get(hit.id)
        found = None if record is None else stored_patches(record, hit.item, merged)
        if tokens is not None and found is not None:
            scores = patch_scores(tokens, *found)
        picture = draw_explanation(assets.get(hit.id), hit.item, scores, hit.regions)
        path = out / _file_name(rank, hit)
        picture.save(path)
        paths.append(path)
    return paths
