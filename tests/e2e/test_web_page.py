"""The document-QA web page in headless Chromium: upload, watch indexing, ask, see cited pages.

A real uvicorn server over a tiny-model pipeline (tiny ColModernVBert, tiny SmolVLM generator),
driven through the page only. Screenshots of each step are saved as test artifacts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmrag.config import PipelineConfig
from mmrag.integrations.server import create_app

from .conftest import live_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data"
PDF = SAMPLE / "acme_solar_annual_report_2024.pdf"
PNG = SAMPLE / "customer_survey_slide.png"


def _config(index: Path, embedder: Path, generator: Path | None) -> PipelineConfig:
    data = {
        "embedder": {
            "type": "colmodernvbert",
            "init_parameters": {"model": str(embedder), "device": "cpu"},
        },
        "ingest": {"dpi": 72},
        "store": {"path": str(index)},
        "generator": None,
    }
    if generator is not None:
        data["generator"] = {
            "type": "transformers",
            "init_parameters": {"model": str(generator), "max_new_tokens": 8, "device": "cpu"},
        }
    return PipelineConfig.from_dict(data)


def _upload_and_wait(page, files: list[Path]) -> None:
    page.set_input_files("#files", [str(f) for f in files])
    page.click("#upload")
    page.wait_for_selector("#job[data-status=succeeded]", timeout=180_000)


def _cited_thumbnails_loaded(page) -> int:
    """Wait until every cited thumbnail has decoded; returns how many there are."""
    page.wait_for_selector("#answer:not([hidden]) .citation img", timeout=180_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.citation img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        timeout=30_000,
    )
    return page.locator(".citation img").count()


def test_upload_index_ask_and_see_cited_pages(
    browser, artifacts_dir, tmp_path, tiny_colmodernvbert, tiny_smolvlm
):
    app = create_app(_config(tmp_path / "index", tiny_colmodernvbert, tiny_smolvlm))
    with live_server(app) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_selector("#status:has-text('pages / frames indexed')")
        assert page.locator("#key-panel").is_hidden()  # no API key on this server

        _upload_and_wait(page, [PDF, PNG])
        progress = page.locator("#progress-text").inner_text()
        assert "2/2 files" in progress and "6 pages" in progress, progress
        assert "6 indexed" in progress
        assert page.locator("#progress").evaluate("el => el.value") == 1
        page.wait_for_selector("#status:has-text('6 pages / frames indexed')")
        assert page.locator("#source-count").inner_text() == "2"
        page.screenshot(path=str(artifacts_dir / "web-01-indexed.png"), full_page=True)

        page.fill("#question", "How much did revenue grow in 2024?")
        page.fill("#k", "2")
        page.click("#ask")
        assert 1 <= _cited_thumbnails_loaded(page) <= 2
        meta = page.locator("#answer-meta").inner_text()
        assert "generate" in meta and "retrieve" in meta  # the answer came from /ask
        assert page.locator("#answer-text").inner_text().strip()
        for text in page.locator(".citation .score").all_inner_texts():
            assert re.fullmatch(r"score -?\d+\.\d{3} \(global .* full -?\d+\.\d{3}\)", text), text
        refs = page.locator(".citation .ref").all_inner_texts()
        assert all(re.match(r"\[\d\] \S+", ref) for ref in refs), refs
        assert any(PDF.name in ref or PNG.name in ref for ref in refs), refs
        page.screenshot(path=str(artifacts_dir / "web-02-answer.png"), full_page=True)
        assert errors == []


def test_api_key_and_search_only_server(
    browser, artifacts_dir, tmp_path, tiny_colmodernvbert, monkeypatch
):
    monkeypatch.setenv("MMRAG_E2E_KEY", "browser-secret")
    app = create_app(
        _config(tmp_path / "index", tiny_colmodernvbert, None), api_key="env:MMRAG_E2E_KEY"
    )
    with live_server(app) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(url)
        page.wait_for_selector("#key-panel:not([hidden])")
        page.fill("#api-key", "browser-secret")
        page.click("#save-key")
        page.wait_for_selector("#key-panel[hidden]", state="attached")
        assert "No generator" in page.locator("#mode-note").inner_text()

        _upload_and_wait(page, [PNG])
        page.fill("#question", "customer survey")
        page.click("#ask")
        assert _cited_thumbnails_loaded(page) == 1
        src = page.locator(".citation img").get_attribute("src")
        assert src.startswith("blob:")  # fetched with the key header, shown from memory
        assert "The best-matching pages" in page.locator("#answer-text").inner_text()
        page.screenshot(path=str(artifacts_dir / "web-03-search-only-with-key.png"))
