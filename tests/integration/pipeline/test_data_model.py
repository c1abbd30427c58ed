"""The data model through the CLI: a source is its canonical path, copies are separate
sources sharing embeddings, user metadata is stored and filterable, the index follows the
model's content and not its folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmrag.cli import app
from mmrag.config import PipelineConfig

pytestmark = pytest.mark.integration

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def cli_json(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sources(config: Path, *extra: str) -> dict[str, int]:
    return cli_json("sources", "-c", str(config), "--json", *extra)


def hits(config: Path, *extra: str) -> list[dict]:
    return cli_json("search", "revenue", "-c", str(config), "--json", "-k", "50", *extra)


@pytest.fixture
def config_file(tmp_path: Path, tiny_config: PipelineConfig) -> Path:
    path = tmp_path / "mmrag.toml"
    tiny_config.save(path)
    return path


@pytest.fixture
def twins(tmp_path: Path, sample_dir: Path) -> Path:
    """A folder with a PDF and a byte-identical copy of it under another name."""
    folder = tmp_path / "twins"
    folder.mkdir()
    pdf = sample_dir / "acme_solar_annual_report_2024.pdf"
    shutil.copy(pdf, folder / "a.pdf")
    shutil.copy(pdf, folder / "b.pdf")
    return folder


def test_identical_files_are_two_sources_and_deleting_one_keeps_the_other(config_file, twins):
    report = twins.parent / "report.json"
    code, out = cli("index", str(twins), "-c", str(config_file), "--report", str(report))
    assert code == 0, out
    a, b = str((twins / "a.pdf").resolve()), str((twins / "b.pdf").resolve())
    counts = sources(config_file)
    assert set(counts) == {a, b} and counts[a] == counts[b] > 0
    assert {h["item"]["source"] for h in hits(config_file, "--source", str(twins / "b.pdf"))} == {b}

    code, out = cli("delete", str(twins / "a.pdf"), "-c", str(config_file))
    assert code == 0 and "removed" in out
    assert set(sources(config_file)) == {b}
    assert {h["item"]["source"] for h in hits(config_file)} == {b}

    # a third copy made later is indexed with the stored embeddings (no page re-embedded)
    shutil.copy(twins / "b.pdf", twins / "c.pdf")
    code, out = cli("index", str(twins), "-c", str(config_file), "--report", str(report))
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["reused"] == data["indexed"] == counts[b] * 2  # a.pdf again, and c.pdf
    assert "reused from identical content" in out
    c = str((twins / "c.pdf").resolve())
    assert set(sources(config_file)) == {a, b, c}
    scores = {h["item"]["source"]: h["score"] for h in hits(config_file, "--source", c, "-k", "1")}
    same = {h["item"]["source"]: h["score"] for h in hits(config_file, "--source", b, "-k", "1")}
    assert scores[c] == pytest.approx(same[b], abs=1e-4)  # the same vectors


def test_any_spelling_of_a_path_finds_the_source(config_file, sample_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(sample_dir.parent)
    code, out = cli("index", "docs", "-c", str(config_file))
    assert code == 0, out
    pdf = sample_dir / "acme_solar_annual_report_2024.pdf"
    assert str(pdf.resolve()) in sources(config_file)  # stored absolute
    assert hits(config_file, "--source", "./docs/acme_solar_annual_report_2024.pdf")
    assert hits(config_file, "--source", "docs/../docs/acme_solar_annual_report_2024.pdf")
    code, out = cli("delete", "./docs/acme_solar_annual_report_2024.pdf", "-c", str(config_file))
    assert code == 0, out
    assert str(pdf.resolve()) not in sources(config_file)
    code, out = cli("delete", str(pdf), "-c", str(config_file))
    assert code == 1  # the absolute spelling names the same (now deleted) source


def test_metadata_from_flags_and_sidecars_is_filterable(config_file, sample_dir, tmp_path):
    pdf = sample_dir / "acme_solar_annual_report_2024.pdf"
    sidecar = Path(str(pdf) + ".meta.json")
    sidecar.write_text(json.dumps({"dept": "finance", "year": 2024, "tags": ["annual", "q4"]}))
    code, out = cli(
        "index", str(sample_dir), "-c", str(config_file), "--meta", "dept=ops", "--meta", "x=1"
    )
    assert code == 0, out
    assert str(sidecar) not in out  # a sidecar is not indexed (nor reported) itself
    everything = sources(config_file)
    assert str(pdf.resolve()) in everything and len(everything) > 1

    assert set(sources(config_file, "--filter", "dept=finance")) == {str(pdf.resolve())}
    ops = sources(config_file, "--filter", "dept=ops")
    assert str(pdf.resolve()) not in ops and len(ops) == len(everything) - 1
    assert set(sources(config_file, "--filter", "dept=ops", "--filter", "dept=finance")) == set(
        everything
    )
    found = hits(config_file, "--filter", "year>=2020", "--filter", "tags=q4")
    assert found and {h["item"]["source"] for h in found} == {str(pdf.resolve())}
    assert found[0]["item"]["metadata"] == {
        "dept": "finance",
        "year": 2024,
        "tags": ["annual", "q4"],
        "x": 1,
    }
    assert hits(config_file, "--filter", "year<=2023") == []
    code, out = cli("search", "q", "-c", str(config_file), "--filter", "no equals sign")
    assert code == 2 and "key=value" in out

    # new metadata on an indexed file: rewritten without embedding again
    sidecar.write_text(json.dumps({"dept": "legal"}))
    report = tmp_path / "r.json"
    code, out = cli(
        "index", str(pdf), "-c", str(config_file), "--meta", "dept=ops", "--report", str(report)
    )
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["indexed"] == data["reused"] == everything[str(pdf.resolve())]
    assert set(sources(config_file, "--filter", "dept=legal")) == {str(pdf.resolve())}
    assert str(pdf.resolve()) not in sources(config_file, "--filter", "dept=finance")


def test_a_bad_sidecar_fails_its_file_only(config_file, sample_dir):
    pdf = sample_dir / "acme_solar_annual_report_2024.pdf"
    Path(str(pdf) + ".meta.json").write_text("{not json")
    code, out = cli("index", str(sample_dir), "-c", str(config_file))
    assert code == 1
    assert "meta.json" in out and "acme_solar_annual_report_2024.pdf" in out
    indexed = sources(config_file)
    assert str(pdf.resolve()) not in indexed and len(indexed) >= 1


def test_bad_meta_flag_is_a_usage_error(config_file, sample_dir):
    code, out = cli("index", str(sample_dir), "-c", str(config_file), "--meta", "bad key=1")
    assert code == 2 and "metadata key" in out


def test_moving_the_model_folder_keeps_the_index(config_file, sample_dir, tmp_path):
    code, out = cli("index", str(sample_dir), "-c", str(config_file))
    assert code == 0, out
    before = hits(config_file)
    cfg = PipelineConfig.load(config_file)
    model = Path(cfg.embedder.init_parameters["model"])
    moved = tmp_path / "elsewhere" / "my-model"
    shutil.copytree(model, moved)
    cfg.embedder.init_parameters["model"] = str(moved)
    cfg.save(config_file)
    after = hits(config_file)
    assert [h["id"] for h in after] == [h["id"] for h in before]
    code, out = cli("index", str(sample_dir), "-c", str(config_file))
    assert code == 0 and " 0 indexed" in f" {out}", out  # nothing embedded again
    assert os.path.isdir(model)


def test_a_changed_file_replaces_only_its_owners_points(tiny_config, sample_dir):
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.testing.media import make_image

    image = sample_dir / "changing.png"
    make_image(image, size=(64, 48))
    with Pipeline(tiny_config) as pipe:
        pipe.index([image], tenant="acme")
        pipe.index([image])  # the same path, untenanted
        make_image(image, size=(80, 48))  # the file changes; only the untenanted copy is re-indexed
        report = pipe.index([image])
        assert report.indexed == 1
        assert pipe.source_counts(tenant="acme") == {str(image.resolve()): 1}
        assert pipe.store.count() == 2
