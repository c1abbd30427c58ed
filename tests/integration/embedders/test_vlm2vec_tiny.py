"""VLM2Vec on the seeded tiny Qwen2-VL, loaded by path via from_pretrained; LoRA/DoRA adapters.

Covers: shapes and unit norms from Items, batched == single, the tokens fed to the model against
VLM2Vec's published prompt and image budget, parity with stock transformers run with VLM2Vec's
1-D positions, adapter loading (4.x key names, pickled weights, DoRA) against peft's own merge,
loud failures for adapters that do not fit, and canonical reference values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmrag.embedders import load_embedder
from mmrag.embedders._lora import AdapterLoadError
from mmrag.embedders.base import Query
from mmrag.embedders.vlm2vec import VLM2VecEmbedder
from mmrag.errors import ConfigError
from mmrag.testing.inputs import sample_image
from mmrag.types import Item, Modality

pytestmark = [
    pytest.mark.integration,
    # raised by transformers when peft builds the reference adapter in the fixture below
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
]

QUERY = "what is the revenue?"
DOCUMENT_TEXT = " Understand the content of the provided document image."
DOCUMENT_PROMPT = "<|image_pad|>" + DOCUMENT_TEXT
#: VLM2Vec's ``lora_target_modules`` default (``src/arguments.py``).
VLM2VEC_TARGETS = [
    "qkv_proj",
    "o_proj",
    "gate_up_proj",
    "down_proj",
    "k_proj",
    "q_proj",
    "out_proj",
    "v_proj",
    "gate_proj",
    "up_proj",
]

#: Canonical values on the seeded tiny ``qwen2vl`` (``mmrag.testing``, seed 0): the first 4 dims
#: of the page embedding of ``sample_image()``, of the ``QUERY`` embedding and of the
#: ``QUERY`` + ``sample_image(seed=1)`` embedding, and their page·query score. They guard the
#: recipe (prompts, positions, image budget, pooling) against silent drift. Regenerate only after
#: a deliberate change: print ``embedder.embed_images([sample_image()])[0].dense[:4]`` etc. with
#: ``VLM2VecEmbedder(<tiny qwen2vl>, device="cpu")`` and paste the values here.
CANONICAL = {
    "page": [0.088182, 0.320544, 0.275369, 0.112993],
    "query": [0.145807, -0.052107, -0.028851, -0.098227],
    "image_query": [0.136562, -0.068937, -0.012523, -0.095324],
    "score": 0.130634,
}


@pytest.fixture(scope="module")
def embedder(tiny_qwen2vl: Path) -> VLM2VecEmbedder:
    return VLM2VecEmbedder(str(tiny_qwen2vl), device="cpu", batch_size=2).load()


def pages() -> list:
    """Pages of different sizes: a 100x80, a 300x200 (77 image tokens) and a tiny 20x40."""
    return [sample_image(), sample_image(300, 200, seed=1), sample_image(20, 40, seed=2)]


def item(image, page: int) -> Item:
    return Item(
        source="doc.pdf",
        source_sha256="ab" * 32,
        modality=Modality.PDF_PAGE,
        page=page,
        image_loader=lambda: image,
    )


def test_loads_by_path_and_embeds_items(tiny_qwen2vl: Path):
    embedder = load_embedder(str(tiny_qwen2vl), device="cpu", batch_size=2)
    assert isinstance(embedder, VLM2VecEmbedder)
    embeddings = embedder.embed_documents([item(p, i + 1) for i, p in enumerate(pages())])
    assert embedder.dim == 32
    assert len(embeddings) == 3
    for e in embeddings:
        assert e.kind == "single" and e.dense.shape == (32,) and e.dense.dtype == np.float32
        assert np.linalg.norm(e.dense) == pytest.approx(1.0, abs=1e-5)


def test_batched_equals_single(embedder: VLM2VecEmbedder):
    # padding (left) must not change an embedding: pages of different token counts, mixed queries
    batched = embedder.embed_images(pages())
    for image, got in zip(pages(), batched, strict=True):
        np.testing.assert_allclose(got.dense, embedder.embed_images([image])[0].dense, atol=1e-5)
    queries = [QUERY, Query(text="chart", image=sample_image(seed=3)), sample_image(seed=4), "x"]
    for query, got in zip(queries, embedder.embed_queries(queries), strict=True):
        np.testing.assert_allclose(got.dense, embedder.embed_queries([query])[0].dense, atol=1e-5)


def test_tokens_follow_the_published_prompt_and_image_budget(embedder: VLM2VecEmbedder):
    tokenizer = embedder._processor.tokenizer
    pad_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    vision_start = tokenizer.convert_tokens_to_ids("<|vision_start|>")
    # VLM2Vec: 28*28*4 <= pixels <= 28*28*1280 (the tiny processor alone would allow 16 tokens),
    # images with a side under 28 px resized to 56x56 first
    for image, tokens in [(sample_image(300, 200), 77), (sample_image(20, 40), 4)]:
        batch = embedder._encode([embedder.document_prompt()], [image])
        ids = batch["input_ids"][0].tolist()
        assert ids.count(pad_id) == tokens
        assert vision_start not in ids  # a bare image token, no <|vision_start|> around it
        assert tokenizer.decode(ids) == "<|image_pad|>" * tokens + DOCUMENT_TEXT
    text = embedder._encode([embedder.query_prompt(QUERY)], [])
    assert tokenizer.decode(text["input_ids"][0]) == (
        "Find a document image that matches the given query: what is the revenue?"
    )
    both = embedder._encode([embedder.query_prompt(QUERY, with_image=True)], [sample_image()])
    assert tokenizer.decode(both["input_ids"][0]) == (
        "<|image_pad|>" * 12 + " Find a document image that matches the given query: "
        "what is the revenue?"
    )


def test_batches_are_left_padded(embedder: VLM2VecEmbedder):
    batch = embedder._encode([embedder.query_prompt("a"), embedder.query_prompt("a" * 40)], [])
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][0, -1] == 1


def test_parity_with_transformers_under_vlm2vec_positions(embedder, tiny_qwen2vl: Path):
    """Stock transformers with zeroed ``mm_token_type_ids`` gives every token VLM2Vec's 1-D
    positions; its ``hidden_states[-1][:, -1]`` must equal ours. Stock 3-D M-RoPE differs."""
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(tiny_qwen2vl)
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_qwen2vl).eval()
    image = sample_image(300, 200, seed=1)
    inputs = processor(
        text=[DOCUMENT_PROMPT],
        images=[image],
        size={"shortest_edge": 28 * 28 * 4, "longest_edge": 28 * 28 * 1280},
        return_tensors="pt",
    )
    with torch.no_grad():
        one_d = dict(inputs, mm_token_type_ids=torch.zeros_like(inputs["mm_token_type_ids"]))
        reference = model(**one_d, output_hidden_states=True).hidden_states[-1][:, -1]
        stock = model(**inputs, output_hidden_states=True).hidden_states[-1][:, -1]
    reference = F.normalize(reference, dim=-1)[0].numpy()
    stock = F.normalize(stock, dim=-1)[0].numpy()
    ours = embedder.embed_images([image])[0].dense
    np.testing.assert_allclose(ours, reference, atol=1e-6)
    assert np.abs(ours - stock).max() > 1e-4  # the M-RoPE trap is real on this model


def test_canonical_values(embedder: VLM2VecEmbedder):
    page = embedder.embed_images([sample_image()])[0].dense
    query, image_query = embedder.embed_queries(
        [QUERY, Query(text=QUERY, image=sample_image(seed=1))]
    )
    np.testing.assert_allclose(page[:4], CANONICAL["page"], atol=1e-4)
    np.testing.assert_allclose(query.dense[:4], CANONICAL["query"], atol=1e-4)
    np.testing.assert_allclose(image_query.dense[:4], CANONICAL["image_query"], atol=1e-4)
    assert float(page @ query.dense) == pytest.approx(CANONICAL["score"], abs=1e-4)


# -- adapters ----------------------------------------------------------------------------------


def _write_adapter(folder: Path, config: dict, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    torch.save(tensors, folder / "adapter_model.bin")  # the pickled format of VLM2Vec's V1 repo
    return folder


@pytest.fixture(scope="module")
def adapters(tiny_qwen2vl: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A DoRA adapter on the tiny Qwen2-VL, saved by peft (5.x names), the same adapter in the
    transformers-4.x layout of VLM2Vec's published adapters, and peft's own merged model."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from safetensors.torch import load_file
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    root = tmp_path_factory.mktemp("adapters")
    base = Qwen2VLForConditionalGeneration.from_pretrained(tiny_qwen2vl)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        use_dora=True,
        init_lora_weights="gaussian",
        target_modules=VLM2VEC_TARGETS,
    )
    peft_model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained-looking adapter: non-zero B, magnitudes off the norms
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(0.05 * torch.randn(param.shape, generator=generator))
            elif "lora_magnitude_vector" in name:
                param.mul_(1 + 0.1 * torch.rand(param.shape, generator=generator))
    v5 = root / "adapter-v5"
    peft_model.save_pretrained(v5)
    tensors = load_file(v5 / "adapter_model.safetensors")
    assert all(".model.language_model.layers." in key for key in tensors)
    adapter_config = json.loads((v5 / "adapter_config.json").read_text())
    v4_tensors = {k.replace(".language_model.", "."): v for k, v in tensors.items()}
    v4 = _write_adapter(root / "adapter-v4", adapter_config, v4_tensors)

    reference = PeftModel.from_pretrained(
        Qwen2VLForConditionalGeneration.from_pretrained(tiny_qwen2vl), v5
    ).merge_and_unload()
    merged = root / "merged"
    reference.save_pretrained(merged)
    AutoProcessor.from_pretrained(tiny_qwen2vl).save_pretrained(merged)
    return {
        "v5": v5,
        "v4": v4,
        "merged": merged,
        "config": adapter_config,
        "tensors": v4_tensors,
        "state": reference.state_dict(),
        "root": root,
    }


def test_adapter_in_4x_layout_loads_and_equals_peft_merge(adapters, embedder, tiny_qwen2vl):
    assert adapters["config"]["base_model_name_or_path"] == str(tiny_qwen2vl)
    loaded = VLM2VecEmbedder(str(adapters["v4"]), device="cpu").load()
    state = loaded._model.state_dict()
    for key, value in adapters["state"].items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=1e-6)
    merged = VLM2VecEmbedder(str(adapters["merged"]), device="cpu")
    for ours, reference, base in zip(
        loaded.embed_images(pages()),
        merged.embed_images(pages()),
        embedder.embed_images(pages()),
        strict=True,
    ):
        np.testing.assert_allclose(ours.dense, reference.dense, atol=1e-5)
        assert np.abs(ours.dense - base.dense).max() > 1e-3  # the adapter did change the model


def test_adapter_with_explicit_base_model(adapters, tiny_qwen2vl):
    config = dict(adapters["config"], base_model_name_or_path=None)
    folder = _write_adapter(adapters["root"] / "no-base", config, adapters["tensors"])
    with pytest.raises(ConfigError, match="without a base model"):
        VLM2VecEmbedder(str(folder), device="cpu").load()
    embedder = VLM2VecEmbedder(str(folder), base_model=str(tiny_qwen2vl), device="cpu")
    assert embedder.id_settings()["base_model"] == str(tiny_qwen2vl)
    reference = VLM2VecEmbedder(str(adapters["merged"]), device="cpu")
    np.testing.assert_allclose(
        embedder.embed_queries([QUERY])[0].dense,
        reference.embed_queries([QUERY])[0].dense,
        atol=1e-5,
    )


def test_adapter_tensors_matching_no_module_raise(adapters):
    tensors = {
        k.replace(".model.layers.", ".model.decoder.blocks."): v
        for k, v in adapters["tensors"].items()
    }
    folder = _write_adapter(adapters["root"] / "foreign", adapters["config"], tensors)
    with pytest.raises(AdapterLoadError, match=r"match no module of the base model"):
        VLM2VecEmbedder(str(folder), device="cpu").load()


def test_adapter_missing_tensors_raise(adapters):
    tensors = {k: v for k, v in adapters["tensors"].items() if ".layers.1." not in k}
    folder = _write_adapter(adapters["root"] / "partial", adapters["config"], tensors)
    with pytest.raises(AdapterLoadError, match="have no saved tensor"):
        VLM2VecEmbedder(str(folder), device="cpu").load()


def test_a_non_qwen2vl_checkpoint_is_refused(tiny_llava_next: Path):
    with pytest.raises(ConfigError, match="needs a Qwen2-VL"):
        VLM2VecEmbedder(str(tiny_llava_next), device="cpu").load()
