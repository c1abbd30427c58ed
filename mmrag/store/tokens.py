"""Token merging of a stored ``full`` page (``pooling.full_pool_factor`` > 1).

It lives with the store, which applies it where a page's point is built
(:meth:`mmrag.store.records.Point.from_item`); the pooled views of :mod:`mmrag.embedders.pooling`
are computed by the embedding side. The merged page keeps, per original token, the index of the
vector it went into (:func:`merge_tokens`), stored with the point so region citations still map
a match back to its patches (:func:`pack_assignment`, :func:`unpack_assignment`).

Example:
    >>> import numpy as np
    >>> from mmrag.store.tokens import merge_pool
    >>> merge_pool(np.eye(4, dtype=np.float32), 2).shape
    (2, 4)
"""

from __future__ import annotations

import base64
import zlib

import numpy as np

from mmrag.clustering import kcentre_labels

__all__ = [
    "MERGE_GROUPS",
    "MERGE_METHOD",
    "merge_pool",
    "merge_tokens",
    "pack_assignment",
    "unpack_assignment",
]

#: The merge recorded with a collection whose ``full`` pages are merged (``full_merge``): a
#: collection merged by another method (an earlier version's whole-page matching) is a mismatch,
#: so one collection never mixes pages merged two ways.
MERGE_METHOD = "groups"

#: How many k-centre groups a page is split into before merging (:func:`merge_tokens`).
MERGE_GROUPS = 32


def merge_pool(multi: np.ndarray, pool_factor: int) -> np.ndarray:
    """The merged vectors of :func:`merge_tokens` (without the assignment).

    Example:
        >>> import numpy as np
        >>> from mmrag.store.tokens import merge_pool
        >>> page = np.random.default_rng(0).standard_normal((1024, 128)).astype(np.float32)
        >>> merge_pool(page, 2).shape, merge_pool(page, 3).shape, merge_pool(page, 1).shape
        ((512, 128), (342, 128), (1024, 128))
    """
    return merge_tokens(multi, pool_factor)[0]


def merge_tokens(multi: np.ndarray, pool_factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge a page's ``n`` tokens into ``ceil(n / pool_factor)`` vectors, where the page is
    redundant: ``(merged (m, d), assignment (n,))``, ``assignment[i]`` the merged vector that
    token ``i`` went into.

    The tokens are first grouped (greedy k-centre, :data:`MERGE_GROUPS` groups,
    :func:`mmrag.clustering.kcentre_labels`): paper background and repeated templates form a
    few large groups, content regions small ones. The budget of vectors is water-filled over
    the groups: every group keeps ``min(size, cap)`` vectors, with the largest ``cap`` that
    fits, so small groups (what the page is about) stay whole and only the large, redundant
    ones shrink. Each group shrinks by rounds of bipartite matching (Bolya et al., 2023, "Token
    Merging"): its tokens split alternately into two sets, each token of the first finds its
    most similar (cosine) token of the second, and the most similar pairs merge (size-weighted
    means, then scaled to the mean length of the tokens they replace).

    Measured on the benchmarks' synthetic pages (2,000 pages, 200 queries, exact MaxSim over the
    merged float32 means against every token): factor 2 kept the exact top-1 for 0.995-1.00 of
    queries and 0.98-1.00 of the top 10, where merging the whole page at once (the same
    matching without groups) kept 0.68-1.00 and 0.54-0.89. In the store (``benchmarks/scale.py``,
    turbo8, factor 3, hard queries) ``full@10`` alone kept 0.99 top-1. 3-6 ms per page.

    Example:
        >>> import numpy as np
        >>> from mmrag.store.tokens import merge_tokens
        >>> rng = np.random.default_rng(0)
        >>> paper = np.ones((12, 8), np.float32) + 0.01 * rng.standard_normal((12, 8))
        >>> word = np.eye(8, dtype=np.float32)[:2]              # two distinct content tokens
        >>> merged, assignment = merge_tokens(np.concatenate([paper, word]).astype(np.float32), 2)
        >>> merged.shape, assignment.shape                      # 14 tokens -> 7 vectors
        ((7, 8), (14,))
        >>> bool(np.allclose(merged[assignment[12]], word[0]))  # content kept as it was
        True
    """
    if pool_factor < 1:
        raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
    tokens = np.asarray(multi, dtype=np.float32)  # (n, d)
    n = tokens.shape[0]
    target = max(-(-n // pool_factor), 1)
    if target >= n:
        return tokens.copy(), np.arange(n)
    unit = tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-12)
    labels = kcentre_labels(unit, min(MERGE_GROUPS, target))  # (n,)
    sizes = np.bincount(labels)  # (g,) every group has its centre: none is empty
    budgets = _water_fill(sizes, target)
    merged, assignment, offset = [], np.empty(n, dtype=np.int64), 0
    for group, budget in enumerate(budgets):
        members = np.flatnonzero(labels == group)
        vectors, local = _bipartite(tokens[members], int(budget))
        merged.append(vectors)
        assignment[members] = offset + local
        offset += vectors.shape[0]
    # Each merged vector gets the mean length of its tokens (a mean of unit tokens is shorter):
    # Qdrant normalises cosine vectors on write, qdrant-client's local mode does not, so every
    # backend then stores, scores and returns the same vectors.
    out = np.concatenate(merged)  # (m, d)
    lengths = np.linalg.norm(tokens, axis=1)  # (n,)
    counts = np.bincount(assignment, minlength=out.shape[0])
    wanted = np.bincount(assignment, weights=lengths, minlength=out.shape[0]) / counts
    out *= (wanted / np.maximum(np.linalg.norm(out, axis=1), 1e-12))[:, None].astype(np.float32)
    return out, assignment


def _water_fill(sizes: np.ndarray, target: int) -> np.ndarray:
    """Vectors kept per group: ``min(size, cap)`` with the largest ``cap`` whose total fits
    ``target``; what is left goes one each to the largest capped groups (total = ``target``
    when ``target >= len(sizes)``)."""
    low, high = 1, int(sizes.max())
    while low < high:  # the largest cap with sum(min(sizes, cap)) <= target
        cap = (low + high + 1) // 2
        if int(np.minimum(sizes, cap).sum()) <= target:
            low = cap
        else:
            high = cap - 1
    budgets = np.minimum(sizes, low)
    spare = target - int(budgets.sum())
    capped = np.flatnonzero(sizes > low)
    for group in capped[np.argsort(-sizes[capped], kind="stable")][: max(spare, 0)]:
        budgets[group] += 1
    return budgets


def _bipartite(tokens: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Bipartite-matching merges of ``(n, d)`` tokens down to ``target``: ``(vectors, owner)``
    with ``owner[i]`` the vector that token ``i`` ended in. Each round at most halves them."""
    owner = np.arange(tokens.shape[0])
    weights = np.ones(tokens.shape[0], dtype=np.float32)  # tokens merged into each vector
    while tokens.shape[0] > target:
        a, b = tokens[0::2], tokens[1::2]  # (na, d), (nb, d)
        wa, wb = weights[0::2], weights[1::2]
        merges = min(tokens.shape[0] - target, a.shape[0])
        unit_a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        unit_b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        similarity = unit_a @ unit_b.T  # (na, nb)
        best = similarity.argmax(axis=1)  # (na,) partner of each a token
        order = np.argsort(-similarity[np.arange(a.shape[0]), best], kind="stable")
        merged, kept = order[:merges], np.sort(order[merges:])
        into = np.zeros((b.shape[0], merged.shape[0]), dtype=np.float32)  # (nb, merges)
        into[best[merged], np.arange(merged.shape[0])] = wa[merged]
        sums = b * wb[:, None] + into @ a[merged]  # (nb, d) weighted sums
        new_wb = wb + into.sum(axis=1)
        # Where each current vector goes: kept a tokens first, then the (merged-into) b ones.
        moved = np.empty(tokens.shape[0], dtype=np.int64)
        moved[0::2][kept] = np.arange(kept.shape[0])
        moved[0::2][merged] = kept.shape[0] + best[merged]
        moved[1::2] = kept.shape[0] + np.arange(b.shape[0])
        owner = moved[owner]
        tokens = np.concatenate([a[kept], sums / new_wb[:, None]])  # (n - merges, d)
        weights = np.concatenate([wa[kept], new_wb])
    return tokens, owner


def pack_assignment(assignment: np.ndarray) -> str:
    """A merge assignment as compact text for a payload (zlib-compressed uint16, base64).

    Example:
        >>> import numpy as np
        >>> from mmrag.store.tokens import pack_assignment, unpack_assignment
        >>> unpack_assignment(pack_assignment(np.array([0, 0, 1, 2]))).tolist()
        [0, 0, 1, 2]
    """
    raw = np.asarray(assignment, dtype="<u2").tobytes()
    return base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def unpack_assignment(text: str) -> np.ndarray:
    """The assignment packed by :func:`pack_assignment` (``ValueError`` when unreadable)."""
    try:
        raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"unreadable token-merge assignment: {exc}") from exc
    return np.frombuffer(raw, dtype="<u2").astype(np.int64)
