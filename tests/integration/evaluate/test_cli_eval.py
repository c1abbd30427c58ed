"""`mmrag eval` on ViDoRe's Hugging Face layouts (parquet as on the Hub, a hub id), with a split,
progress while the corpus is indexed, and one clear error when a dataset cannot be had."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmrag.cli import app
from mmrag.pipeline.pipeline import Pipeline

pytestmark = pytest.mark.integration

datasets = pytest.importorskip("datasets")

runner = CliRunner()
PLANS = ["tokens@128 -> distinct@32 -> full@10", "full@10"]  # the tiny config's plan, exact MaxSim


def run_eval(*args: str) -> dict:
    result = runner.invoke(app, ["eval", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_eval_on_a_vidore_v1_parquet_dataset(tmp_path, vidore, eval_config_file):
    root = vidore.write_v1_parquet(tmp_path / "docvqa_test_subsampled")
    result = runner.invoke(app, ["eval", str(root), "-c", str(eval_config_file), "--k", "1"])
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.strip().splitlines()
    columns = ["plan", "NDCG@1", "Recall@1", "MRR@10", "p50", "ms", "p95", "ms", "QPS"]
    assert header.split() == columns
    assert [row.split("  ")[0] for row in rows] == PLANS
    assert "indexing corpus" in result.stderr  # the progress bar, on stderr

    report = run_eval(str(root), "-c", str(eval_config_file), "--k", "10")
    assert (report["dataset"], report["split"]) == ("docvqa_test_subsampled", "test")
    assert (report["corpus"], report["queries"]) == (5, 4)  # 5 pages, 4 distinct questions
    assert (report["index"]["indexed"], report["index"]["skipped"]) == (0, 5)  # indexed once
    for plan in report["results"]:
        # 5 pages and 10 hits: every page comes back, so each query finds its page.
        assert plan["metrics"]["recall@10"] == 1.0, plan
        assert 0 < plan["metrics"]["ndcg@10"] <= 1 and 0 < plan["metrics"]["mrr@10"] <= 1
        assert plan["queries"] == 4


def test_eval_on_a_vidore_v2_dataset_picks_the_split(tmp_path, vidore, eval_config_file):
    root = vidore.write_v2_parquet(tmp_path / "esg_reports_v2")
    test = run_eval(str(root), "-c", str(eval_config_file), "--k", "5")
    assert (test["split"], test["corpus"], test["queries"]) == ("test", 5, 3)
    assert test["index"]["indexed"] == 5 and test["index"]["failed"] == []
    dev = run_eval(str(root), "-c", str(eval_config_file), "--k", "5", "--split", "dev")
    assert (dev["split"], dev["corpus"], dev["queries"]) == ("dev", 5, 1)
    assert all(plan["metrics"]["recall@5"] == 1.0 for plan in test["results"] + dev["results"])

    result = runner.invoke(app, ["eval", str(root), "-c", str(eval_config_file), "--split", "x"])
    assert result.exit_code == 2
    assert "split 'x'" in result.output and "Traceback" not in result.output


def test_eval_by_hub_id_reads_both_layouts(tmp_path, vidore, eval_config_file, monkeypatch):
    """The Hub, served from local copies: `datasets` answers for a repo id as it would online."""
    copies = {
        "vidore/esg_reports_v2": vidore.write_v2_parquet(tmp_path / "hub" / "esg"),
        "vidore/docvqa_test_subsampled": vidore.write_v1_parquet(tmp_path / "hub" / "docvqa"),
    }
    load = datasets.load_dataset

    def files(repo: str, config: str | None, split: str) -> list[str]:
        folder = copies[repo] / (config or "data")
        return [str(p) for p in sorted(folder.glob(f"{split}-*.parquet"))]

    def config_names(repo: str, **_: object) -> list[str]:
        return ["corpus", "qrels", "queries"] if (copies[repo] / "corpus").is_dir() else ["default"]

    def split_names(repo: str, config: str | None = None, **_: object) -> list[str]:
        return sorted({Path(p).name.split("-")[0] for p in files(repo, config, "*")})

    def load_dataset(repo: str, config: str | None = None, *, split: str, **_: object):
        found = files(repo, config, split)
        if not found:
            raise ValueError(
                f'Unknown split "{split}". Should be one of {split_names(repo, config)}.'
            )
        return load("parquet", data_files=found, split="train")

    monkeypatch.setattr(datasets, "get_dataset_config_names", config_names)
    monkeypatch.setattr(datasets, "get_dataset_split_names", split_names)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)

    v2 = run_eval("vidore/esg_reports_v2", "-c", str(eval_config_file), "--split", "dev")
    assert (v2["dataset"], v2["split"], v2["corpus"], v2["queries"]) == (
        "vidore/esg_reports_v2",
        "dev",
        5,
        1,
    )
    v1 = run_eval("vidore/docvqa_test_subsampled", "-c", str(eval_config_file))
    assert (v1["dataset"], v1["corpus"], v1["queries"]) == ("vidore/docvqa_test_subsampled", 5, 4)
    result = runner.invoke(
        app,
        ["eval", "vidore/docvqa_test_subsampled", "-c", str(eval_config_file), "--split", "dev"],
    )
    assert result.exit_code == 2 and "Unknown split" in result.output


def test_a_dataset_that_cannot_be_had_is_one_clear_error(tmp_path, eval_config_file):
    for source, message in [
        ("nobody/no_such_set", "HF_HUB_OFFLINE is set"),  # the tests run offline
        (str(tmp_path / "missing"), "no such folder"),
    ]:
        result = runner.invoke(app, ["eval", source, "-c", str(eval_config_file)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) <= 3


def test_python_api_reports_progress_and_an_unreadable_page(tmp_path, vidore, eval_config):
    root = vidore.write_v2_parquet(tmp_path / "esg", broken_page=True)
    seen: list[int] = []
    with Pipeline(eval_config) as pipe:
        report = pipe.evaluate(root, ks=[5], split="test", on_progress=seen.append)
    assert sum(seen) == 5  # every page: 4 indexed, 1 failed
    assert report.index.indexed == 4
    (failure,) = report.index.failed
    assert failure.source == "corpus:4" and "Pillow cannot read" in failure.reason
    assert report.queries == 3 and len(report.results) == 2
    assert "NDCG@5" in report.table()
