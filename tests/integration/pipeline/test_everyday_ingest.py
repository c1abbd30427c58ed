"""Everyday folders and answers, through the CLI and the Python API.

A folder as people have it (a README, notes, an HTML page, code, an archive) indexes with exit
status 0: text, Markdown and HTML become pages with their text layer, files of other types are
skipped and counted (``--strict`` fails them, each failure printed once). Office documents go
through LibreOffice when it is installed. Huge PDF pages render downscaled. Bytes, PIL images
and LangChain Documents index from memory. ``ask`` with nothing retrieved says so without
generating, and a ``k`` over the generator's ``max_images`` is stated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pymupdf
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmrag.cli import app
from mmrag.config import PipelineConfig
from mmrag.pipeline.ingest import IngestConfig, iter_items
from mmrag.pipeline.ingest.documents import find_soffice
from mmrag.pipeline.pipeline import Pipeline
from mmrag.pipeline.rag import NOTHING_RETRIEVED
from mmrag.store.records import SearchFilter
from mmrag.testing import media
from mmrag.types import IndexReport

from .conftest import SAMPLE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

runner = CliRunner()
PDF = SAMPLE / "acme_solar_annual_report_2024.pdf"
ROOT = Path(__file__).resolve().parents[3]


def make_docx(path: Path, text: str) -> Path:
    """A minimal Word document (the three parts a .docx needs)."""
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
        '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target='
        '"word/document.xml"/></Relationships>'
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.'
        'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>'
        f"{text}</w:t></w:r></w:p></w:body></w:document>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", rels)
        archive.writestr("word/document.xml", body)
    return path


@pytest.fixture
def everyday(tmp_path: Path) -> Path:
    """A folder as people have it: a PDF, a README, notes, a web page, code and an archive."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(PDF, folder / "report.pdf")
    (folder / "README.md").write_text(
        "# Solar project\n\nThe **zebra** array grew by 12 %.\n\n| year | MW |\n|---|---|\n"
        "| 2024 | 5 |\n"
    )
    (folder / "notes.txt").write_text("Meeting notes: the flamingo contract is signed.\n" * 3)
    (folder / "page.html").write_text(
        "<!doctype html><html><body><h1>Intranet</h1><p>The giraffe index rose.</p></body></html>"
    )
    (folder / "setup.py").write_text("print('not a document')\n")
    with zipfile.ZipFile(folder / "data.zip", "w") as archive:
        archive.writestr("a.csv", "1,2\n")
    return folder


@pytest.fixture
def config(tiny_config: PipelineConfig, tmp_path: Path) -> PipelineConfig:
    """The tiny pipeline with the BM25 text channel (``retrieval.hybrid``) and its own cache."""
    data = tiny_config.model_dump(mode="json")
    data["retrieval"] = {"hybrid": True}
    data["ingest"]["convert_cache"] = str(tmp_path / "converted")
    return PipelineConfig.from_dict(data)


@pytest.fixture
def config_file(config: PipelineConfig, tmp_path: Path) -> Path:
    path = tmp_path / "mmrag.toml"
    config.save(path)
    return path


def text_hit(pipe: Pipeline, word: str):
    """The best hit for ``word`` through the text channel alone."""
    hits = pipe.search(word, k=3, plan="text@5")
    assert hits, word
    return hits[0]


# -- a normal folder ------------------------------------------------------------------------------


def test_a_folder_with_a_readme_indexes_with_exit_status_0(everyday, config, config_file, tmp_path):
    result = runner.invoke(app, ["index", str(everyday), "-c", str(config_file), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 files skipped (unsupported type): data.zip, setup.py" in result.output
    assert "FAILED" not in result.output
    assert re.search(r"\b0 failed from 4 sources\b", result.output), result.output

    with Pipeline(config) as pipe:
        counts = pipe.source_counts()
        assert {Path(s).name: n for s, n in counts.items()} == {
            "README.md": 1,
            "notes.txt": 1,
            "page.html": 1,
            "report.pdf": 5,
        }
        for word, name, fmt in [
            ("zebra", "README.md", "markdown"),
            ("flamingo", "notes.txt", "text"),
            ("giraffe", "page.html", "html"),
        ]:
            hit = text_hit(pipe, word)
            assert hit.item.source == str(everyday / name)  # the original file, canonical
            assert hit.item.page == 1 and hit.citation() == f"{everyday / name} p.1"
            assert word in hit.item.text
            assert hit.item.details["converted_from"] == fmt
            assert hit.stage_scores["text"] > 0
        image = text_hit(pipe, "zebra").item.load_image()  # the rendered page, stored
        assert image.size[0] > 100 and image.size[1] > image.size[0]

    cached = sorted((tmp_path / "converted").iterdir())
    assert len(cached) == 3  # one PDF per document, by content hash
    stamps = [p.stat().st_mtime_ns for p in cached]

    # --strict fails them; each failure printed once (no log line repeating it). A fresh
    # interpreter, so the CLI's own logging setup is what prints.
    strict = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmrag.cli",
            "index",
            str(everyday),
            "-c",
            str(config_file),
            "--no-progress",
            "--strict",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert strict.returncode == 1, strict.stderr
    for name in ("data.zip", "setup.py"):
        assert strict.stderr.count(name) == 1, strict.stderr
        assert f"FAILED {everyday / name}: unsupported file type" in strict.stderr
    assert "Skipping" not in strict.stderr
    assert "8 skipped (already present), 2 failed" in strict.stdout  # nothing re-embedded
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # nor converted again


def test_hints_name_config_keys_not_python(tmp_path):
    cut = media.truncate_file(shutil.copy(PDF, tmp_path / "cut.pdf"), keep=0.6)  # no %%EOF
    locked = tmp_path / "locked.pdf"
    doc = pymupdf.open(PDF)
    doc.save(locked, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="o")
    result = runner.invoke(app, ["index", str(cut), str(locked), "--dry-run"])
    assert result.exit_code == 1
    assert "ingest.recover_truncated_pdfs = true" in result.output
    assert "ingest.pdf_password" in result.output
    assert "IngestConfig(" not in result.output and "=True" not in result.output


def test_huge_pdf_pages_render_downscaled_by_default(tmp_path):
    doc = pymupdf.open()
    for width, height in [(612, 14_400), (14_400, 14_400)]:  # 200 inches: PDF's largest page
        page = doc.new_page(width=width, height=height)
        page.insert_text((72, 72), "the tallest page", fontsize=40)
    path = tmp_path / "poster.pdf"
    doc.save(path)

    result = runner.invoke(app, ["index", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    sizes = [tuple(map(int, size.split("x"))) for size in re.findall(r"\t(\d+x\d+)", result.output)]
    assert len(sizes) == 2
    for width, height in sizes:
        assert width * height <= 2048 * 2048  # ingest.max_page_pixels
    assert sizes[0][1] > 9000  # the tall page keeps its shape (pixels go where the page is)
    items = list(iter_items([path]))
    assert [item.load_image().size for item in items] == sizes
    assert all("tallest" in item.text for item in items)
    unlimited = IngestConfig(max_page_pixels=None, dpi=18)  # the limit can be lifted
    assert next(iter_items([path], unlimited)).height == 3600


# -- Office documents -----------------------------------------------------------------------------


@pytest.mark.skipif(
    find_soffice() is None,
    reason="LibreOffice is not installed (Debian/Ubuntu: apt-get install --no-install-recommends "
    "libreoffice-writer-nogui libreoffice-impress-nogui), so .docx cannot be converted here",
)
def test_office_documents_are_converted_by_libreoffice_once(tmp_path):
    memo = make_docx(tmp_path / "memo.docx", "The okapi memo says the budget doubled.")
    config = IngestConfig(convert_cache=str(tmp_path / "cache"), dpi=72)
    report = IndexReport()
    (page,) = iter_items([memo], config, report=report)
    assert report.ok, report.failed
    assert page.source == str(memo) and page.page == 1
    assert "okapi memo" in page.text and page.details["converted_from"] == "docx"
    assert page.load_image().size == (page.width, page.height)
    (cached,) = (tmp_path / "cache").iterdir()
    stamp = cached.stat().st_mtime_ns
    (again,) = iter_items([memo], config)
    assert again.id == page.id and cached.stat().st_mtime_ns == stamp  # not converted again


def test_office_documents_without_libreoffice_are_skipped_with_a_hint(tmp_path, monkeypatch):
    folder = tmp_path / "inbox"
    folder.mkdir()
    make_docx(folder / "memo.docx", "The okapi memo.")
    shutil.copy(SAMPLE / "customer_survey_slide.png", folder / "slide.png")
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no soffice to be found
    monkeypatch.delenv("MMRAG_SOFFICE", raising=False)

    result = runner.invoke(app, ["index", str(folder), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "1 file skipped (unsupported type): memo.docx" in result.output
    assert "libreoffice-writer-nogui" in result.output

    named = runner.invoke(app, ["index", str(folder / "memo.docx"), "--dry-run"])
    assert named.exit_code == 1  # a file named explicitly still fails, with the hint
    assert f"FAILED {folder / 'memo.docx'}: unsupported file type" in named.output
    assert "apt-get install libreoffice-writer-nogui" in named.output


# -- indexing from memory -------------------------------------------------------------------------


def test_index_bytes_images_and_langchain_documents(config):
    from langchain_core.documents import Document

    scan = Image.new("RGB", (96, 64), "navy")
    data = [
        ("reports/q1.pdf", PDF.read_bytes()),
        ("scan.png", scan),
        Document(page_content="The quokka census grew to 41.", metadata={"dept": "zoo"}),
        Document(id="memo-7", page_content="Pangolin memo.", metadata={"year": 2024, "x": None}),
        ("notes.md", "# Heading\n\nThe **wombat** notes."),
        Document(page_content="nested", metadata={"loc": {"line": 3}}),  # not storable
    ]
    with Pipeline(config) as pipe:
        report = pipe.index_data(data, metadata={"batch": "b1"})
        assert report.indexed == 5 + 1 + 1 + 1 + 1
        assert report.sources == 6
        (failure,) = report.failed
        assert failure.source.startswith("memory://document-") and "'loc'" in failure.reason

        counts = pipe.source_counts()
        assert counts["memory://reports/q1.pdf"] == 5
        assert counts["memory://scan.png"] == 1 and counts["memory://memo-7"] == 1
        quokka = text_hit(pipe, "quokka")
        assert quokka.item.source.startswith("memory://document-")
        assert quokka.item.metadata == {"batch": "b1", "dept": "zoo"}  # the Document's + call's
        assert text_hit(pipe, "wombat").item.source == "memory://notes.md"
        assert text_hit(pipe, "pangolin").item.metadata == {"batch": "b1", "year": 2024}
        zoo = pipe.source_counts(SearchFilter.parse(["dept=zoo"]))
        assert list(zoo) == [quokka.item.source]
        where = SearchFilter.build(source="memory://scan.png")
        (image,) = pipe.search("a navy scan", k=1, filter=where)
        assert image.item.modality == "image" and image.item.load_image().size == (96, 64)

        again = pipe.index_data(data[:3], metadata={"batch": "b1"})  # same names, same content
        assert (again.indexed, again.skipped) == (0, 7)
        assert pipe.delete("memory://reports/q1.pdf") == 5
        assert "memory://reports/q1.pdf" not in pipe.source_counts()

        with pytest.raises(TypeError, match="LangChain Documents"):
            pipe.index_data([42])


# -- answers --------------------------------------------------------------------------------------


@pytest.fixture
def ask_config(config: PipelineConfig, tiny_idefics3: Path) -> PipelineConfig:
    data = config.model_dump(mode="json")
    data["retrieval"] = {}
    data["generator"] = {
        "type": "transformers",
        "init_parameters": {
            "model": str(tiny_idefics3),
            "device": "cpu",
            "max_new_tokens": 4,
            "max_images": 2,
        },
    }
    return PipelineConfig.from_dict(data)


def test_ask_on_an_empty_index_says_so_without_generating(ask_config, tmp_path):
    tokens: list[str] = []
    with Pipeline(ask_config) as pipe:
        answer = pipe.ask("How much did revenue grow?", on_token=tokens.append)
        assert not pipe.generator.is_loaded  # the model was never even loaded
    assert answer.text == NOTHING_RETRIEVED and "".join(tokens) == NOTHING_RETRIEVED
    assert answer.sources == [] and answer.citations == [] and answer.usage == {}
    assert answer.timings["generate"] == 0.0
    assert "index is empty" in answer.notes[0]
    assert answer.to_dict()["notes"] == answer.notes

    path = tmp_path / "ask.toml"
    ask_config.save(path)
    result = runner.invoke(app, ["ask", "How much did revenue grow?", "-c", str(path)])
    assert result.exit_code == 0, result.output
    assert NOTHING_RETRIEVED in result.stdout
    assert "note: The index is empty" in result.stderr


def test_k_over_max_images_is_stated_and_the_default_k_fits(ask_config, tmp_path):
    with Pipeline(ask_config) as pipe:
        pipe.index([PDF])
        wide = pipe.ask("revenue growth", k=4)
        default = pipe.ask("revenue growth")
        nothing = pipe.ask("revenue", filter=SearchFilter.parse(["dept=none"]))
    assert len(wide.sources) == 2  # max_images = 2
    (note,) = wide.notes
    assert "k=4" in note and "max_images = 2" in note and "best 2" in note
    assert len(default.sources) == 2 and default.notes == []  # top_k 5 capped at max_images
    assert nothing.text == NOTHING_RETRIEVED and "filter" in nothing.notes[0]

    path = tmp_path / "ask.toml"
    ask_config.save(path)
    result = runner.invoke(app, ["ask", "revenue", "-c", str(path), "--k", "3", "--no-stream"])
    assert result.exit_code == 0, result.output
    assert "note: k=3 pages were retrieved" in result.stderr
    assert result.stdout.count("score") == 2  # two numbered sources
