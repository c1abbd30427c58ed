"""Embedders: the protocol, the model catalogue, and the families (CLIP, VLM2Vec, E5-V, ColPali).

Importing this package is cheap; each family module imports torch / transformers itself.
"""

from mmrag.embedders.base import Embedder, Query

__all__ = ["Embedder", "Query"]
