"""MLLM rerankers on tiny Qwen2-VL checkpoints in the published layouts.

The reference scores are computed here independently, following the model cards' recipes step by
step (MonoQwen2-VL: peft's own merge, chat template, softmax over True/False at the last
position; jina-reranker-m0: prompt, appended score token, two-layer head, sigmoid(x - 2.65)).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mmrag.errors import ConfigError
from mmrag.rerankers.monoqwen import MONOQWEN_PROMPT, MonoQwenReranker
from mmrag.rerankers.score_head import JINA_LOGIT_BIAS, ScoreHeadReranker, jina_prompt
from mmrag.testing.media import text_frame
from mmrag.testing.rerankers import build_score_head_checkpoint
from mmrag.types import Hit, Item

pytestmark = pytest.mark.integration

BUDGET = 12544  # the tiny Qwen2-VL's image budget (12 merged patches)
TOL = 2e-5  # batched (left-padded) vs one-at-a-time float32 on CPU threads
QUERY = "How much did revenue grow in 2024?"
TEXTS = ["Revenue grew 12%", "Installed 1,240 systems", "Board of directors", "Safety report"]


def pages() -> list:
    colours = [(255, 255, 255), (230, 240, 255), (255, 230, 230), (235, 255, 235)]
    return [
        text_frame(text, (100 + 20 * i, 80), background=colour)
        for i, (text, colour) in enumerate(zip(TEXTS, colours, strict=True))
    ]


def hits_for(images: list) -> list[Hit]:
    hits = []
    for page, image in enumerate(images, start=1):
        item = Item(
            source="report.pdf",
            source_sha256="ab" * 32,
            modality="pdf_page",
            page=page,
            image_loader=lambda image=image: image,
        )
        hits.append(Hit(id=item.id, score=1.0 / page, item=item, stage_scores={"full": 1.0 / page}))
    return hits


# -- MonoQwen2-VL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mono(tiny_monoqwen: Path) -> MonoQwenReranker:
    return MonoQwenReranker(str(tiny_monoqwen), device="cpu", max_pixels=BUDGET, batch_size=3)


def base_of(adapter: Path) -> Path:
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    return Path(config["base_model_name_or_path"])


@pytest.fixture(scope="module")
def mono_reference(tiny_monoqwen: Path) -> list[float]:
    """The model card's recipe, one image at a time, on peft's own merge of the adapter."""
    from peft import PeftModel
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    base = Qwen2VLForConditionalGeneration.from_pretrained(base_of(tiny_monoqwen))
    model = PeftModel.from_pretrained(base, tiny_monoqwen).merge_and_unload().eval()
    processor = AutoProcessor.from_pretrained(base_of(tiny_monoqwen))
    true_id = processor.tokenizer.convert_tokens_to_ids("True")
    false_id = processor.tokenizer.convert_tokens_to_ids("False")
    prompt = (
        "Assert the relevance of the previous image document to the following query, "
        f"answer True or False. The query is: {QUERY}"
    )
    scores = []
    for image in pages():
        messages = [
            {
                "role": "user",
                "content": [{"type": "image", "image": image}, {"type": "text", "text": prompt}],
            }
        ]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = processor(text=text, images=image, return_tensors="pt")
        with torch.no_grad():
            logits = model(**inputs).logits[:, -1, :]
        pair = torch.stack([logits[:, true_id], logits[:, false_id]], dim=-1)
        scores.append(float(torch.softmax(pair, dim=-1)[0, 0]))
    return scores


def test_monoqwen_prompt_is_the_model_card_string(mono):
    assert MONOQWEN_PROMPT.format(query="What is ColPali?") == (
        "Assert the relevance of the previous image document to the following query, answer "
        "True or False. The query is: What is ColPali?"
    )
    mono.load()
    text = mono.chat_text(QUERY)
    # Qwen2-VL chat template: the image comes first in the user turn, then the prompt, then the
    # assistant generation prompt (the position whose True/False logits are read).
    assert text.endswith(
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        + MONOQWEN_PROMPT.format(query=QUERY)
        + "<|im_end|>\n<|im_start|>assistant\n"
    )


def test_monoqwen_scores_equal_the_model_card_recipe(mono, mono_reference):
    ours = mono.score_images(QUERY, pages())  # batched, left-padded, different image sizes
    assert ours == pytest.approx(mono_reference, abs=TOL)
    gaps = [b - a for a, b in zip(sorted(ours), sorted(ours)[1:], strict=False)]
    assert min(gaps) > 2 * TOL  # distinct scores: the ordering is meaningful


def test_monoqwen_reorders_hits_by_its_scores_and_keeps_top_n(mono, mono_reference):
    hits = hits_for(pages())
    reranked = mono.rerank(QUERY, hits, top_n=3)
    assert len(reranked) == 3
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    assert [h.score for h in reranked] == pytest.approx(sorted(mono_reference)[::-1][:3], abs=TOL)
    assert [h.id for h in reranked] != [h.id for h in hits[:3]]  # the order really changed
    for hit in reranked:
        index = next(i for i, h in enumerate(hits) if h.id == hit.id)
        assert hit.score == pytest.approx(mono_reference[index], abs=TOL)
        assert hit.stage_scores["full"] == hits[index].stage_scores["full"]  # earlier stages kept
        assert hit.stage_scores["monoqwen"] == hit.score
    assert [h.score for h in hits] == [1.0, 0.5, 1 / 3, 0.25]  # inputs untouched


def test_monoqwen_with_equal_true_false_logits_scores_one_half_and_keeps_order(tiny_monoqwen):
    reranker = MonoQwenReranker(str(tiny_monoqwen), device="cpu", max_pixels=BUDGET).load()
    model = reranker._model
    with torch.no_grad():  # a model whose True and False logits are equal everywhere
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
        model.lm_head.weight[reranker._false_id] = model.lm_head.weight[reranker._true_id]
    hits = hits_for(pages())
    reranked = reranker.rerank(QUERY, hits)
    assert [h.score for h in reranked] == pytest.approx([0.5] * 4, abs=1e-6)
    assert [h.id for h in reranked] == [h.id for h in hits]  # ties keep the retrieval order


def test_monoqwen_loads_a_merged_checkpoint_and_an_adapter_alike(
    tiny_monoqwen, tmp_path, mono_reference
):
    from peft import PeftModel
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    base = base_of(tiny_monoqwen)
    merged = PeftModel.from_pretrained(
        Qwen2VLForConditionalGeneration.from_pretrained(base), tiny_monoqwen
    ).merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    AutoProcessor.from_pretrained(base).save_pretrained(tmp_path / "merged")
    reranker = MonoQwenReranker(str(tmp_path / "merged"), device="cpu", max_pixels=BUDGET)
    assert reranker.score_images(QUERY, pages()) == pytest.approx(mono_reference, abs=TOL)


def test_monoqwen_base_model_differs_from_the_adapter(tiny_monoqwen, mono_reference):
    base = MonoQwenReranker(str(base_of(tiny_monoqwen)), device="cpu", max_pixels=BUDGET)
    assert base.score_images(QUERY, pages()) != pytest.approx(mono_reference, abs=1e-3)


def test_rerankers_reject_image_only_queries_and_missing_images(mono):
    from PIL import Image

    from mmrag.embedders.base import Query

    with pytest.raises(ConfigError, match="needs a text query"):
        mono.rerank(Query(image=Image.new("RGB", (32, 32))), hits_for(pages()))
    item = Item(source="gone.pdf", source_sha256="cd" * 32, modality="pdf_page", page=7)
    with pytest.raises(ConfigError, match=r"gone\.pdf p\.7"):
        mono.rerank(QUERY, [Hit(id=item.id, score=1.0, item=item)])


def test_image_budget_caps_the_image_tokens(tiny_monoqwen):
    from PIL import Image

    reranker = MonoQwenReranker(str(tiny_monoqwen), device="cpu", max_pixels=BUDGET).load()
    big = Image.new("RGB", (1000, 800), "white")
    batch = reranker._processor(
        text=[reranker.chat_text(QUERY)], images=[big], **reranker._processor_kwargs()
    )
    t, h, w = batch["image_grid_thw"][0].tolist()
    assert t * h * w * 14 * 14 <= BUDGET  # patches of 14 px within the budget
    (score,) = reranker.score_images(QUERY, [big])
    assert 0.0 < score < 1.0


# -- jina-reranker-m0-style score head ----------------------------------------------------------


@pytest.fixture(scope="module")
def head(tiny_score_head: Path) -> ScoreHeadReranker:
    return ScoreHeadReranker(str(tiny_score_head), device="cpu", max_pixels=BUDGET, batch_size=3)


def head_reference(checkpoint: Path, query: str, images: list) -> list[float]:
    """jina's compute_score recipe, one pair at a time, with the head rebuilt by hand."""
    from safetensors.torch import load_file
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(checkpoint).eval()
    tensors = load_file(checkpoint / "model.safetensors")
    processor = AutoProcessor.from_pretrained(checkpoint)
    scores = []
    for image in images:
        prompt = f"**Document**:\n<|vision_start|><|image_pad|><|vision_end|>\n**Query**:\n{query}"
        batch = processor(text=[prompt], images=[image], return_tensors="pt")
        ids = torch.cat([batch["input_ids"], torch.tensor([[100]])], dim=1)
        mask = torch.cat([batch["attention_mask"], torch.ones((1, 1), dtype=torch.long)], dim=1)
        types = torch.cat([batch["mm_token_type_ids"], torch.zeros((1, 1), dtype=torch.long)], 1)
        with torch.no_grad():
            hidden = model.model(
                input_ids=ids,
                attention_mask=mask,
                mm_token_type_ids=types,
                pixel_values=batch["pixel_values"],
                image_grid_thw=batch["image_grid_thw"],
            ).last_hidden_state[:, -1]
            x = torch.relu(hidden @ tensors["score.0.weight"].T + tensors["score.0.bias"])
            logit = x @ tensors["score.2.weight"].T + tensors["score.2.bias"]
        scores.append(1.0 / (1.0 + math.exp(-(float(logit) - 2.65))))
    return scores


def test_score_head_prompt_is_jinas():
    assert jina_prompt("slm markdown") == (
        "**Document**:\n<|vision_start|><|image_pad|><|vision_end|>\n**Query**:\nslm markdown"
    )
    assert JINA_LOGIT_BIAS == 2.65


def test_score_head_scores_equal_the_reference_recipe(head, tiny_score_head):
    reference = head_reference(tiny_score_head, QUERY, pages())
    assert head.score_images(QUERY, pages()) == pytest.approx(reference, abs=TOL)
    reranked = head.rerank(QUERY, hits_for(pages()), top_n=2)
    assert len(reranked) == 2
    assert reranked[0].score >= reranked[1].score
    best_two = sorted(reference, reverse=True)[:2]
    assert [h.score for h in reranked] == pytest.approx(best_two, abs=TOL)
    for hit in reranked:
        assert hit.score == pytest.approx(reference[hit.item.page - 1], abs=TOL)
        assert hit.stage_scores["score_head"] == hit.score


@pytest.mark.parametrize("bias", [2.65, 5.0, -1.0])
def test_score_head_with_known_head_output(tiny_qwen2vl, tmp_path, bias):
    # head output weight 0, bias b: every page's logit is exactly b -> sigmoid(b - 2.65)
    checkpoint = build_score_head_checkpoint(
        tiny_qwen2vl, tmp_path / "known", head_bias=bias, zero_head_weight=True
    )
    reranker = ScoreHeadReranker(str(checkpoint), device="cpu", max_pixels=BUDGET)
    expected = 1.0 / (1.0 + math.exp(-(bias - 2.65)))
    assert reranker.score_images(QUERY, pages()[:2]) == pytest.approx([expected] * 2, abs=1e-6)


def test_score_head_without_head_tensors_is_a_clear_error(tiny_qwen2vl):
    with pytest.raises(ConfigError, match="no usable score head"):
        ScoreHeadReranker(str(tiny_qwen2vl), device="cpu").load()


def test_rerankers_are_serialisable_and_registered():
    from mmrag.config import RerankerSpec

    spec = RerankerSpec(type="monoqwen", init_parameters={"top_n": 3, "batch_size": 2})
    reranker = spec.build()
    assert isinstance(reranker, MonoQwenReranker) and not reranker.is_loaded
    assert reranker.to_dict()["init_parameters"]["top_n"] == 3
    again = RerankerSpec.model_validate(reranker.to_dict()).build()
    assert again.to_dict() == reranker.to_dict()
    assert isinstance(RerankerSpec(type="score_head").build(), ScoreHeadReranker)
