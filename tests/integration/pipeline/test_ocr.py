"""OCR (``ingest.ocr``) with the real Tesseract: text without a text layer becomes searchable.

An image of rendered text and a scanned-style PDF page (a rendered page wrapped in a PDF with no
text layer) index with ``retrieval.hybrid``; with OCR a word drawn on them is found through the
text channel alone (plan ``text@5``), and its OCR box lies where it was drawn (pixels for the
image, PDF points for the page). With OCR off it is not found; ``auto`` leaves a page that has a
text layer alone, ``on`` reads it too; OCR runs in the PDF worker processes and on video frames;
``on`` without Tesseract says how to install it.
"""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw

from mmrag.config import PipelineConfig
from mmrag.errors import MissingDependencyError
from mmrag.pipeline.ingest import IngestConfig, iter_items
from mmrag.pipeline.ingest.ocr import ocr_available
from mmrag.pipeline.pipeline import Pipeline
from mmrag.testing.media import _font, make_video

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not ocr_available(), reason="needs tesseract-ocr (Debian package)"),
]

IMAGE_WORD_AT = (60, 50)  # pixels: where "pelican" is drawn on the image
PDF_WORD_AT = (72, 100)  # PDF points: where "flamingo" is drawn on the scanned page


def _image(path: Path) -> Path:
    image = Image.new("RGB", (900, 300), "white")
    draw = ImageDraw.Draw(image)
    draw.text(IMAGE_WORD_AT, "pelican", fill="black", font=_font(48))
    draw.text((60, 170), "harbour survey notes", fill="black", font=_font(40))
    image.save(path)
    return path


def _scanned_pdf(path: Path) -> Path:
    """Page 1: a rendered page as a picture (no text layer); page 2: a text layer."""
    source = pymupdf.open()
    page = source.new_page(width=595, height=842)
    page.insert_text((PDF_WORD_AT[0], PDF_WORD_AT[1] + 20), "flamingo", fontsize=24)
    page.insert_text((72, 200), "the inspection report of the north pier", fontsize=14)
    png = page.get_pixmap(dpi=150).tobytes("png")
    out = pymupdf.open()
    scan = out.new_page(width=595, height=842)
    scan.insert_image(scan.rect, stream=png)
    typed = out.new_page(width=595, height=842)
    typed.insert_text((72, 100), "giraffe enclosure", fontsize=14)
    out.save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    _image(folder / "whiteboard.png")
    _scanned_pdf(folder / "scan.pdf")
    return folder


def _config(tiny_config: PipelineConfig, tmp_path: Path, ocr: str) -> PipelineConfig:
    data = tiny_config.model_dump(mode="json")
    data["retrieval"] = {"hybrid": True}
    data["ingest"]["ocr"] = ocr
    data["store"]["path"] = str(tmp_path / f"index-{ocr}")
    return PipelineConfig.from_dict(data)


def _box_of(details: dict, word: str) -> list[float]:
    boxes = [w[:4] for w in details["words"] if w[4].lower().strip(".,") == word]
    assert boxes, details["words"]
    return boxes[0]


@pytest.mark.parametrize("ocr", ["auto", "on"])
def test_ocr_text_is_found_through_the_text_channel(folder, tiny_config, tmp_path, ocr):
    with Pipeline(_config(tiny_config, tmp_path, ocr)) as pipe:
        report = pipe.index(folder)
        assert report.indexed == 3, report

        (hit, *_) = pipe.search("pelican", k=3, plan="text@5")
        assert Path(hit.item.source).name == "whiteboard.png"
        assert hit.item.details["text_source"] == "ocr"
        assert "pelican" in hit.item.text.lower()
        x0, y0, x1, y1 = _box_of(hit.item.details, "pelican")  # pixels of the image
        assert abs(x0 - IMAGE_WORD_AT[0]) < 15 and abs(y0 - IMAGE_WORD_AT[1]) < 25
        assert x1 - x0 > 100 and y1 > y0

        (hit, *_) = pipe.search("flamingo", k=3, plan="text@5")
        assert Path(hit.item.source).name == "scan.pdf" and hit.item.page == 1
        assert hit.item.details["text_source"] == "ocr"
        x0, y0, x1, y1 = _box_of(hit.item.details, "flamingo")  # PDF points
        assert abs(x0 - PDF_WORD_AT[0]) < 8 and abs(y0 - PDF_WORD_AT[1]) < 15
        assert 60 < x1 - x0 < 140 and 8 < y1 - y0 < 30

        (hit, *_) = pipe.search("giraffe", k=3, plan="text@5")
        assert hit.item.page == 2 and "giraffe" in hit.item.text.lower()
        # auto keeps the text layer of a page that has one; on reads that page too
        assert hit.item.details.get("text_source") == ("ocr" if ocr == "on" else None)


def test_without_ocr_the_words_are_not_found(folder, tiny_config, tmp_path):
    with Pipeline(_config(tiny_config, tmp_path, "off")) as pipe:
        assert pipe.index(folder).indexed == 3
        for word in ["pelican", "flamingo"]:
            hits = pipe.search(word, k=3, plan="text@5")
            assert all(word not in (h.item.text or "").lower() for h in hits)
            assert all("words" not in h.item.details for h in hits)
        assert pipe.search("giraffe", k=3, plan="text@5")[0].item.page == 2


def test_ocr_runs_in_the_pdf_workers(folder, tmp_path):
    config = IngestConfig(dpi=72, ocr="auto", workers=2)
    pages = list(iter_items([folder / "scan.pdf"], config))
    assert [p.details.get("text_source") for p in pages] == ["ocr", None]
    assert "flamingo" in pages[0].text.lower() and "giraffe" in pages[1].text.lower()


def test_ocr_on_without_tesseract_says_how_to_install_it(folder, monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(MissingDependencyError, match="apt-get install tesseract-ocr"):
        list(iter_items([folder / "whiteboard.png"], IngestConfig(ocr="on"), strict=True))
    # auto without Tesseract indexes without OCR
    (item,) = iter_items([folder / "whiteboard.png"], IngestConfig(ocr="auto"))
    assert item.text is None and "words" not in item.details


def test_video_frames_are_read(tmp_path):
    video = make_video(
        tmp_path / "talk.mp4", seconds=2.0, fps=5, size=(480, 270), scenes=["WALRUS", "OTTER"]
    )
    frames = list(iter_items([video], IngestConfig(ocr="auto", video_fps=1.0), strict=True))
    assert [f.details["text_source"] for f in frames] == ["ocr"] * len(frames)
    assert "WALRUS" in frames[0].text and "OTTER" in frames[-1].text
    x0, y0, x1, y1 = _box_of(frames[0].details, "walrus")  # pixels of the frame
    assert 0 <= x0 < x1 <= 480 and 0 <= y0 < y1 <= 270


def test_ocr_words_become_region_citations(folder, tiny_config, tmp_path):
    from fastapi.testclient import TestClient

    from mmrag.integrations.server import create_app

    config = _config(tiny_config, tmp_path, "auto")
    with Pipeline(config) as pipe:
        assert pipe.index(folder).indexed == 3
        (hit, *_) = pipe.search("pelican", k=3, plan="text@5")
        words = [r for r in hit.regions if r.kind == "words"]
        assert Path(hit.item.source).name == "whiteboard.png" and len(words) == 1
        assert words[0].score == 1.0
        assert abs(words[0].x0 - IMAGE_WORD_AT[0]) < 15 and abs(words[0].y0 - IMAGE_WORD_AT[1]) < 25
        (hit, *_) = pipe.search("flamingo", k=3, plan="text@5")
        (box,) = [r for r in hit.regions if r.kind == "words"]
        assert hit.item.page == 1 and abs(box.x0 - PDF_WORD_AT[0]) < 8  # PDF points
        # a text-layer page's words are read from the file: the same citations without OCR
        (hit, *_) = pipe.search("giraffe", k=3, plan="text@5")
        (box,) = [r for r in hit.regions if r.kind == "words"]
        assert hit.item.page == 2 and abs(box.x0 - 72) < 3 and 85 < box.y1 < 105
    with TestClient(create_app(config)) as client:
        body = client.get("/api/v1/search", params={"q": "pelican", "k": 3, "plan": "text@5"})
        served = body.json()["hits"][0]["regions"]
        assert [r for r in served if r["kind"] == "words"] == [words[0].to_dict()]
