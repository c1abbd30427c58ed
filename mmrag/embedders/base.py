"""The embedder contract every family implements.

An embedder turns Items (pages, images, frames) and queries (text, an image, or both) into
:class:`~mmrag.types.Embedding` values. ``kind`` says whether they are single vectors or
multi-vectors; ``id`` names the model, revision and settings, and is recorded by every index built
with it (opening an index with another embedder is an error, never silent garbage).

Example:
    >>> from mmrag.embedders.base import Query
    >>> Query.coerce("what grew in 2024?").text
    'what grew in 2024?'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.types import Embedding, Item

__all__ = ["Embedder", "Query", "QueryLike"]


@dataclass(frozen=True)
class Query:
    """A query: text, an image, or both.

    Example:
        >>> from mmrag.embedders.base import Query
        >>> Query(text="revenue chart").has_image
        False
    """

    text: str | None = None
    image: Image.Image | None = None

    def __post_init__(self) -> None:
        if self.text is None and self.image is None:
            raise ValueError("a query needs text, an image, or both")

    @property
    def has_image(self) -> bool:
        """True when the query carries an image."""
        return self.image is not None

    @classmethod
    def coerce(cls, value: QueryLike) -> Query:
        """Accept a ``Query``, a string, or a PIL image."""
        if isinstance(value, Query):
            return value
        if isinstance(value, str):
            return cls(text=value)
        if hasattr(value, "convert") and hasattr(value, "size"):  # a PIL image
            return cls(image=value)
        raise TypeError(f"a query is text, a PIL image or a Query; got {type(value).__name__}")


QueryLike = Any  # str | PIL.Image.Image | Query (kept loose so PIL is not imported here)


@runtime_checkable
class Embedder(Protocol):
    """What every embedder provides (see DESIGN.md, "Embedders")."""

    @property
    def id(self) -> str:
        """Model id + revision + settings; recorded by indexes built with this embedder."""
        ...

    @property
    def kind(self) -> Literal["single", "multi"]:
        """``single``: one vector per item; ``multi``: one vector per token/patch."""
        ...

    @property
    def dim(self) -> int:
        """The dimension of each vector."""
        ...

    def embed_documents(self, items: Iterable[Item]) -> list[Embedding]:
        """Embed pages / images / frames, in order."""
        ...

    def embed_queries(self, queries: Sequence[QueryLike]) -> list[Embedding]:
        """Embed queries (text, image or both), in order."""
        ...
