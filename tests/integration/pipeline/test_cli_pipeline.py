"""The CLI runs the same pipeline: index, search, delete, quickstart."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from mmrag.cli import app

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def config_file(tmp_path, tiny_config):
    path = tmp_path / "mmrag.toml"
    tiny_config.save(path)
    return path


def test_index_search_delete(config_file, sample_dir, tmp_path):
    report = tmp_path / "report.json"
    result = runner.invoke(
        app, ["index", str(sample_dir), "-c", str(config_file), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["indexed"] > 5 and data["failed"] == []

    result = runner.invoke(app, ["search", "revenue", "-c", str(config_file), "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    assert {"tokens", "distinct", "full"} == set(hits[0]["stage_scores"])  # the default plan

    pdf = str(sample_dir / "acme_solar_annual_report_2024.pdf")
    result = runner.invoke(
        app, ["search", "revenue", "-c", str(config_file), "--source", pdf, "--json"]
    )
    assert {h["item"]["source"] for h in json.loads(result.stdout)} == {pdf}

    result = runner.invoke(app, ["delete", pdf, "-c", str(config_file)])
    assert result.exit_code == 0 and "removed" in result.output
    result = runner.invoke(app, ["delete", pdf, "-c", str(config_file)])
    assert result.exit_code == 1  # nothing left to remove


def test_index_reports_failures_with_exit_status_1(config_file, sample_dir):
    (sample_dir / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage")
    result = runner.invoke(app, ["index", str(sample_dir), "-c", str(config_file)])
    assert result.exit_code == 1
    assert "broken.pdf" in result.output


def test_search_with_a_plan_the_collection_cannot_run_is_a_clear_error(config_file, sample_dir):
    runner.invoke(app, ["index", str(sample_dir), "-c", str(config_file)])
    result = runner.invoke(app, ["search", "q", "-c", str(config_file), "--plan", "dense@10"])
    assert result.exit_code == 2
    assert "dense" in result.output


def test_dry_run_lists_items_without_a_store(sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["index", str(sample_dir), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "p.1" in result.output and "video_frame" in result.output
    assert "items readable" in result.output and "nothing was stored" in result.output
    assert not (tmp_path / "mmrag_index").exists()


def test_quickstart_offline_answers_with_citations_banner_and_timings(tmp_path, sample_dir):
    """Offline, the quickstart still shows something true: the text channel ranks the pages
    and the answer quotes the report's "12%" sentence, citing its page (issue 15)."""
    result = runner.invoke(
        app,
        ["quickstart", "--workdir", str(tmp_path / "qs"), "--data", str(sample_dir), "--offline"],
    )
    out = result.output
    assert result.exit_code == 0, out
    # the banner names the real models and what stood in for each
    assert "MEANINGLESS" in out and "ModernVBERT/colmodernvbert-merged" in out
    assert "HuggingFaceTB/SmolVLM-256M-Instruct" in out
    assert "the ranking comes from the text channel (BM25" in out
    assert "no model: an extractive answer" in out
    assert "0 failed" in out
    assert "plan: text@10" in out
    # the answer: the "12%" sentence quoted first, cited [n] with the report's page 2
    answer = out.split("A (extractive: quoted from the pages): ", 1)[1].split("Sources", 1)[0]
    first = answer.strip().splitlines()[0]
    assert first.startswith("“Revenue grew 12% to $48.2 million, up from $43.0 million in 2023.”")
    match = re.search(r"” \[(\d)\] acme_solar_annual_report_2024\.pdf p\.2\b", first)
    assert match, first
    assert "\ufffd" not in answer  # no random bytes
    # that [n] is the report's page 2 in the numbered sources, marked as cited
    sources = out.split("Sources (* cited):", 1)[1].splitlines()
    cited = next(line for line in sources if f"[{match.group(1)}] " in line)
    assert cited.lstrip().startswith("*") and "acme_solar_annual_report_2024.pdf p.2" in cited
    # where on that page the question's words stand (read from the PDF's text layer)
    after = sources[sources.index(cited) + 1]
    assert re.fullmatch(r"\s+words at \(\d+, \d+\)-\(\d+, \d+\) pt", after), after
    assert "[1] " in out and "[3] " in out and "(text " in out  # three sources, stage scores
    timings = next(line for line in out.splitlines() if line.startswith("timings:"))
    for stage in ("index", "retrieve", "rerank", "generate", "total"):
        assert f"{stage} " in timings


def test_eval_compares_plans_on_a_beir_dataset(config_file, sample_dir, tmp_path):
    root = tmp_path / "beir"
    root.mkdir()
    images = sorted(p.name for p in sample_dir.iterdir() if p.suffix in {".png", ".jpg"})
    for name in images:
        (root / name).write_bytes((sample_dir / name).read_bytes())
    (root / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"d{i}", "image": n}) for i, n in enumerate(images))
    )
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"q{i}", "text": f"picture {i}"}) for i in range(2))
    )
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\n")
    result = runner.invoke(app, ["eval", str(root), "-c", str(config_file), "--json", "--k", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    text = json.dumps(report)
    assert "tokens@128 -> distinct@32 -> full@10" in text and "full@10" in text
    assert "ndcg@3" in text.lower()
    # the evaluation corpus went to its own collection, not the user's index
    result = runner.invoke(app, ["search", "picture", "-c", str(config_file), "--json"])
    assert result.exit_code != 0 or json.loads(result.stdout) == []
