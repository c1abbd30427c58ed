"""The MLLM rerankers' image budget: by default the checkpoint's processor settings (as on the
model card, no cap); ``max_pixels`` caps the pixels per page as an explicit speed setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.rerankers.monoqwen import MonoQwenReranker
from mmrag.testing.qwen2vl import MAX_PIXELS

pytestmark = pytest.mark.integration

QUERY = "How much did revenue grow in 2024?"
CAP = 8 * 28 * 28  # 8 merged patches, below the tiny processor's own 16


def image_tokens(reranker: MonoQwenReranker, processor, image, **kwargs) -> tuple[int, list]:
    batch = processor(
        text=[reranker.chat_text(QUERY)], images=[image], return_tensors="pt", **kwargs
    )
    count = int((batch["input_ids"] == processor.image_token_id).sum())
    return count, batch["image_grid_thw"][0].tolist()


def base_dir(tiny_monoqwen: Path) -> Path:
    return tiny_monoqwen / "base"  # the adapter's base: the model card's processor comes from it


def test_default_budget_is_the_processors_own(tiny_monoqwen):
    from PIL import Image
    from transformers import AutoProcessor

    reranker = MonoQwenReranker(str(tiny_monoqwen), device="cpu").load()
    assert reranker.max_pixels is None and reranker._processor_kwargs() == {}
    alone = AutoProcessor.from_pretrained(base_dir(tiny_monoqwen))
    big = Image.new("RGB", (1000, 800), "white")
    ours = image_tokens(reranker, reranker._processor, big, **reranker._processor_kwargs())
    assert ours == image_tokens(reranker, alone, big)
    count, (t, h, w) = ours
    assert count == t * h * w // 4 and CAP < t * h * w * 14 * 14 <= MAX_PIXELS  # its own budget
    (score,) = reranker.score_images(QUERY, [big])
    assert 0.0 < score < 1.0


def test_max_pixels_caps_the_image_tokens(tiny_monoqwen):
    from PIL import Image

    reranker = MonoQwenReranker(str(tiny_monoqwen), device="cpu", max_pixels=CAP).load()
    assert reranker.to_dict()["init_parameters"]["max_pixels"] == CAP
    big = Image.new("RGB", (1000, 800), "white")
    count, (t, h, w) = image_tokens(
        reranker, reranker._processor, big, **reranker._processor_kwargs()
    )
    uncapped = MonoQwenReranker(str(tiny_monoqwen), device="cpu").load()
    default_count, _ = image_tokens(uncapped, uncapped._processor, big)
    assert t * h * w * 14 * 14 <= CAP and count < default_count
    page = Image.new("RGB", (1000, 800), "white")
    page.paste((0, 0, 0), (100, 100, 900, 140))
    capped_score, default_score = (r.score_images(QUERY, [page])[0] for r in (reranker, uncapped))
    assert capped_score != pytest.approx(default_score, abs=1e-6)  # the cap changes what it sees
