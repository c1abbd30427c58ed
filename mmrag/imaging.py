"""Image geometry shared by every layer (ingest, rerankers, generators): plain arithmetic.

Example:
    >>> from mmrag.imaging import fit_size
    >>> fit_size(4000, 3000, 1000)
    (1000, 750)
"""

from __future__ import annotations

__all__ = ["fit_size"]


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """``(width, height)`` scaled down (never up) so the longer side is at most ``max_side``.

    Example:
        >>> from mmrag.imaging import fit_size
        >>> fit_size(4000, 3000, 1000), fit_size(640, 480, 1000), fit_size(10, 3000, 100)
        ((1000, 750), (640, 480), (1, 100))
    """
    longest = max(width, height)
    if max_side is None or longest <= max_side:
        return width, height
    scale = max_side / longest
    if width >= height:
        return max_side, max(1, round(height * scale))
    return max(1, round(width * scale)), max_side
