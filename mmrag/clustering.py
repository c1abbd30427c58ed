"""Greedy k-centre grouping of a page's token vectors, shared by the ``distinct`` pooled view
(:func:`mmrag.embedders.pooling.distinct_pool`) and the stored ``full`` page's token merging
(:func:`mmrag.store.tokens.merge_tokens`).

Example:
    >>> import numpy as np
    >>> from mmrag.clustering import kcentre_labels
    >>> page = np.array([[1, 0], [1, 0.01], [1, -0.01], [0, 1]], np.float32)
    >>> kcentre_labels(page, 2).tolist()     # the background group, then the distinct token
    [0, 0, 0, 1]
"""

from __future__ import annotations

import numpy as np

__all__ = ["kcentre_labels"]


def kcentre_labels(unit: np.ndarray, k: int) -> np.ndarray:
    """Each token's group among at most ``k`` groups: ``(n, d)`` unit vectors -> ``(n,)`` ints.

    Gonzalez's farthest-point rule on cosine similarity: the first centre is the most typical
    token (the one most similar to the mean: usually paper background), each next centre the
    token least similar to every centre so far; every token joins its most similar centre.
    Near-identical tokens (background, a repeated template) share a group, so small groups are
    what makes the page different. Groups are numbered by centre (most typical first); stops
    early when every token duplicates a centre. Deterministic; a few ms for 1,024 x 128.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if unit.ndim != 2 or unit.shape[0] == 0:
        raise ValueError(f"kcentre_labels needs an (n, d) array with n >= 1; got {unit.shape}")
    n = unit.shape[0]
    k = min(k, n)
    # Matrix-vector products only: small matrix-matrix products hit multithreaded BLAS, which
    # stalls for tens of ms when the cores are busy (measured while a store was indexing).
    similarity = np.empty((k, n), dtype=np.float32)  # (k, n): each token to each centre
    similarity[0] = unit @ unit[int(np.argmax(unit @ unit.mean(axis=0)))]
    nearest = similarity[0].copy()  # (n,): similarity to the closest centre so far
    found = 1
    while found < k:
        far = int(np.argmin(nearest))
        if nearest[far] >= 1.0 - 1e-6:
            break  # every token duplicates a centre: fewer than k groups
        similarity[found] = unit @ unit[far]
        np.maximum(nearest, similarity[found], out=nearest)
        found += 1
    return np.argmax(similarity[:found], axis=0)
