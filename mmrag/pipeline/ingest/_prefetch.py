"""Pixels rendered during iteration, held for a bounded number of Items until they are loaded.

An ingest iterator renders a page (or decodes a frame) while it is producing the Item anyway, so
the consumer's ``item.load_image()`` should not have to do it again. Each Item's ``image_loader``
is a :class:`PrefetchedImage`: it hands out the ready image on the first call and forgets it; later
calls (or calls after the image was evicted) fall back to a loader that re-opens the file.

A :class:`PrefetchWindow` bounds memory: it remembers the last ``capacity`` loaders that still
hold pixels and drops the oldest one's image when a new one arrives. A consumer that loads each
Item as it arrives holds one image at a time; one that collects 2,000 Items first holds at most
``capacity`` images, and the rest re-render on demand. Held images go away with their Items.

Example:
    >>> from PIL import Image
    >>> window = PrefetchWindow(capacity=2)
    >>> loaders = [window.wrap(Image.new("RGB", (4, 4)), lambda: Image.new("RGB", (4, 4)))
    ...            for _ in range(3)]
    >>> [loader.ready for loader in loaders]  # the oldest was dropped: it re-renders on demand
    [False, True, True]
    >>> loaders[1]().size, loaders[1].ready, window.held()
    ((4, 4), False, 1)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["PrefetchWindow", "PrefetchedImage"]


class PrefetchedImage:
    """An ``Item.image_loader`` that returns a ready image once, then re-renders on demand.

    Picklable: pickling keeps only the fallback loader (never the pixels).
    """

    __slots__ = ("_fallback", "_image")

    def __init__(self, fallback: Callable[[], Image.Image], image: Image.Image | None = None):
        self._fallback = fallback
        self._image = image

    @property
    def ready(self) -> bool:
        """True while the image is held (not loaded yet, not evicted)."""
        return self._image is not None

    @property
    def fallback(self) -> Callable[[], Image.Image]:
        """The loader that re-opens the file (used after the first load or an eviction)."""
        return self._fallback

    def release(self) -> None:
        """Forget the held image (the next call re-renders)."""
        self._image = None

    def __call__(self) -> Image.Image:
        image, self._image = self._image, None
        if image is not None:
            return image
        return self._fallback()

    def __getstate__(self) -> dict[str, Any]:
        return {"fallback": self._fallback}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._fallback = state["fallback"]
        self._image = None

    def __repr__(self) -> str:
        return f"PrefetchedImage(ready={self.ready}, fallback={self._fallback!r})"


class PrefetchWindow:
    """Holds at most ``capacity`` ready images across all the loaders it created.

    ``capacity == 0`` keeps nothing: :meth:`wrap` returns the fallback loader itself.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._held: deque[PrefetchedImage] = deque()

    @property
    def keeps_images(self) -> bool:
        """Whether images rendered during iteration are worth keeping."""
        return self.capacity > 0

    def wrap(
        self, image: Image.Image | None, fallback: Callable[[], Image.Image]
    ) -> Callable[[], Image.Image]:
        """A loader for one Item: ``image`` now (if kept), ``fallback()`` afterwards."""
        if self.capacity == 0 or image is None:
            return fallback
        loader = PrefetchedImage(fallback, image)
        held = self._held
        held.append(loader)
        if len(held) > self.capacity:
            # Loaders whose image was already taken hold nothing: forget them first.
            self._held = held = deque(entry for entry in held if entry.ready)
            while len(held) > self.capacity:
                held.popleft().release()  # the oldest unloaded image: re-rendered on demand
        return loader

    def held(self) -> int:
        """How many images are held right now."""
        return sum(1 for loader in self._held if loader.ready)

    def clear(self) -> None:
        """Drop every held image."""
        while self._held:
            self._held.popleft().release()
