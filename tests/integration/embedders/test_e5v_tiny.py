"""E5-V on the seeded tiny LLaVA-NeXT, loaded by path via from_pretrained.

Covers: shapes and unit norms from Items, batched == single, the tokens fed to the model against
E5-V's published prompts, left padding set after loading, parity with the E5-V README recipe,
and canonical reference values.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrag.embedders import load_embedder
from mmrag.embedders.base import Query
from mmrag.embedders.e5v import E5VEmbedder
from mmrag.errors import ConfigError
from mmrag.testing.inputs import sample_image
from mmrag.types import Item, Modality

pytestmark = pytest.mark.integration

QUERY = "what is the revenue?"
HEADER = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
FOOTER = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n \n"

#: Canonical values on the seeded tiny ``llava_next`` (``mmrag.testing``, seed 0): the first 4
#: dims of the page embedding of ``sample_image()``, of the ``QUERY`` embedding and of the
#: ``QUERY`` + ``sample_image(seed=1)`` embedding, and their page·query score. They guard the
#: recipe (template, prompts, padding side, pooling) against silent drift. Regenerate only after
#: a deliberate change: print ``E5VEmbedder(<tiny llava_next>, device="cpu")
#: .embed_images([sample_image()])[0].dense[:4]`` etc. and paste the values here.
CANONICAL = {
    "page": [-0.046294, -0.071017, 0.201173, 0.05836],
    "query": [-0.006472, -0.067646, 0.181046, 0.048264],
    "image_query": [-0.043632, -0.066757, 0.17623, 0.070868],
    "score": 0.963265,
}


@pytest.fixture(scope="module")
def embedder(tiny_llava_next: Path) -> E5VEmbedder:
    return E5VEmbedder(str(tiny_llava_next), device="cpu", batch_size=2).load()


def pages() -> list:
    return [sample_image(), sample_image(300, 200, seed=1), sample_image(20, 40, seed=2)]


def test_loads_by_path_and_embeds_items(tiny_llava_next: Path):
    embedder = load_embedder(str(tiny_llava_next), device="cpu", batch_size=2)
    assert isinstance(embedder, E5VEmbedder)
    items = [
        Item(
            source="talk.mp4",
            source_sha256="ef" * 32,
            modality=Modality.VIDEO_FRAME,
            frame_index=i,
            timestamp_s=float(i),
            image_loader=lambda image=image: image,
        )
        for i, image in enumerate(pages())
    ]
    embeddings = embedder.embed_documents(items)
    assert embedder.dim == 32 and len(embeddings) == 3
    for e in embeddings:
        assert e.kind == "single" and e.dense.shape == (32,) and e.dense.dtype == np.float32
        assert np.linalg.norm(e.dense) == pytest.approx(1.0, abs=1e-5)


def test_batched_equals_single(embedder: E5VEmbedder):
    for image, got in zip(pages(), embedder.embed_images(pages()), strict=True):
        np.testing.assert_allclose(got.dense, embedder.embed_images([image])[0].dense, atol=1e-5)
    queries = [QUERY, Query(text="red", image=sample_image(seed=3)), sample_image(seed=4), "x"]
    for query, got in zip(queries, embedder.embed_queries(queries), strict=True):
        np.testing.assert_allclose(got.dense, embedder.embed_queries([query])[0].dense, atol=1e-5)


def test_tokens_follow_the_published_prompts(embedder: E5VEmbedder):
    tokenizer = embedder._processor.tokenizer
    text = embedder._encode([embedder.query_prompt(QUERY)], [])
    assert tokenizer.decode(text["input_ids"][0]) == (
        HEADER + "what is the revenue?\nSummary above sentence in one word: " + FOOTER
    )
    image_id = embedder._processor.image_token_id
    for prompt, body in [
        (embedder.document_prompt(), "\nSummary above image in one word: "),
        (
            embedder.query_prompt(QUERY, with_image=True),
            "\nwhat is the revenue?\nSummary above image and text in one word: ",
        ),
    ]:
        ids = embedder._encode([prompt], [sample_image()])["input_ids"][0].tolist()
        n = ids.count(image_id)
        assert n > 1  # <image> expanded to the page's tile features, right after the user header
        assert tokenizer.decode(ids) == HEADER + "<image>" * n + body + FOOTER


def test_left_padding_is_set_after_loading(embedder: E5VEmbedder, tiny_llava_next: Path):
    from transformers import AutoProcessor

    assert AutoProcessor.from_pretrained(tiny_llava_next).tokenizer.padding_side == "right"
    assert embedder._processor.tokenizer.padding_side == "left"
    batch = embedder._encode([embedder.query_prompt("a"), embedder.query_prompt("a" * 40)], [])
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][0, -1] == 1


def test_parity_with_the_e5v_readme(embedder: E5VEmbedder, tiny_llava_next: Path):
    """The README's own code: left-padded batch, ``hidden_states[-1][:, -1, :]``, normalise."""
    from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor

    processor = LlavaNextProcessor.from_pretrained(tiny_llava_next)
    processor.tokenizer.padding_side = "left"
    model = LlavaNextForConditionalGeneration.from_pretrained(tiny_llava_next).eval()
    llama3_template = (
        "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n \n"
    )
    img_prompt = llama3_template.format("<image>\nSummary above image in one word: ")
    text_prompt = llama3_template.format("<sent>\nSummary above sentence in one word: ")
    texts = ["A dog sitting in the grass.", "A cat standing in the snow, looking at the camera."]
    images = [sample_image(), sample_image(300, 200, seed=1)]
    # keyword arguments: transformers 5.x processors take ``images`` first
    text_inputs = processor(
        text=[text_prompt.replace("<sent>", t) for t in texts], return_tensors="pt", padding=True
    )
    img_inputs = processor(text=[img_prompt] * 2, images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        text_embs = model(**text_inputs, output_hidden_states=True).hidden_states[-1][:, -1, :]
        img_embs = model(**img_inputs, output_hidden_states=True).hidden_states[-1][:, -1, :]
    text_embs, img_embs = F.normalize(text_embs, dim=-1), F.normalize(img_embs, dim=-1)
    ours_text = np.stack([e.dense for e in embedder.embed_queries(texts)])
    ours_img = np.stack([e.dense for e in embedder.embed_images(images)])
    np.testing.assert_allclose(ours_text, text_embs.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours_img, img_embs.numpy(), atol=1e-5)


def test_canonical_values(embedder: E5VEmbedder):
    page = embedder.embed_images([sample_image()])[0].dense
    query, image_query = embedder.embed_queries(
        [QUERY, Query(text=QUERY, image=sample_image(seed=1))]
    )
    np.testing.assert_allclose(page[:4], CANONICAL["page"], atol=1e-4)
    np.testing.assert_allclose(query.dense[:4], CANONICAL["query"], atol=1e-4)
    np.testing.assert_allclose(image_query.dense[:4], CANONICAL["image_query"], atol=1e-4)
    assert float(page @ query.dense) == pytest.approx(CANONICAL["score"], abs=1e-4)


def test_legacy_processor_without_processor_config(embedder, tiny_llava_next, tmp_path):
    """royokong/e5-v ships no processor_config.json (saved by transformers 4.41)."""
    from transformers import AutoProcessor

    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_llava_next, legacy)
    config = json.loads((legacy / "processor_config.json").read_text())
    (legacy / "preprocessor_config.json").write_text(json.dumps(config["image_processor"]))
    (legacy / "processor_config.json").unlink()
    assert AutoProcessor.from_pretrained(legacy).patch_size is None  # cannot expand <image>
    loaded = E5VEmbedder(str(legacy), device="cpu").load()
    assert loaded._processor.patch_size == 14
    assert loaded._processor.num_additional_image_tokens == 1
    for ours, reference in zip(
        loaded.embed_images(pages()), embedder.embed_images(pages()), strict=True
    ):
        np.testing.assert_allclose(ours.dense, reference.dense, atol=1e-6)


def test_a_non_llava_next_checkpoint_is_refused(tiny_qwen2vl: Path):
    with pytest.raises(ConfigError, match="needs a LLaVA-NeXT"):
        E5VEmbedder(str(tiny_qwen2vl), device="cpu").load()
