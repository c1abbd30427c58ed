"""Small deterministic inputs for tests of the tiny models.

Example:
    >>> image = sample_image(100, 80)
    >>> image.size, image.mode
    ((80, 100), 'RGB')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image


def sample_image(height: int = 100, width: int = 80, seed: int = 0) -> Image:
    """A random RGB image of ``height`` x ``width`` pixels, the same for the same seed.

    Example:
        >>> sample_image(seed=1).tobytes() == sample_image(seed=1).tobytes()
        True
    """
    import numpy as np
    from PIL import Image as PILImage

    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return PILImage.fromarray(pixels, mode="RGB")
