"""A LangChain ``Embeddings`` model as an mmrag embedder: :class:`LangChainEmbedder`.

It embeds each item's *text* (``Item.text``) with ``embed_documents`` and each query's text with
``embed_query``: one dense vector per item (``kind = "single"``), searched with a ``dense@K``
plan, cosine similarity. It is what :class:`~mmrag.integrations.langchain.MmragVectorStore`
uses when it is given ``embedding=`` (LangChain's own convention), so the store's vector
space is LangChain's and ``similarity_search_by_vector`` works.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings

from mmrag.embedders.base import Query
from mmrag.errors import ConfigError
from mmrag.types import Embedding

if TYPE_CHECKING:
    from mmrag.embedders.base import QueryLike
    from mmrag.types import Item

__all__ = ["LangChainEmbedder"]

#: Attributes of common LangChain embedding classes that name the model or change its vectors;
#: they are part of the embedder id (so an index refuses another model).
_ID_ATTRIBUTES = ("model", "model_name", "model_id", "deployment", "dimensions", "size")


class LangChainEmbedder:
    """An mmrag :class:`~mmrag.embedders.base.Embedder` over a LangChain ``Embeddings`` model.

    Documents are embedded from their text (``Item.text``; a page image is not looked at) and
    queries from their text (an image query is an error). ``id`` is
    ``langchain:<module.Class>`` plus a hash of the model's identifying attributes (``model``,
    ``model_name``, ``dimensions``, ``size`` …): an index built with one model refuses
    another. Pass ``id=`` to name the model yourself. ``dim`` is read from one
    ``embed_query`` call, when the store first needs it.

    Example:
        >>> from langchain_core.embeddings import DeterministicFakeEmbedding
        >>> from mmrag.integrations.langchain.embeddings import LangChainEmbedder
        >>> embedder = LangChainEmbedder(DeterministicFakeEmbedding(size=6))
        >>> embedder.kind, embedder.dim, embedder.id.split("#")[0]
        ('single', 6, 'langchain:langchain_core.embeddings.fake.DeterministicFakeEmbedding')
        >>> embedder.embed_queries(["solar revenue"])[0].dense.shape
        (6,)
    """

    kind: Literal["single", "multi"] = "single"

    def __init__(
        self, embeddings: Embeddings, *, id: str | None = None, batch_size: int = 32
    ) -> None:
        if not isinstance(embeddings, Embeddings):
            raise ConfigError(
                f"embedding must be a LangChain Embeddings object; got {type(embeddings).__name__}"
            )
        self.embeddings = embeddings
        self.batch_size = batch_size  # texts per embed_documents call of an indexing job
        self._id = id
        self._dim: int | None = None

    @property
    def id(self) -> str:
        """``langchain:<module.Class>#<settings hash>`` (or the ``id`` given)."""
        if self._id is None:
            cls = type(self.embeddings)
            settings = {
                name: value
                for name in _ID_ATTRIBUTES
                if isinstance(value := getattr(self.embeddings, name, None), str | int | float)
            }
            base = f"langchain:{cls.__module__}.{cls.__qualname__}"
            if settings:
                text = json.dumps(settings, sort_keys=True)
                base += "#" + hashlib.sha256(text.encode()).hexdigest()[:12]
            self._id = base
        return self._id

    @property
    def dim(self) -> int:
        """The vector dimension (one ``embed_query`` call, the first time)."""
        if self._dim is None:
            self._dim = len(self.embeddings.embed_query("dimension probe"))
        return self._dim

    def embed_documents(self, items: Iterable[Item]) -> list[Embedding]:
        """The embedding of each item's text (an item with no text embeds ``""``)."""
        texts = [item.text or "" for item in items]
        if not texts:
            return []
        return [_dense(v) for v in self.embeddings.embed_documents(texts)]

    def embed_queries(self, queries: Sequence[QueryLike]) -> list[Embedding]:
        """The embedding of each query's text."""
        out = []
        for query in queries:
            coerced = Query.coerce(query)
            if coerced.text is None:
                raise ConfigError(
                    "this index is embedded by a LangChain text embedding model: a query needs "
                    "text (image queries need a multimodal mmrag embedder)"
                )
            out.append(_dense(self.embeddings.embed_query(coerced.text)))
        return out

    def __repr__(self) -> str:
        return f"LangChainEmbedder({type(self.embeddings).__name__}, id={self.id!r})"


def _dense(vector: Any) -> Embedding:
    return Embedding(dense=np.asarray(vector, dtype=np.float32).reshape(-1))
