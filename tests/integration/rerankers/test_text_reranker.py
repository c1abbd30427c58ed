"""The text rerank stage: a tiny random cross-encoder (BERT and XLM-RoBERTa layouts, built and
saved offline, loaded back by path) scoring (query, page text), fused with the visual score,
alone and end to end through the Pipeline on the bundled sample (PDF pages with a text layer,
images and video frames without)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError
from mmrag.pipeline.pipeline import Pipeline
from mmrag.rerankers.text import TextReranker, fuse
from mmrag.testing.cross_encoder import build_cross_encoder
from mmrag.types import Hit, Item

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"
QUERY = "How much did ACME Solar's revenue grow in 2024?"
TEXTS = ["Revenue grew 12% in 2024.", "The board met twice.", "Safety first.", "Installed 1,240"]


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def cross_encoder(request, tmp_path_factory) -> Path:
    return build_cross_encoder(
        tmp_path_factory.mktemp(f"xenc_{request.param}"), architecture=request.param
    )


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("xenc_bert"), architecture="bert")


def hits(texts: list[str | None]) -> list[Hit]:
    out = []
    for page, text in enumerate(texts, start=1):
        item = Item(
            source="r.pdf", source_sha256="ab" * 32, modality="pdf_page", page=page, text=text
        )
        out.append(Hit(id=item.id, score=10.0 - page, item=item, stage_scores={"full": 10 - page}))
    return out


def test_loads_by_path_and_scores_differ_per_text(cross_encoder):
    from transformers import AutoModelForSequenceClassification

    reranker = TextReranker(str(cross_encoder), device="cpu", batch_size=3)
    scores = reranker.score(QUERY, TEXTS)
    assert len(scores) == 4 and all(0.0 < s < 1.0 for s in scores)
    assert len({round(s, 6) for s in scores}) == 4  # a different score for every text
    one_by_one = [reranker.score(QUERY, [text])[0] for text in TEXTS]  # padding does not matter
    assert scores == pytest.approx(one_by_one, abs=1e-5)
    model = AutoModelForSequenceClassification.from_pretrained(cross_encoder)
    assert type(reranker._model) is type(model) and model.config.num_labels == 1
    long = reranker.score(QUERY, ["revenue " * 2000])  # truncated to the model's positions
    assert 0.0 < long[0] < 1.0


def test_rerank_records_the_text_score_and_keeps_textless_pages_visual(bert):
    reranker = TextReranker(str(bert), device="cpu", fusion="replace")
    incoming = hits([TEXTS[0], None, TEXTS[1], None, TEXTS[2], "  "])
    text_scores = dict(zip([0, 2, 4], reranker.score(QUERY, TEXTS[:3]), strict=True))
    reranked = reranker.rerank(QUERY, incoming)
    by_id = {hit.id: hit for hit in reranked}
    for i, hit in enumerate(incoming):
        out = by_id[hit.id]
        assert out.stage_scores["full"] == hit.stage_scores["full"]
        if i in text_scores:
            assert out.stage_scores["text_rerank"] == pytest.approx(text_scores[i])
            assert out.score == pytest.approx(text_scores[i])
        else:  # no text (or blank): the visual score alone, min-max normalised
            assert "text_rerank" not in out.stage_scores
            assert out.score == pytest.approx((hit.score - 4.0) / 5.0)
    textless = [h.id for h in reranked if "text_rerank" not in h.stage_scores]
    assert textless == [incoming[i].id for i in (1, 3, 5)]  # their visual order
    assert len(reranker.rerank(QUERY, incoming, top_n=2)) == 2
    assert reranker.rerank(QUERY, []) == []
    with pytest.raises(ConfigError, match="fusion"):
        TextReranker(str(bert), fusion="max")  # type: ignore[arg-type]


def test_fusion_formulas():
    text, visual = [0.2, None, 0.9], [3.0, 2.0, 1.0]
    assert fuse(text, visual, fusion="replace") == pytest.approx([0.2, 0.5, 0.9])
    assert fuse(text, visual, fusion="weighted", weight=0.25) == pytest.approx(
        [0.25 * 0.2 + 0.75 * 1.0, 0.5, 0.25 * 0.9]
    )
    assert fuse(text, visual, fusion="weighted", weight=0.0) == pytest.approx([1.0, 0.5, 0.0])
    rrf = fuse(text, visual, fusion="rrf", weight=0.5)
    assert rrf == pytest.approx([0.5 / 62 + 0.5 / 61, 1 / 62, 0.5 / 61 + 0.5 / 63])


# -- end to end through the Pipeline ----------------------------------------------------------


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_colmodernvbert) -> dict:
    root = tmp_path_factory.mktemp("text_rerank_index")
    shutil.copytree(SAMPLE, root / "docs")
    data = {
        "embedder": {
            "type": "colmodernvbert",
            "init_parameters": {"model": str(tiny_colmodernvbert), "device": "cpu"},
        },
        "ingest": {"dpi": 72, "video_fps": 0.5},
        "store": {"path": str(root / "index")},
        "retrieval": {"plan": "global@200 -> distinct@50 -> full@12"},
        "generator": None,
    }
    with Pipeline(PipelineConfig.from_dict(data)) as rag:
        assert rag.index([str(root / "docs")]).ok
    return data


def search(data: dict, reranker: dict | None, k: int = 12) -> list[Hit]:
    with Pipeline(PipelineConfig.from_dict({**data, "reranker": reranker})) as rag:
        return rag.search(QUERY, k=k)


def spec(model: Path, **params) -> dict:
    return {"type": "text", "init_parameters": {"model": str(model), "device": "cpu", **params}}


@pytest.mark.slow
def test_pipeline_text_stage_fuses_with_the_visual_score(indexed, bert):
    candidates = search(indexed, None)
    assert len(candidates) == 12
    with_text = [h for h in candidates if (h.item.text or "").strip()]
    assert with_text and len(with_text) < len(candidates)  # PDF pages and textless media
    expected_text = dict(
        zip(
            [h.id for h in with_text],
            TextReranker(str(bert), device="cpu").score(QUERY, [h.item.text for h in with_text]),
            strict=True,
        )
    )
    visual = [h.score for h in candidates]
    for fusion, weight in [("replace", 0.5), ("weighted", 0.3), ("weighted", 0.0), ("rrf", 0.7)]:
        reranked = search(indexed, spec(bert, fusion=fusion, weight=weight))
        assert sorted(h.id for h in reranked) == sorted(h.id for h in candidates)
        text_scores = [expected_text.get(h.id) for h in candidates]
        fused = dict(
            zip(
                [h.id for h in candidates],
                fuse(text_scores, visual, fusion=fusion, weight=weight),
                strict=True,
            )
        )
        for hit in reranked:
            assert {"global", "distinct", "full"} <= set(hit.stage_scores)
            if hit.id in expected_text:
                assert hit.stage_scores["text_rerank"] == pytest.approx(expected_text[hit.id])
            else:
                assert "text_rerank" not in hit.stage_scores
            assert hit.score == pytest.approx(fused[hit.id], abs=1e-6)
        assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
        textless = [h.id for h in reranked if h.id not in expected_text]
        assert textless == [h.id for h in candidates if h.id not in expected_text]
        if weight == 0.0:  # the visual score alone: the retrieval order back
            assert [h.id for h in reranked] == [h.id for h in candidates]
    top = search(indexed, spec(bert), k=3)
    assert len(top) == 3


# -- the text rerank stage in the plan syntax, beside an MLLM reranker ------------------------

BASE = "global@200 -> distinct@50 -> full@12"


@pytest.mark.slow
def test_plan_text_rerank_stage_then_the_mllm_reranker(indexed, bert, tiny_monoqwen, tmp_path):
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from mmrag.cli import app
    from mmrag.integrations.server import create_app
    from mmrag.rerankers.monoqwen import MonoQwenReranker

    mono_params = {"model": str(tiny_monoqwen), "device": "cpu", "max_pixels": 64 * 28 * 28}
    data = {
        **indexed,
        "text_reranker": spec(bert),
        "reranker": {"type": "monoqwen", "init_parameters": mono_params},
    }
    expected_text = search(indexed, spec(bert), k=6)  # the same cross-encoder as [reranker]
    with Pipeline(PipelineConfig.from_dict(data)) as rag:
        text_only = rag.search(QUERY, k=10, plan=f"{BASE} -> text_rerank@6")
        both = rag.search(QUERY, k=10, plan=f"{BASE} -> text_rerank@6 -> rerank@3")
        # Without rerank stages the plan runs the [reranker] alone, as before.
        mono_only = rag.search(QUERY, k=3, plan=BASE)
        reference = MonoQwenReranker(**mono_params).rerank(QUERY, text_only, top_n=3)
        assert all("text_rerank" not in h.stage_scores for h in mono_only)
        assert all("monoqwen" in h.stage_scores for h in mono_only)
        no_rerank = rag.search(QUERY, k=4, plan=f"{BASE} -> text_rerank@6", rerank=False)
    assert [h.id for h in text_only] == [h.id for h in expected_text]
    assert [h.score for h in text_only] == pytest.approx([h.score for h in expected_text])
    assert [h.id for h in both] == [h.id for h in reference]
    assert [h.stage_scores["monoqwen"] for h in both] == pytest.approx(
        [h.stage_scores["monoqwen"] for h in reference], abs=1e-5
    )
    for hit in both:  # every stage's score is kept
        assert {"global", "distinct", "full", "monoqwen"} <= set(hit.stage_scores)
    assert any("text_rerank" in h.stage_scores for h in text_only)
    assert len(no_rerank) == 4 and all("text_rerank" not in h.stage_scores for h in no_rerank)

    # The same plan through the CLI and the HTTP API.
    config = tmp_path / "mmrag.toml"
    PipelineConfig.from_dict(data).save(config)
    plan = f"{BASE} -> text_rerank@6"
    args = ["search", QUERY, "-c", str(config), "--json", "-k", "10", "--plan", plan]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [h["id"] for h in json.loads(result.stdout)] == [h.id for h in text_only]
    with TestClient(create_app(PipelineConfig.from_dict(data))) as client:
        response = client.get("/api/v1/search", params={"q": QUERY, "k": 10, "plan": plan})
        assert response.status_code == 200, response.text
        assert [h["id"] for h in response.json()["hits"]] == [h.id for h in text_only]


def test_plan_rerank_stage_without_a_reranker_is_a_config_error(indexed):
    with (
        Pipeline(PipelineConfig.from_dict(indexed)) as rag,
        pytest.raises(ConfigError, match=r"'rerank' stage but no reranker"),
    ):
        rag.search(QUERY, plan=f"{BASE} -> rerank@3")
