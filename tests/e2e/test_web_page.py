"""The document-QA web page in headless Chromium: upload, watch indexing, ask (the answer
streams in), see and enlarge the cited pages.

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
            # enough tokens that the answer streams in over many pieces (and a moment)
            "init_parameters": {"model": str(generator), "max_new_tokens": 48, "device": "cpu"},
        }
    return PipelineConfig.from_dict(data)


def _upload_and_wait(page, files: list[Path]) -> None:
    page.set_input_files("#files", [str(f) for f in files])
    page.click("#upload")
    page.wait_for_selector("#job[data-status=succeeded]", timeout=180_000)


def _cited_thumbnails_loaded(page) -> int:
    """Wait until the answer is complete and every cited thumbnail has decoded; returns how
    many there are."""
    page.wait_for_selector("#answer[data-state=done] .citation img", timeout=180_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.citation img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        timeout=30_000,
    )
    return page.locator(".citation img").count()


#: Records, in order, every change of the answer's state (`data-state`, with the value it had
#: before) and every change to the answer text's children.
_WATCH_ANSWER = """() => {
  window.answerLog = [];
  const answer = document.getElementById('answer');
  const text = document.getElementById('answer-text');
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') window.answerLog.push({kind: 'state', old: r.oldValue});
      else if (r.target === text) window.answerLog.push(
        {kind: 'text', added: r.addedNodes.length, removed: r.removedNodes.length});
    }
  }).observe(answer, {attributes: true, attributeFilter: ['data-state'],
                      attributeOldValue: true, childList: true, subtree: true});
}"""


def _text_changes_by_state(page) -> list[tuple[str | None, dict]]:
    """The answer text's changes logged by ``_WATCH_ANSWER``, each with the state it happened in."""
    log = page.evaluate("window.answerLog")
    state = page.locator("#answer").get_attribute("data-state")
    changes = []
    for entry in reversed(log):
        if entry["kind"] == "state":
            state = entry["old"]  # what the state was before this change
        else:
            changes.append((state, entry))
    return changes[::-1]


def _throttle(bytes_per_s: int) -> dict:
    """DevTools network conditions: downloads at ``bytes_per_s`` (-1: no limit)."""
    return {
        "offline": False,
        "latency": 0,
        "downloadThroughput": bytes_per_s,
        "uploadThroughput": -1,
    }


def _pieces_on_one_line(page, selector: str) -> list[int]:
    """For each text piece of ``selector`` (the parts between its <wbr>s): how many lines it
    is laid out on."""
    return page.locator(selector).evaluate(
        """(el) => [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => {
             const range = document.createRange();
             range.selectNodeContents(n);
             return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
           })"""
    )


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
        banner = page.locator("#stand-in-banner")  # tiny models: the page says so
        assert banner.is_visible()
        assert "meaningless" in banner.inner_text()
        assert "ModernVBERT/colmodernvbert-merged" in banner.inner_text()
        assert "SmolVLM2-256M-Video-Instruct" in banner.inner_text()

        _upload_and_wait(page, [PDF, PNG])
        progress = page.locator("#progress-text").inner_text()
        assert "2/2 files" in progress and "6 pages" in progress, progress
        assert "6 indexed" in progress
        assert page.locator("#progress").evaluate("el => el.value") == 1
        page.wait_for_selector("#status:has-text('6 pages / frames indexed')")
        assert page.locator("#source-count").inner_text() == "2"
        page.screenshot(path=str(artifacts_dir / "web-01-indexed.png"), full_page=True)

        # the answer streams in: the text grows piece by piece before the final answer.
        # Chromium's own throttling (3 kB/s) spreads the stream out: the short token events
        # arrive first, the final answer event (kilobytes: sources, citations) seconds later.
        page.evaluate(_WATCH_ANSWER)
        page.fill("#question", "How much did revenue grow in 2024?")
        page.fill("#k", "2")
        devtools = page.context.new_cdp_session(page)
        devtools.send("Network.enable")
        devtools.send("Network.emulateNetworkConditions", _throttle(3000))
        page.click("#ask")
        page.wait_for_selector("#answer[data-state=streaming]", timeout=180_000)
        assert page.locator("#answer-text").inner_text().strip()  # text before the answer event
        assert page.locator(".citation").count() == 0
        assert "Writing the answer" in page.locator("#answer-meta").inner_text()
        page.screenshot(path=str(artifacts_dir / "web-02-answer-streaming.png"), full_page=True)
        page.wait_for_selector("#answer[data-state=done]", timeout=180_000)
        devtools.send("Network.emulateNetworkConditions", _throttle(-1))
        assert 1 <= _cited_thumbnails_loaded(page) <= 2
        changes = _text_changes_by_state(page)
        grew = [c for state, c in changes if state == "streaming" and not c["removed"]]
        assert len(grew) >= 2, changes  # shown in at least two pieces before the answer event
        meta = page.locator("#answer-meta").inner_text()
        assert "generate" in meta and "retrieve" in meta  # the answer came from /ask
        answer = page.locator("#answer-text").inner_text().strip()
        assert answer
        for text in page.locator(".citation .score").all_inner_texts():
            # each stage's score: the token stage's is MaxSim over the token vectors (distinct)
            stages = r"\(tokens -?\d+\.\d{3} · distinct .* full -?\d+\.\d{3}\)"
            assert re.fullmatch(r"score -?\d+\.\d{3} " + stages, text), text

        # tidy citations: the file name (whole path on hover), where in it, breaks at _ - .
        refs = page.locator(".citation .ref").all_inner_texts()
        assert all(re.fullmatch(r"\[\d\] \S+\.(pdf|png)", ref) for ref in refs), refs
        assert any(PDF.name in ref or PNG.name in ref for ref in refs), refs
        for ref in page.locator(".citation .ref").all():
            title = ref.get_attribute("title")
            assert Path(title).is_absolute() and ref.inner_text().endswith(Path(title).name)
            assert ref.locator("wbr").count() >= 1
            assert ref.evaluate("el => el.getBoundingClientRect().width") < 260
        wheres = page.locator(".citation .where").all_inner_texts()
        assert all(re.fullmatch(r"page \d+( \(printed “.+”\))?|image", w) for w in wheres), wheres
        for n in range(page.locator(".citation .file").count()):
            lines = _pieces_on_one_line(page, f".citation >> nth={n} >> .file")
            assert lines and all(count == 1 for count in lines), lines  # no break mid-piece
        page.screenshot(path=str(artifacts_dir / "web-03-answer.png"), full_page=True)

        # click a thumbnail: the full page opens in a modal view; Esc closes it
        thumb = page.locator(".citation .thumb").first
        small = thumb.locator("img").evaluate("img => img.naturalHeight")
        thumb.click()
        page.wait_for_selector("#viewer[open]")
        page.wait_for_function(
            "() => { const img = document.getElementById('viewer-img');"
            " return img.src && img.complete && img.naturalWidth > 0; }"
        )
        assert page.locator("#viewer-img").evaluate("img => img.naturalHeight") > small
        assert page.locator("#viewer").evaluate("d => d.matches(':modal')")
        assert page.get_by_role("dialog").get_attribute("aria-labelledby") == "viewer-title"
        title = page.locator("#viewer-title").inner_text()
        assert re.search(r"\.(pdf|png) · (page \d+|image)", title), title
        assert page.evaluate("document.activeElement.id") == "viewer-close"
        page.screenshot(path=str(artifacts_dir / "web-04-page-enlarged.png"))
        page.keyboard.press("Escape")
        page.wait_for_selector("#viewer", state="hidden")
        assert page.evaluate("document.activeElement.classList.contains('thumb')")

        # a new question clears the previous answer at once (before anything comes back)
        page.fill("#question", "What did the customer survey find?")
        sent = page.evaluate(
            """() => {
              document.getElementById('ask').click();
              const answer = document.getElementById('answer');
              return {state: answer.dataset.state, busy: answer.getAttribute('aria-busy'),
                      text: document.getElementById('answer-text').textContent,
                      cards: document.querySelectorAll('.citation').length};
            }"""
        )
        assert sent == {"state": "pending", "busy": "true", "text": "", "cards": 0}, sent
        assert _cited_thumbnails_loaded(page) >= 1
        assert page.locator("#answer").get_attribute("aria-busy") == "false"
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
        banner = page.locator("#stand-in-banner").inner_text()
        assert "embedder" in banner and "generator" not in banner

        _upload_and_wait(page, [PNG])
        page.fill("#question", "customer survey")
        page.click("#ask")
        assert _cited_thumbnails_loaded(page) == 1
        src = page.locator(".citation img").get_attribute("src")
        assert src.startswith("blob:")  # fetched with the key header, shown from memory
        assert "The best-matching pages" in page.locator("#answer-text").inner_text()
        assert page.locator(".citation .where").inner_text() == "image"
        page.screenshot(path=str(artifacts_dir / "web-05-search-only-with-key.png"))

        page.locator(".citation .thumb").click()  # the large view fetches with the key too
        page.wait_for_function(
            "() => document.getElementById('viewer-img').src.startsWith('blob:')"
            " && document.getElementById('viewer-img').naturalWidth > 0"
        )
        page.click("#viewer-close")
        page.wait_for_selector("#viewer", state="hidden")


#: For each cited thumbnail: the box of the image's content as laid out (``object-fit:
#: contain`` letterboxes it) and the boxes of its outlined regions, in CSS pixels.
_THUMB_BOXES = """() => [...document.querySelectorAll('.citation .thumb')].map((thumb) => {
  const img = thumb.querySelector('img');
  const box = img.getBoundingClientRect();
  const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
  const w = img.naturalWidth * scale, h = img.naturalHeight * scale;
  const content = {left: box.left + (box.width - w) / 2, top: box.top + (box.height - h) / 2,
                   right: box.left + (box.width + w) / 2, bottom: box.top + (box.height + h) / 2};
  const rects = [...thumb.querySelectorAll('svg.regions rect')].map((r) => {
    const b = r.getBoundingClientRect();
    return {left: b.left, top: b.top, right: b.right, bottom: b.bottom};
  });
  return {content, rects};
})"""


def test_region_citations_are_outlined_on_thumbnails_and_in_the_large_view(
    browser, artifacts_dir, tmp_path, tiny_colmodernvbert
):
    app = create_app(_config(tmp_path / "index", tiny_colmodernvbert, None))
    with live_server(app) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_selector("#status:has-text('pages / frames indexed')")
        _upload_and_wait(page, [PDF, PNG])
        page.fill("#question", "How much did revenue grow in 2024?")
        page.click("#ask")
        cards = _cited_thumbnails_loaded(page)
        assert cards >= 2
        thumbs = page.evaluate(_THUMB_BOXES)
        for thumb in thumbs:  # every hit has regions, drawn inside the page's image
            assert thumb["rects"], thumb
            content = thumb["content"]
            for rect in thumb["rects"]:
                assert rect["left"] >= content["left"] - 1.5
                assert rect["top"] >= content["top"] - 1.5
                assert rect["right"] <= content["right"] + 1.5
                assert rect["bottom"] <= content["bottom"] + 1.5
                assert rect["right"] - rect["left"] > 1 and rect["bottom"] - rect["top"] > 1
        assert page.locator(".citation svg.regions rect.best").count() == cards
        # the report's words holding the question's terms, outlined apart (dashed, blue)
        assert page.locator(".citation svg.regions rect.words").count() >= 1
        page.screenshot(path=str(artifacts_dir / "web-06-regions.png"), full_page=True)

        page.locator(".citation .thumb").first.click()  # the large view outlines them too
        page.wait_for_function(
            "() => { const img = document.getElementById('viewer-img');"
            " return img.src && img.complete && img.naturalWidth > 0; }"
        )
        stage = page.evaluate(
            """() => {
              const img = document.getElementById('viewer-img').getBoundingClientRect();
              const svg = document.querySelector('#viewer-stage svg.regions');
              const box = svg.getBoundingClientRect();
              return {img: [img.left, img.top, img.width, img.height],
                      svg: [box.left, box.top, box.width, box.height],
                      rects: svg.querySelectorAll('rect').length};
            }"""
        )
        assert stage["rects"] == len(thumbs[0]["rects"])
        assert stage["svg"] == pytest.approx(stage["img"], abs=1.5)
        page.screenshot(path=str(artifacts_dir / "web-07-regions-enlarged.png"))
        assert errors == []
