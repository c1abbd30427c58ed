"""Evaluation metrics against hand-computed values, the report table / JSON, BEIR loading."""

from __future__ import annotations

import json
import math

import pytest

from mmrag.errors import ConfigError
from mmrag.pipeline.evaluate import (
    EvalReport,
    PlanResult,
    evaluate_run,
    latency_stats,
    load_beir,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)

pytestmark = pytest.mark.unit

L2 = math.log2


def test_ndcg_graded_by_hand():
    rel = {"a": 3, "b": 2, "c": 1}
    ranking = ["b", "x", "a", "c"]
    dcg3 = 2 / L2(2) + 0 / L2(3) + 3 / L2(4)
    idcg3 = 3 / L2(2) + 2 / L2(3) + 1 / L2(4)
    assert ndcg_at_k(ranking, rel, 3) == pytest.approx(dcg3 / idcg3)
    dcg4 = dcg3 + 1 / L2(5)
    assert ndcg_at_k(ranking, rel, 4) == pytest.approx(dcg4 / idcg3)
    assert ndcg_at_k(["a", "b", "c"], rel, 3) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], rel, 2) == 0.0


def test_ndcg_ideal_counts_every_judged_document_not_only_retrieved_ones():
    rel = {"a": 1, "b": 1}
    # Only one of two relevant retrieved at rank 1: DCG 1, IDCG 1 + 1/log2(3).
    assert ndcg_at_k(["a"], rel, 10) == pytest.approx(1 / (1 + 1 / L2(3)))
    # k=1 cuts the ideal at one document too.
    assert ndcg_at_k(["a"], rel, 1) == pytest.approx(1.0)


def test_ndcg_ignores_non_positive_grades_and_duplicates():
    rel = {"a": 1, "bad": -1, "zero": 0}
    assert ndcg_at_k(["bad", "zero", "a"], rel, 3) == pytest.approx(1 / L2(4))
    assert ndcg_at_k(["a", "a"], {"a": 1, "b": 1}, 2) == pytest.approx(1 / (1 + 1 / L2(3)))
    assert ndcg_at_k(["a"], {"a": 0}, 5) == 0.0
    with pytest.raises(ConfigError):
        ndcg_at_k(["a"], rel, 0)


def test_recall_and_mrr_by_hand():
    rel = {"a": 1, "b": 2, "c": 1, "n": 0}
    ranking = ["x", "b", "n", "a", "y", "c"]
    assert recall_at_k(ranking, rel, 1) == 0.0
    assert recall_at_k(ranking, rel, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, rel, 5) == pytest.approx(2 / 3)
    assert recall_at_k(ranking, rel, 10) == pytest.approx(1.0)
    assert mrr_at_k(ranking, rel, 10) == 0.5
    assert mrr_at_k([f"x{i}" for i in range(10)] + ["a"], rel, 10) == 0.0  # beyond the cut
    assert mrr_at_k(["n", "a"], rel) == 0.5  # a 0-graded document is not relevant


def test_evaluate_run_averages_over_judged_queries():
    qrels = {
        "q1": {"a": 1},
        "q2": {"b": 2, "c": 1},
        "q3": {"z": 0},  # nothing relevant: not evaluated
        "q4": {"d": 1},  # missing from the run: counts as zeros
    }
    run = {"q1": ["a"], "q2": ["c", "b"], "q3": ["z"]}
    m = evaluate_run(run, qrels, ks=[1, 2])
    assert list(m) == ["ndcg@1", "ndcg@2", "recall@1", "recall@2", "mrr@10"]
    q2_ndcg2 = (1 / L2(2) + 2 / L2(3)) / (2 / L2(2) + 1 / L2(3))
    assert m["ndcg@1"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["ndcg@2"] == pytest.approx((1 + q2_ndcg2 + 0) / 3)
    assert m["recall@1"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["recall@2"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert evaluate_run({}, {"q": {"a": 0}}, ks=[5]) == {
        "ndcg@5": 0.0,
        "recall@5": 0.0,
        "mrr@10": 0.0,
    }


def test_latency_stats():
    stats = latency_stats([0.010, 0.020, 0.030, 0.040])
    assert stats["p50_ms"] == pytest.approx(25.0)
    assert stats["p95_ms"] == pytest.approx(38.5)
    assert stats["qps"] == pytest.approx(4 / 0.1)
    assert latency_stats([]) == {"p50_ms": 0.0, "p95_ms": 0.0, "qps": 0.0}


def report() -> EvalReport:
    def result(plan, base, p50, qps):
        metrics = {
            "ndcg@5": base,
            "ndcg@10": base + 0.01,
            "recall@5": base + 0.1,
            "recall@10": base + 0.2,
            "mrr@10": base - 0.1,
        }
        return PlanResult(plan, metrics, p50_ms=p50, p95_ms=p50 * 2, qps=qps, queries=3)

    return EvalReport(
        dataset="toy",
        split="test",
        embedder_id="e@1",
        corpus=5,
        queries=3,
        ks=(5, 10),
        results=[
            result("full@10", 0.8, 210.0, 4.7),
            result("global@200 -> rows@50 -> full@10", 0.79, 12.5, 78.25),
        ],
    )


def test_table_has_plans_as_rows_and_metrics_as_columns():
    lines = report().table().splitlines()
    assert lines[0].split() == [
        "plan",
        "NDCG@5",
        "NDCG@10",
        "Recall@5",
        "Recall@10",
        "MRR@10",
        "p50",
        "ms",
        "p95",
        "ms",
        "QPS",
    ]
    assert lines[1].startswith("full@10 ")
    assert lines[1].split()[1:] == [
        "0.800",
        "0.810",
        "0.900",
        "1.000",
        "0.700",
        "210.00",
        "420.00",
        "4.7",
    ]
    assert lines[2].startswith("global@200 -> rows@50 -> full@10")
    assert lines[2].split()[-1] == "78.2"
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_report_json_round_trip():
    data = json.loads(report().to_json())
    assert data["ks"] == [5, 10]
    assert [r["plan"] for r in data["results"]] == ["full@10", "global@200 -> rows@50 -> full@10"]
    assert data["results"][1]["metrics"]["ndcg@10"] == pytest.approx(0.8)
    assert data["results"][0]["qps"] == 4.7
    assert data["index"] is None


# -- BEIR loading --------------------------------------------------------------------------------


def write_dataset(root, corpus_lines, queries_lines, qrels_text, split="test"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(x) for x in corpus_lines) + "\n")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(x) for x in queries_lines) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / f"{split}.tsv").write_text(qrels_text)


def test_load_beir_reads_images_pdf_pages_and_graded_qrels(tmp_path):
    (tmp_path / "ds" / "img").mkdir(parents=True)
    (tmp_path / "ds" / "img" / "p1.png").write_bytes(b"fake")
    import pymupdf

    with pymupdf.open() as pdf:  # to_item reads the page through ingest: a real 3-page PDF
        for _ in range(3):
            pdf.new_page(width=200, height=100)
        pdf.save(tmp_path / "ds" / "doc.pdf")
    write_dataset(
        tmp_path / "ds",
        [
            {"_id": "d1", "image": "img/p1.png", "text": "hello"},
            {"corpus-id": 2, "pdf": "doc.pdf", "page": 3},
            {"_id": "d3", "text": "only text"},
        ],
        [
            {"_id": "q1", "text": "what?"},
            {"query-id": "q2", "query": "who?"},
            {"_id": "q3", "text": "unjudged"},
        ],
        "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t2\t1\nq2\td3\t0\n",
    )
    ds = load_beir(tmp_path / "ds")
    assert ds.name == "ds" and ds.split == "test"
    assert ds.corpus["d1"].image == (tmp_path / "ds" / "img" / "p1.png").resolve()
    assert ds.corpus["2"].pdf.name == "doc.pdf" and ds.corpus["2"].page == 3
    assert ds.corpus["d3"].text == "only text"
    assert ds.queries == {"q1": "what?", "q2": "who?", "q3": "unjudged"}
    assert ds.qrels == {"q1": {"d1": 2, "2": 1}, "q2": {"d3": 0}}
    assert ds.judged_queries == ["q1"]
    item = ds.corpus["2"].to_item("e@1")
    assert (item.modality.value, item.page, item.metadata["beir_id"]) == ("pdf_page", 3, "2")
    assert item.id == ds.corpus["2"].to_item("e@1").id


def test_load_beir_accepts_trec_qrels_without_header(tmp_path):
    write_dataset(
        tmp_path, [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], "q 0 d 1\n", split="dev"
    )
    assert load_beir(tmp_path, split="dev").qrels == {"q": {"d": 1}}


@pytest.mark.parametrize(
    ("corpus", "qrels", "split", "message"),
    [
        ([{"text": "no id"}], "q\td\t1\n", "test", "needs an '_id'"),
        ([{"_id": "d"}], "q\td\t1\n", "test", "has no 'image' path"),
        ([{"_id": "d", "image": "missing.png"}], "q\td\t1\n", "test", "not found"),
        ([{"_id": "d", "text": "t"}, {"_id": "d", "text": "u"}], "", "test", "duplicate _id"),
        ([{"_id": "d", "text": "t"}], "q\td\n", "test", "expected 'query-id"),
        ([{"_id": "d", "text": "t"}], "q\td\tx\n", "test", "not a number"),
        ([{"_id": "d", "text": "t"}], "q\td\t1\n", "train", "splits here: \\['test'\\]"),
        ([{"_id": "d", "image": {"bytes": "..."}}], "", "test", "relative to the dataset"),
    ],
)
def test_load_beir_errors_name_the_file_and_the_fix(tmp_path, corpus, qrels, split, message):
    write_dataset(tmp_path, corpus, [{"_id": "q", "text": "t"}], qrels)
    with pytest.raises(ConfigError, match=message):
        load_beir(tmp_path, split=split)


def test_load_beir_on_a_missing_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        load_beir(tmp_path / "nope")
