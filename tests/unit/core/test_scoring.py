"""MaxSim: one implementation, checked against a direct loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrag.scoring import maxsim, maxsim_torch

pytestmark = pytest.mark.unit


def _loop_maxsim(q: np.ndarray, d: np.ndarray) -> float:
    return float(sum(max(float(qi @ dj) for dj in d) for qi in q))


def test_maxsim_equals_a_direct_loop_on_ragged_inputs():
    rng = np.random.default_rng(0)
    queries = [rng.standard_normal((n, 8)).astype(np.float32) for n in (3, 5)]
    docs = [rng.standard_normal((n, 8)).astype(np.float32) for n in (4, 9, 1, 7)]
    scores = maxsim(queries, docs, batch_size=3)  # a batch boundary inside the docs
    assert scores.shape == (2, 4) and scores.dtype == np.float32
    for i, q in enumerate(queries):
        for j, d in enumerate(docs):
            assert scores[i, j] == pytest.approx(_loop_maxsim(q, d), rel=1e-5)


def test_padding_never_wins_even_when_all_similarities_are_negative():
    q = [np.array([[1.0, 0.0]], np.float32)]
    docs = [np.array([[-1.0, 0.0]], np.float32), np.array([[-0.5, 0.0], [-2.0, 0.0]], np.float32)]
    np.testing.assert_allclose(maxsim(q, docs), [[-1.0, -0.5]])


def test_accepts_tensors_and_float16():
    rng = np.random.default_rng(1)
    q = [torch.from_numpy(rng.standard_normal((4, 8)).astype(np.float16))]
    d = [torch.from_numpy(rng.standard_normal((6, 8)).astype(np.float16))]
    out = maxsim_torch(q, d)
    assert out.dtype == torch.float32
    expected = _loop_maxsim(q[0].float().numpy(), d[0].float().numpy())
    assert float(out[0, 0]) == pytest.approx(expected, rel=1e-3)


def test_empty_inputs_give_empty_scores_and_bad_shapes_are_named():
    assert maxsim([], [np.zeros((2, 4), np.float32)]).shape == (0, 1)
    with pytest.raises(ValueError, match=r"\(n, 4\); item 1"):
        maxsim([np.zeros((2, 4), np.float32)], [np.zeros((2, 4)), np.zeros((2, 3))])
