"""Our retrieval metrics equal trec_eval's (through pytrec_eval) on random graded runs: NDCG@k
(``ndcg_cut``), Recall@k (``recall``) and MRR@10 (``recip_rank`` of the top 10)."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval

from mmrag.pipeline.evaluate import evaluate_run, mrr_at_k, ndcg_at_k, recall_at_k

pytestmark = pytest.mark.unit

KS = (1, 3, 5, 10, 20)


def random_case(seed: int) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
    """Graded qrels (0-3, some queries with nothing relevant) and rankings of 0-40 documents,
    judged and unjudged mixed."""
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, list[str]] = {}
    for q in range(25):
        judged = rng.choice(docs, size=int(rng.integers(1, 12)), replace=False)
        qrels[f"q{q}"] = {str(d): int(rng.integers(0, 4)) for d in judged}
        run[f"q{q}"] = [str(d) for d in rng.permutation(docs)[: int(rng.integers(0, 41))]]
    return qrels, run


def trec_eval(qrels, run) -> dict[str, dict[str, float]]:
    """pytrec_eval's per-query measures; scores fall with rank (no ties to break)."""
    ks = ",".join(map(str, KS))
    scored = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in run.items()}
    top10 = {q: {d: float(10 - i) for i, d in enumerate(r[:10])} for q, r in run.items()}
    measures = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{ks}", f"recall.{ks}"})
    result = measures.evaluate(scored)
    for q, values in pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10).items():
        result[q]["recip_rank_10"] = values["recip_rank"]
    return result


@pytest.mark.parametrize("seed", range(8))
def test_per_query_metrics_equal_trec_eval(seed):
    qrels, run = random_case(seed)
    reference = trec_eval(qrels, run)
    compared = 0
    for q, rel in qrels.items():
        if not any(g > 0 for g in rel.values()) or not run[q]:
            continue  # evaluate_run skips the first; trec_eval drops queries with no ranking
        expected = reference[q]
        for k in KS:
            assert ndcg_at_k(run[q], rel, k) == pytest.approx(expected[f"ndcg_cut_{k}"], abs=1e-9)
            assert recall_at_k(run[q], rel, k) == pytest.approx(expected[f"recall_{k}"], abs=1e-9)
        assert mrr_at_k(run[q], rel, 10) == pytest.approx(expected["recip_rank_10"], abs=1e-9)
        compared += 1
    assert compared >= 10


@pytest.mark.parametrize("seed", range(4))
def test_mean_metrics_equal_trec_eval(seed):
    qrels, run = random_case(100 + seed)
    run = {q: r or ["never-judged"] for q, r in run.items()}  # trec_eval needs a ranking
    judged = {q: rel for q, rel in qrels.items() if any(g > 0 for g in rel.values())}
    reference = trec_eval(judged, run)
    ours = evaluate_run(run, qrels, KS)
    for k in KS:
        for name, theirs in ((f"ndcg@{k}", f"ndcg_cut_{k}"), (f"recall@{k}", f"recall_{k}")):
            mean = np.mean([reference[q][theirs] for q in judged])
            assert ours[name] == pytest.approx(mean, abs=1e-9), name
    assert ours["mrr@10"] == pytest.approx(
        np.mean([reference[q]["recip_rank_10"] for q in judged]), abs=1e-9
    )
