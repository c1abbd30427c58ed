"""MaxSim (late interaction) scoring, implemented once and used by every caller.

``score(q, d) = Σ_i max_j <q_i, d_j>``: each query token takes its best-matching document token,
and the maxima are summed (ColBERT; ColPali's ``score_retrieval`` computes the same).

Example:
    >>> import numpy as np
    >>> from mmrag.scoring import maxsim
    >>> q = [np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)]
    >>> d = [np.array([[1.0, 0.0]], np.float32), np.array([[0.6, 0.8], [0.0, 1.0]], np.float32)]
    >>> maxsim(q, d).astype(float).round(2).tolist()
    [[1.0, 1.6]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["maxsim", "maxsim_torch"]


def _pad(arrays: Sequence[Any], device: Any, dtype: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ragged ``(n_i, d)`` arrays into ``(b, n_max, d)`` and a ``(b, n_max)`` mask."""
    import torch

    tensors = [torch.as_tensor(a).to(device=device, dtype=dtype) for a in arrays]
    dim = tensors[0].shape[-1]
    longest = max(t.shape[0] for t in tensors)
    out = torch.zeros((len(tensors), longest, dim), device=device, dtype=dtype)  # (b, n, d)
    valid = torch.zeros((len(tensors), longest), device=device, dtype=torch.bool)  # (b, n)
    for i, t in enumerate(tensors):
        if t.ndim != 2 or t.shape[-1] != dim:
            raise ValueError(f"every multi-vector must be (n, {dim}); item {i} is {tuple(t.shape)}")
        out[i, : t.shape[0]] = t
        valid[i, : t.shape[0]] = True
    return out, valid


def maxsim_torch(
    queries: Sequence[Any],
    documents: Sequence[Any],
    *,
    batch_size: int = 128,
    device: Any = None,
    dtype: Any = None,
) -> torch.Tensor:
    """MaxSim scores as a ``(n_queries, n_docs)`` float32 tensor.

    ``queries`` and ``documents`` are sequences of ``(tokens, dim)`` arrays or tensors of any
    length. Padded document tokens never win the max (they are set to -inf), so padding does not
    change a score. Documents are processed ``batch_size`` at a time to bound memory.
    """
    import torch

    if len(queries) == 0 or len(documents) == 0:
        return torch.zeros((len(queries), len(documents)), dtype=torch.float32)
    first = torch.as_tensor(queries[0])
    device = device if device is not None else first.device
    dtype = dtype if dtype is not None else (first.dtype if first.is_floating_point() else None)
    dtype = dtype or torch.float32
    if device is not None and torch.device(device).type == "cpu" and dtype == torch.float16:
        dtype = torch.float32  # half-precision matmul on CPU is slow and imprecise
    q, q_valid = _pad(queries, device, dtype)  # (nq, tq, d), (nq, tq)
    scores = []
    with torch.inference_mode():
        for start in range(0, len(documents), batch_size):
            d, d_valid = _pad(documents[start : start + batch_size], device, dtype)  # (nd, td, d)
            sim = torch.einsum("qid,cjd->qcij", q, d)  # (nq, nd, tq, td)
            sim = sim.masked_fill(~d_valid[None, :, None, :], float("-inf"))
            best = sim.amax(dim=3)  # (nq, nd, tq): best document token per query token
            best = best.masked_fill(~q_valid[:, None, :], 0.0)  # padded query tokens add nothing
            scores.append(best.sum(dim=2).float())  # (nq, nd)
    return torch.cat(scores, dim=1)


def maxsim(
    queries: Sequence[Any], documents: Sequence[Any], *, batch_size: int = 128
) -> np.ndarray:
    """MaxSim scores as a ``(n_queries, n_docs)`` float32 NumPy array (see :func:`maxsim_torch`)."""
    return maxsim_torch(queries, documents, batch_size=batch_size).cpu().numpy()
