"""The tiny-model zoo: every model round-trips save -> load with identical outputs.

For each model: build it in memory, run a forward pass on fixed inputs, save it, load it back
through the path real checkpoints take (``AutoProcessor`` / the family's model class or
``AutoModelForImageTextToText`` / open_clip ``local-dir:``) and compare bit for bit. Also:
processors round-trip, builds are deterministic, generators generate, the catalogue and the
command line do what they say.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from mmrag.testing import (
    MANIFEST_NAME,
    build_all,
    get_spec,
    list_tiny_models,
    make,
    read_manifest,
)
from mmrag.testing.__main__ import main as cli_main
from mmrag.testing.inputs import sample_image

ALL_NAMES = [spec.name for spec in list_tiny_models()]
HF_NAMES = [name for name in ALL_NAMES if name != "open_clip"]

# Two pages of different sizes and shapes, so padding and tiling both come into play.
IMAGES = (sample_image(100, 80, seed=0), sample_image(60, 120, seed=1))
QUERIES = ("what is x?", "a longer query about the figure")
E5V_TEMPLATE = (
    "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n \n"
)


def _requires(name: str) -> None:
    missing = get_spec(name).missing_requirements()
    if missing:
        pytest.skip(f"{name} needs {', '.join(missing)}")


def _chat_inputs(processor: Any) -> dict[str, torch.Tensor]:
    messages = [
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]
        for q in QUERIES
    ]
    texts = [processor.apply_chat_template(m, add_generation_prompt=True) for m in messages]
    images = [[image] for image in IMAGES]
    return dict(processor(text=texts, images=images, return_tensors="pt", padding=True))


def _qwen2vl_inputs(processor: Any) -> dict[str, torch.Tensor]:
    messages = [
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]
        for q in QUERIES
    ]
    texts = [processor.apply_chat_template(m, add_generation_prompt=True) for m in messages]
    return dict(processor(text=texts, images=list(IMAGES), return_tensors="pt", padding=True))


def _retrieval_inputs(processor: Any) -> dict[str, torch.Tensor]:
    pages = processor.process_images(images=list(IMAGES))
    queries = processor.process_queries(text=list(QUERIES))
    return {
        **{f"page.{k}": v for k, v in pages.items()},
        **{f"query.{k}": v for k, v in queries.items()},
    }


def _e5v_inputs(processor: Any) -> dict[str, torch.Tensor]:
    prompt = E5V_TEMPLATE.format("<image>\nSummary above image in one word: ")
    return dict(
        processor(text=[prompt] * 2, images=list(IMAGES), return_tensors="pt", padding=True)
    )


def _logits(model: Any, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [model(**inputs).logits]


def _embeddings(model: Any, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    outputs = []
    for prefix in ("page.", "query."):
        batch = {k[len(prefix) :]: v for k, v in inputs.items() if k.startswith(prefix)}
        outputs.append(model(**batch).embeddings)
    return outputs


def _last_token_state(model: Any, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    out = model(**inputs, output_hidden_states=True)
    return [out.logits, out.hidden_states[-1][:, -1]]


def _auto_image_text_to_text(path: Path) -> Any:
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(path)


def _by_class(class_name: str) -> Callable[[Path], Any]:
    def load(path: Path) -> Any:
        import transformers

        return getattr(transformers, class_name).from_pretrained(path)

    return load


@dataclass(frozen=True)
class Case:
    """How to feed one Hugging Face tiny model and load it the way its real checkpoint loads."""

    inputs: Callable[[Any], dict[str, torch.Tensor]]
    outputs: Callable[[Any, dict[str, torch.Tensor]], list[torch.Tensor]]
    load_model: Callable[[Path], Any]
    prepare_processor: Callable[[Any], None] = lambda processor: None


def _left_padding(processor: Any) -> None:
    processor.tokenizer.padding_side = "left"


CASES: dict[str, Case] = {
    "qwen2vl": Case(_qwen2vl_inputs, _logits, _auto_image_text_to_text),
    "colqwen2": Case(_retrieval_inputs, _embeddings, _by_class("ColQwen2ForRetrieval")),
    "colpali": Case(_retrieval_inputs, _embeddings, _by_class("ColPaliForRetrieval")),
    "colmodernvbert": Case(_retrieval_inputs, _embeddings, _by_class("ColModernVBertForRetrieval")),
    "idefics3": Case(_chat_inputs, _logits, _auto_image_text_to_text),
    "smolvlm": Case(_chat_inputs, _logits, _auto_image_text_to_text),
    "llava_next": Case(_e5v_inputs, _last_token_state, _auto_image_text_to_text, _left_padding),
}


def _assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sorted(sa) == sorted(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# --- the catalogue -------------------------------------------------------------------------


@pytest.mark.unit
def test_every_supported_architecture_is_in_the_zoo():
    assert ALL_NAMES == [
        "qwen2vl",
        "colqwen2",
        "colpali",
        "colmodernvbert",
        "idefics3",
        "smolvlm",
        "llava_next",
        "open_clip",
    ]
    assert set(CASES) == set(HF_NAMES)
    assert get_spec("llava_next").stands_in_for == "royokong/e5-v"
    assert get_spec("colqwen2").architecture == "ColQwen2ForRetrieval"


@pytest.mark.unit
def test_unknown_name_lists_supported_models():
    with pytest.raises(ValueError, match=r"Unknown tiny model 'nope'\. Supported: qwen2vl, "):
        get_spec("nope")


# --- save -> load round trips -------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("name", HF_NAMES)
def test_round_trip_gives_identical_outputs(name: str, tmp_path: Path):
    from transformers import AutoProcessor

    _requires(name)
    case = CASES[name]
    tiny = make(name)
    inputs = case.inputs(tiny.processor)
    with torch.no_grad():
        expected = case.outputs(tiny.model, inputs)

    tiny.save(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    case.prepare_processor(processor)
    model = case.load_model(tmp_path).eval()
    assert type(model).__name__ == get_spec(name).architecture
    assert type(processor) is type(tiny.processor)
    assert type(processor.image_processor) is type(tiny.processor.image_processor)

    reloaded_inputs = case.inputs(processor)
    _assert_same_tensors(inputs, reloaded_inputs)
    with torch.no_grad():
        actual = case.outputs(model, reloaded_inputs)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert torch.isfinite(e).all()
        assert torch.equal(a, e)


@pytest.mark.unit
def test_open_clip_round_trips_through_local_dir(tmp_path: Path):
    import open_clip

    tiny = make("open_clip")
    pixels = torch.stack([tiny.preprocess(image) for image in IMAGES])
    tokens = tiny.processor(list(QUERIES))
    with torch.no_grad():
        image_features = tiny.model.encode_image(pixels)
        text_features = tiny.model.encode_text(tokens)

    tiny.save(tmp_path)
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{tmp_path}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{tmp_path}")
    model.eval()
    reloaded_pixels = torch.stack([preprocess(image) for image in IMAGES])
    reloaded_tokens = tokenizer(list(QUERIES))
    assert torch.equal(reloaded_pixels, pixels)
    assert torch.equal(reloaded_tokens, tokens)
    assert tuple(pixels.shape) == (2, 3, 32, 32)
    assert tuple(tokens.shape) == (2, 77)
    with torch.no_grad():
        assert torch.equal(model.encode_image(reloaded_pixels), image_features)
        assert torch.equal(model.encode_text(reloaded_tokens), text_features)
    assert image_features.shape == text_features.shape == (2, 32)


@pytest.mark.unit
@pytest.mark.parametrize("name", HF_NAMES)
def test_built_directory_holds_the_in_memory_model(name: str, tiny_models_dir: Path):
    _requires(name)
    loaded = CASES[name].load_model(tiny_models_dir / name)
    _assert_same_state(loaded, make(name).model)


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("name", ALL_NAMES)
def test_building_twice_gives_identical_weights(name: str):
    _requires(name)
    _assert_same_state(make(name).model, make(name).model)


@pytest.mark.unit
def test_seed_changes_weights():
    a = make("colpali", seed=0).model.state_dict()
    b = make("colpali", seed=1).model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())


@pytest.mark.unit
def test_building_leaves_the_callers_rng_alone():
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    make("qwen2vl")
    assert torch.equal(torch.rand(4), expected)


# --- generation -----------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("name", ["qwen2vl", "idefics3", "smolvlm"])
def test_generators_generate(name: str, tmp_path: Path):
    from transformers import AutoProcessor

    _requires(name)
    tiny = make(name)
    tiny.save(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    processor.tokenizer.padding_side = "left"  # batched generation appends on the right
    model = CASES[name].load_model(tmp_path).eval()
    tokenizer = processor.tokenizer
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    eos = model.generation_config.eos_token_id
    assert tokenizer.eos_token_id in (eos if isinstance(eos, list) else [eos])

    inputs = CASES[name].inputs(processor)
    prompt_length = inputs["input_ids"].shape[1]
    generated = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4)
    assert generated.shape == (2, prompt_length + 4)
    assert torch.equal(generated[:, :prompt_length], inputs["input_ids"])
    again = tiny.model.generate(**inputs, max_new_tokens=4, min_new_tokens=4)
    assert torch.equal(again, generated)
    assert all(isinstance(t, str) for t in tokenizer.batch_decode(generated[:, prompt_length:]))


# --- tokens and image grids -----------------------------------------------------------------


@pytest.mark.unit
def test_qwen2vl_tokenizer_has_true_false_and_specials(tiny_qwen2vl: Path):
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(tiny_qwen2vl).tokenizer
    true_ids = tokenizer.encode("True", add_special_tokens=False)
    false_ids = tokenizer.encode("False", add_special_tokens=False)
    assert len(true_ids) == len(false_ids) == 1
    assert true_ids != false_ids
    assert tokenizer.convert_ids_to_tokens(true_ids + false_ids) == ["True", "False"]
    for token in (
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ):
        ids = tokenizer.encode(token, add_special_tokens=False)
        assert tokenizer.convert_ids_to_tokens(ids) == [token]
    text = "héllo wörld ✓ 中文 True"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


@pytest.mark.unit
def test_qwen2vl_image_budget(tiny_qwen2vl: Path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen2vl)
    batch = _qwen2vl_inputs(processor)
    assert batch["image_grid_thw"].tolist() == [[1, 8, 6], [1, 4, 8]]
    counts = (batch["input_ids"] == processor.image_token_id).sum(1).tolist()
    assert counts == [12, 8]


@pytest.mark.unit
def test_colqwen2_image_tokens_match_grid(tiny_colqwen2: Path):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_colqwen2)
    pages = processor.process_images(images=list(IMAGES))
    merge = processor.image_processor.merge_size
    expected = [int(t * h * w) // merge**2 for t, h, w in pages["image_grid_thw"].tolist()]
    counts = (pages["input_ids"] == processor.image_token_id).sum(1).tolist()
    assert counts == expected == [12, 8]


@pytest.mark.unit
def test_colpali_image_tokens_match_grid(tiny_colpali: Path):
    from transformers import AutoProcessor

    from mmrag.testing.colpali import GRID_SIDE

    processor = AutoProcessor.from_pretrained(tiny_colpali)
    pages = processor.process_images(images=list(IMAGES))
    counts = (pages["input_ids"] == processor.image_token_id).sum(1).tolist()
    assert counts == [GRID_SIDE**2] * 2 == [16, 16]
    assert tuple(pages["pixel_values"].shape) == (2, 3, 56, 56)
    queries = processor.process_queries(text=list(QUERIES))
    assert (queries["input_ids"] == processor.image_token_id).sum() == 0


@pytest.mark.unit
def test_colmodernvbert_image_tokens_match_grid(tiny_colmodernvbert: Path):
    from transformers import AutoProcessor

    from mmrag.testing.colmodernvbert import IMAGE_SEQ_LEN

    processor = AutoProcessor.from_pretrained(tiny_colmodernvbert)
    images = list(IMAGES)  # 100x80 -> 2x2 tiles, 60x120 -> 1x2 tiles
    info = processor.image_processor(
        [[image] for image in images], return_row_col_info=True, return_tensors="pt"
    )
    tiles = [rows[0] * cols[0] for rows, cols in zip(info["rows"], info["cols"], strict=True)]
    expected = [IMAGE_SEQ_LEN * (n + 1) for n in tiles]  # tiles + global view
    pages = processor.process_images(images=images)
    counts = (pages["input_ids"] == processor.image_token_id).sum(1).tolist()
    assert counts == expected
    assert tiles == [4, 2]


@pytest.mark.unit
def test_llava_next_manifest_says_to_pad_left(tiny_llava_next: Path):
    from transformers import AutoProcessor

    assert "padding_side = 'left'" in read_manifest(tiny_llava_next).notes
    processor = AutoProcessor.from_pretrained(tiny_llava_next)
    processor.tokenizer.padding_side = "left"
    batch = processor(text=["a", "a much longer text"], return_tensors="pt", padding=True)
    assert batch["attention_mask"][0, 0] == 0
    assert batch["attention_mask"][:, -1].tolist() == [1, 1]


# --- manifests, build_all and the command line ----------------------------------------------


@pytest.mark.unit
def test_manifests_describe_each_directory(tiny_models_dir: Path):
    built = sorted(p.name for p in tiny_models_dir.iterdir())
    expected = sorted(spec.name for spec in list_tiny_models() if spec.available)
    assert built == expected
    for name in built:
        raw = json.loads((tiny_models_dir / name / MANIFEST_NAME).read_text())
        assert set(raw) == {"name", "architecture", "stands_in_for", "seed", "notes"}
        manifest = read_manifest(tiny_models_dir / name)
        spec = get_spec(name)
        assert manifest.name == name
        assert manifest.architecture == spec.architecture
        assert manifest.stands_in_for == spec.stands_in_for
        assert manifest.seed == 0
        assert manifest.notes


@pytest.mark.unit
def test_read_manifest_names_the_fix(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"python -m mmrag\.testing build"):
        read_manifest(tmp_path)


@pytest.mark.unit
def test_build_all_only_some(tmp_path: Path):
    built = build_all(tmp_path, names=["colpali", "open_clip"], seed=3)
    assert built == {"colpali": tmp_path / "colpali", "open_clip": tmp_path / "open_clip"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colpali", "open_clip"]
    assert read_manifest(tmp_path / "open_clip").seed == 3
    assert (tmp_path / "open_clip" / "open_clip_model.safetensors").is_file()


@pytest.mark.unit
def test_cli_list_and_bad_name(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    assert cli_main(["list"]) == 0
    listed = capsys.readouterr().out
    for spec in list_tiny_models():
        assert spec.name in listed
        assert spec.stands_in_for in listed
    assert cli_main(["build", str(tmp_path), "--only", "nope"]) == 2
    assert "Supported: qwen2vl" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
@pytest.mark.slow
def test_cli_builds_every_model(tmp_path: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = tmp_path / "zoo"
    result = subprocess.run(
        [sys.executable, "-m", "mmrag.testing", "build", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = [spec.name for spec in list_tiny_models() if spec.available]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    printed = dict(line.split(maxsplit=1) for line in result.stdout.splitlines())
    assert printed == {name: str(out / name) for name in expected}
    for name in expected:
        assert read_manifest(out / name).name == name
    for name in expected:
        if name != "open_clip":
            assert (out / name / "config.json").is_file()
            assert (out / name / "model.safetensors").is_file()
