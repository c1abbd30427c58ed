"""Training-free pooled views of a multi-vector page.

A ColPali-family page is ``multi (n, d)``: one vector per visual patch on a row-major
``grid (rows, cols)`` (32 x 32 for ColPali; from ``image_grid_thw`` for Qwen2-VL). Storing and
searching all ~1,030 vectors with HNSW is expensive, so the first retrieval stages search much
smaller views, and exact MaxSim over the full page runs only on the candidates:

==============  =========================  ================================================
view            shape                      what it is
==============  =========================  ================================================
``global``      ``(1, d)``                 mean of all patches
``rows``        ``(rows, d)``              mean of each patch row (Qdrant's ColPali recipe)
``cols``        ``(cols, d)``              mean of each patch column
``tiles``       ``(⌈r/t⌉·⌈c/t⌉, d)``       mean of each t x t tile of patches
``smooth_rows`` ``(rows, d)``              row means averaged over a sliding window of rows
``hier``        ``(≈n/f, d)``              hierarchical token pooling (Ward clustering)
``distinct``    ``(≤32, d)``               means of the page's most distinct token groups
``muvera``      ``(r·2^k·p,)``             MUVERA fixed-dimensional encoding (fastembed)
==============  =========================  ================================================

Every view except ``muvera`` is a multi-vector compared with MaxSim, so the query's own token
vectors are used at every stage. ``muvera`` is a single vector; queries get their own encoding
(:meth:`Pooler.query_vector`). All views are deterministic: ``hier`` uses deterministic
clustering and ``muvera`` a fixed seed.

Example:
    >>> import numpy as np
    >>> from mmrag.embedders.pooling import Pooler, row_pool
    >>> page = np.arange(24, dtype=np.float32).reshape(6, 4)    # a 2 x 3 grid of 4-d patches
    >>> row_pool(page, (2, 3)).tolist()
    [[4.0, 5.0, 6.0, 7.0], [16.0, 17.0, 18.0, 19.0]]
    >>> sorted(Pooler().document_views(page, (2, 3)))
    ['distinct', 'global']
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrag.clustering import kcentre_labels

if TYPE_CHECKING:
    from mmrag.config import PoolingConfig

__all__ = [
    "Pooler",
    "col_pool",
    "distinct_pool",
    "hierarchical_pool",
    "mean_pool",
    "row_pool",
    "smooth_row_pool",
    "tile_pool",
]


def _as_grid(multi: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    rows, cols = grid
    if multi.ndim != 2 or multi.shape[0] != rows * cols:
        raise ValueError(
            f"a {rows}x{cols} grid needs {rows * cols} patch vectors; got shape {multi.shape}"
        )
    return multi.astype(np.float32, copy=False).reshape(rows, cols, multi.shape[1])  # (r, c, d)


def mean_pool(multi: np.ndarray) -> np.ndarray:
    """The mean of all patch vectors: ``(n, d) -> (d,)``."""
    return multi.astype(np.float32, copy=False).mean(axis=0)


def row_pool(multi: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The mean of each patch row: ``(rows*cols, d) -> (rows, d)``."""
    return _as_grid(multi, grid).mean(axis=1)


def col_pool(multi: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The mean of each patch column: ``(rows*cols, d) -> (cols, d)``."""
    return _as_grid(multi, grid).mean(axis=0)


def tile_pool(multi: np.ndarray, grid: tuple[int, int], tile: int) -> np.ndarray:
    """The mean of each ``tile x tile`` block, row-major; edge tiles may be smaller."""
    if tile < 1:
        raise ValueError(f"tile must be >= 1, got {tile}")
    patches = _as_grid(multi, grid)  # (r, c, d)
    rows, cols = grid
    out = [
        patches[r : r + tile, c : c + tile].mean(axis=(0, 1))  # (d,)
        for r in range(0, rows, tile)
        for c in range(0, cols, tile)
    ]
    return np.stack(out)  # (ceil(r/t) * ceil(c/t), d)


def smooth_row_pool(multi: np.ndarray, grid: tuple[int, int], window: int) -> np.ndarray:
    """Row means averaged over a centred window of ``window`` rows (clipped at the edges).

    Text lines and figure captions often straddle two patch rows; smoothing lets one pooled
    vector see both.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    rows_mean = row_pool(multi, grid)  # (r, d)
    rows = rows_mean.shape[0]
    before = (window - 1) // 2
    after = window - 1 - before
    cumsum = np.concatenate([np.zeros_like(rows_mean[:1]), rows_mean.cumsum(axis=0)])  # (r+1, d)
    lo = np.clip(np.arange(rows) - before, 0, rows)
    hi = np.clip(np.arange(rows) + after + 1, 0, rows)
    return (cumsum[hi] - cumsum[lo]) / (hi - lo)[:, None]  # (r, d)


def hierarchical_pool(multi: np.ndarray, pool_factor: int) -> np.ndarray:
    """Hierarchical token pooling (Clavié et al., 2024, "Reducing the Footprint of Multi-Vector
    Retrieval with Minimal Performance Impact via Token Pooling"; Answer.AI / PyLate recipe).

    Tokens are clustered with Ward linkage on their cosine-distance profiles into
    ``max(n // pool_factor, 1)`` clusters; each cluster is replaced by its mean. Output rows are
    ordered by cluster label (deterministic).
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    if pool_factor < 1:
        raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
    vectors = multi.astype(np.float32, copy=False)  # (n, d)
    n = vectors.shape[0]
    if pool_factor == 1 or n <= 1:
        return vectors.copy()
    distances = 1.0 - vectors.astype(np.float64) @ vectors.T.astype(np.float64)  # (n, n)
    tree = linkage(distances, metric="euclidean", method="ward")
    labels = fcluster(tree, t=max(n // pool_factor, 1), criterion="maxclust")  # (n,) in 1..k
    return np.stack([vectors[labels == k].mean(axis=0) for k in np.unique(labels)])


class Pooler:
    """Computes the configured pooled views of multi-vector pages (and MUVERA query encodings).

    Example:
        >>> import numpy as np
        >>> from mmrag.config import PoolingConfig
        >>> from mmrag.embedders.pooling import Pooler
        >>> pooler = Pooler(PoolingConfig(views=["global", "tiles"], tile_size=2))
        >>> views = pooler.document_views(np.ones((16, 8), np.float32), (4, 4))
        >>> {name: v.shape for name, v in views.items()}
        {'global': (1, 8), 'tiles': (4, 8)}
    """

    def __init__(self, config: PoolingConfig | None = None) -> None:
        if config is None:
            from mmrag.config import PoolingConfig

            config = PoolingConfig()
        self.config = config
        self._muvera: dict[int, Any] = {}

    @property
    def views(self) -> tuple[str, ...]:
        """The view names this pooler produces, in config order."""
        return tuple(self.config.views)

    def settings(self) -> dict[str, Any]:
        """The settings that determine the views (recorded with an index)."""
        return self.config.model_dump(mode="json")

    def _muvera_for(self, dim: int) -> Any:
        if dim not in self._muvera:
            try:
                from fastembed.postprocess import Muvera
            except ImportError as error:
                from mmrag.errors import MissingDependencyError

                raise MissingDependencyError(
                    "the 'muvera' pooling view uses fastembed's Muvera, which is not installed: "
                    "pip install 'mmrag[muvera]'"
                ) from error

            m = self.config.muvera
            self._muvera[dim] = Muvera(
                dim, k_sim=m.k_sim, dim_proj=m.dim_proj, r_reps=m.r_reps, random_seed=m.seed
            )
        return self._muvera[dim]

    def muvera_dim(self) -> int:
        """The length of the MUVERA encoding (independent of the token dimension)."""
        m = self.config.muvera
        return m.r_reps * (2**m.k_sim) * m.dim_proj

    def view(self, name: str, multi: np.ndarray, grid: tuple[int, int] | None) -> np.ndarray:
        """One named view of a page's visual-token vectors."""
        c = self.config
        if name == "global":
            return mean_pool(multi)[None, :]
        if name == "hier":
            return hierarchical_pool(multi, c.pool_factor)
        if name == "distinct":
            return distinct_pool(multi, DISTINCT_VECTORS)
        if name == "muvera":
            fde = self._muvera_for(multi.shape[1]).process_document(multi.astype(np.float32))
            return np.asarray(fde, dtype=np.float32)
        if grid is None:
            raise ValueError(f"the {name!r} view needs the patch grid (rows, cols) of the page")
        if name == "rows":
            return row_pool(multi, grid)
        if name == "cols":
            return col_pool(multi, grid)
        if name == "tiles":
            return tile_pool(multi, grid, c.tile_size)
        if name == "smooth_rows":
            return smooth_row_pool(multi, grid, c.window)
        raise ValueError(f"unknown pooling view {name!r}; allowed: {', '.join(self.views)}")

    def document_views(
        self, multi: np.ndarray, grid: tuple[int, int] | None
    ) -> dict[str, np.ndarray]:
        """Every configured view of one page, keyed by view name."""
        return {name: self.view(name, multi, grid) for name in self.views}

    def query_vector(self, name: str, query: np.ndarray) -> np.ndarray:
        """What a query searches a view with: its own token vectors, or its MUVERA encoding."""
        if name == "muvera":
            fde = self._muvera_for(query.shape[1]).process_query(query.astype(np.float32))
            return np.asarray(fde, dtype=np.float32)
        return query

    @staticmethod
    def count_vectors(views: dict[str, np.ndarray]) -> int:
        """How many vectors a page's views put into HNSW indexes (a MUVERA encoding counts 1)."""
        return sum(1 if v.ndim == 1 else v.shape[0] for v in views.values())

    @staticmethod
    def tiles_for(grid: tuple[int, int], tile: int) -> int:
        """How many tiles a grid yields."""
        return math.ceil(grid[0] / tile) * math.ceil(grid[1] / tile)


#: How many vectors the ``distinct`` view keeps per page.
DISTINCT_VECTORS = 32


def distinct_pool(multi: np.ndarray, k: int) -> np.ndarray:
    """The means of a page's ``k`` most distinct token groups: ``(n, d) -> (min(k, n), d)``.

    Greedy k-centre clustering (Gonzalez's farthest-point rule on cosine similarity,
    :func:`mmrag.clustering.kcentre_labels`): the first centre is the page's most typical token
    (usually paper background), each next centre is the token least similar to every centre
    chosen so far; every token joins its most similar centre and each group is replaced by its
    mean.
    Near-identical tokens (background, a template header repeated on many pages) collapse into
    one or two vectors, so the ``k`` vectors go to what makes the page different: its content
    regions, each kept as its own vector instead of being averaged with the background around
    it (which is why ``rows`` and ``global`` lose pages whose content is a small region).
    Training-free, page-local and deterministic; a few ms for a 1,024 x 128 page.

    Rows are ordered by centre (most typical first); groups that end up empty are dropped.

    Example:
        >>> import numpy as np
        >>> from mmrag.embedders.pooling import distinct_pool
        >>> page = np.array([[1, 0], [1, 0.01], [1, -0.01], [0, 1]], np.float32)
        >>> distinct_pool(page, 2).round(3).tolist()    # background collapses, content stays
        [[1.0, 0.0], [0.0, 1.0]]
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    vectors = multi.astype(np.float32, copy=False)  # (n, d)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise ValueError(f"distinct_pool needs an (n, d) array with n >= 1; got {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (n, 1)
    labels = kcentre_labels(vectors / np.maximum(norms, 1e-12), k)  # (n,) each token's centre
    n = vectors.shape[0]
    order = np.argsort(labels, kind="stable")  # (n,) tokens grouped by centre
    starts = np.flatnonzero(np.diff(labels[order], prepend=-1))  # (k',) first of each group
    sums = np.add.reduceat(vectors[order], starts, axis=0)  # (k', d)
    counts = np.diff(np.append(starts, n))  # (k',)
    return sums / counts[:, None].astype(np.float32)  # (k', d)
