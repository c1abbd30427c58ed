"""The codec table end to end on the tiny ColModernVBert: a BEIR folder of page images and a
folder of unlabelled pages, every codec of the store, ``full`` pooling and document tokens, from
Python and from ``mmrag eval --codecs``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmrag.cli import app
from mmrag.config import PoolingConfig
from mmrag.embedders.colpali import ColModernVBertEmbedder
from mmrag.errors import ConfigError
from mmrag.pipeline.evaluate.codec_report import codec_metric_names
from mmrag.pipeline.evaluate.codec_table import codec_table
from mmrag.store.codecs import CODECS, codec_spec
from mmrag.testing.inputs import sample_image

pytestmark = pytest.mark.integration

runner = CliRunner()
PAGES = 6
QUERIES = ("quarterly revenue", "solar panel output", "board of directors", "water use")
KS = (1, 5)


def write_beir(root: Path) -> Path:
    """Six textured pages, four queries each judged relevant to one page."""
    (root / "pages").mkdir(parents=True)
    (root / "qrels").mkdir()
    corpus, qrels = [], ["query-id\tcorpus-id\tscore"]
    for i in range(PAGES):
        sample_image(96, 128, seed=i).save(root / "pages" / f"p{i}.png")
        corpus.append({"_id": f"d{i}", "image": f"pages/p{i}.png"})
    queries = [{"_id": f"q{i}", "text": text} for i, text in enumerate(QUERIES)]
    qrels += [f"q{i}\td{i}\t1" for i in range(len(QUERIES))]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus))
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels))
    return root


def write_pages(root: Path) -> Path:
    """A folder of unlabelled page images, as a user has them."""
    root.mkdir(parents=True)
    for i in range(4):
        sample_image(96, 128, seed=20 + i).save(root / f"scan_{i}.png")
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_colmodernvbert):
    """Every codec x full_pool_factor 1 and 2 x all / visual document tokens, measured once."""
    root = write_beir(tmp_path_factory.mktemp("beir") / "toy_beir")
    embedder = ColModernVBertEmbedder(str(tiny_colmodernvbert), device="cpu")
    return codec_table(
        root,
        embedder,
        pooling=PoolingConfig(views=["global", "rows"]),
        plan="full@10",
        pool_factors=[1, 2],
        ks=KS,
    )


def row(report, codec, factor=1, tokens="all"):
    (found,) = [
        r
        for r in report.rows
        if (r.setting.codec, r.setting.full_pool_factor, r.setting.document_tokens)
        == (codec, factor, tokens)
    ]
    return found


def test_the_table_has_one_row_per_setting_with_every_column(report):
    assert (report.pages, report.queries, report.labelled) == (PAGES, len(QUERIES), True)
    assert report.reference == "all"  # exact MaxSim over the recipe's document tokens
    settings = [
        (r.setting.codec, r.setting.full_pool_factor, r.setting.document_tokens)
        for r in report.rows
    ]
    expected = [(c, f, t) for t in ("all", "visual") for f in (1, 2) for c in CODECS]
    assert settings == expected
    for r in report.rows:
        assert list(r.metrics) == codec_metric_names(KS, labelled=True)
        assert all(0.0 <= v <= 1.0 for v in r.metrics.values()), r
        assert r.disk_bytes_per_page > 0 and r.ram_bytes_per_page >= 0
        assert r.qps > 0 and r.p50_ms > 0 and r.queries == len(QUERIES)
    header, *lines = report.table().splitlines()
    assert header.split()[:4] == ["codec", "pool", "tokens", "NDCG@1"]
    assert len(lines) == len(report.rows)
    assert json.loads(report.to_json())["rows"][0]["codec"] == CODECS[0]


def test_float32_every_token_agrees_with_exact_maxsim(report):
    exact = row(report, "float32")
    assert exact.metrics["top1_vs_exact"] == 1.0
    assert exact.metrics["recall@5_vs_exact"] == 1.0


def test_smaller_codecs_and_pooling_store_fewer_bytes_per_page(report):
    disk = {codec: row(report, codec).disk_bytes_per_page for codec in CODECS}
    # Codecs that store the originals in fewer bytes take less disk, in that order.
    storage = [c for c in CODECS if not codec_spec(c).rescored]
    by_size = sorted(storage, key=lambda c: -codec_spec(c).bytes_per_value)
    assert by_size[0] == "float32" and len(by_size) >= 3
    sizes = [disk[c] for c in by_size]
    assert all(a > b for a, b in itertools.pairwise(sizes)), dict(zip(by_size, sizes, strict=True))
    # Quantised codecs keep their (float16) originals on disk: they save RAM work, not disk.
    for codec in CODECS:
        if codec_spec(codec).rescored:
            assert disk[codec] >= disk[codec_spec(codec).storage], codec
    # Fewer stored vectors: full merged by 2, or the visual tokens only.
    assert row(report, "float32", factor=2).disk_bytes_per_page < disk["float32"]
    assert row(report, "float32", tokens="visual").disk_bytes_per_page < disk["float32"]


def test_the_codec_table_of_unlabelled_pages_samples_queries(tmp_path, tiny_colmodernvbert):
    pages = write_pages(tmp_path / "scans")
    embedder = ColModernVBertEmbedder(str(tiny_colmodernvbert), device="cpu")
    report = codec_table(
        pages,
        embedder,
        codecs=["float32", "float16"],
        pool_factors=[1],
        document_tokens=["all"],
        queries=3,
        ks=(1, 3),
    )
    assert (report.pages, report.queries, report.labelled) == (4, 3, False)
    assert [r.setting.codec for r in report.rows] == ["float32", "float16"]
    assert list(report.rows[0].metrics) == [
        "recall@1_vs_exact",
        "recall@3_vs_exact",
        "top1_vs_exact",
    ]
    assert report.rows[0].metrics["top1_vs_exact"] == 1.0
    assert "NDCG" not in report.table()


def test_settings_are_checked_before_any_work(tmp_path, tiny_colmodernvbert):
    embedder = ColModernVBertEmbedder(str(tiny_colmodernvbert), device="cpu")
    with pytest.raises(ConfigError, match="unknown codec"):
        codec_table(tmp_path, embedder, codecs=["float8"])
    with pytest.raises(ConfigError, match="document_tokens must be among"):
        codec_table(tmp_path, embedder, document_tokens=["prompt"])
    assert not embedder.is_loaded


def test_mmrag_eval_codecs_prints_the_table(tmp_path, eval_config_file):
    root = write_beir(tmp_path / "toy_beir")
    args = ["eval", str(root), "-c", str(eval_config_file), "--codecs", "--codec", "float32"]
    args += ["--codec", "float16", "--full-pool-factor", "1", "--k", "1", "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.strip().splitlines()
    assert header.split()[:4] == ["codec", "pool", "tokens", "NDCG@1"]
    assert [line.split()[:3] for line in lines] == [
        ["float32", "1", "all"],
        ["float16", "1", "all"],
        ["float32", "1", "visual"],
        ["float16", "1", "visual"],
    ]

    pages = write_pages(tmp_path / "scans")
    args = ["eval", str(pages), "-c", str(eval_config_file), "--codec", "float32", "--json"]
    args += ["--full-pool-factor", "1", "--document-tokens", "all", "--queries", "2"]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["pages"], data["queries"], data["labelled"]) == (4, 2, False)
    assert data["rows"][0]["metrics"]["top1_vs_exact"] == 1.0
