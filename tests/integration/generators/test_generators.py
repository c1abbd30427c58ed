"""Generators: the tiny VLMs see the images and the question in their chat templates; the
LangChain adapter sends multimodal content blocks to a chat model (a fake on the other side)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmrag.generators.base import DEFAULT_SYSTEM_PROMPT, PromptSettings, cited_hits, context_parts
from mmrag.generators.langchain import LangChainGenerator
from mmrag.generators.transformers_vlm import TransformersGenerator
from mmrag.testing.media import text_frame
from mmrag.types import Hit, Item

pytestmark = pytest.mark.integration

QUESTION = "How much did revenue grow in 2024?"


def make_hits() -> list[Hit]:
    page = Item(
        source="report.pdf",
        source_sha256="ab" * 32,
        modality="pdf_page",
        page=2,
        page_label="1",
        text="Revenue grew 12% in 2024.",
        image_loader=lambda: text_frame("Revenue +12%", (200, 120)),
    )
    frame = Item(
        source="update.mp4",
        source_sha256="cd" * 32,
        modality="video_frame",
        frame_index=96,
        timestamp_s=4.0,
        image_loader=lambda: text_frame("Southwest 1,240", (160, 90)),
    )
    photo = Item(
        source="roof.jpg",
        source_sha256="ef" * 32,
        modality="image",
        image_loader=lambda: text_frame("roof", (90, 120)),
    )
    return [Hit(id=i.id, score=1.0 - n / 10, item=i) for n, i in enumerate((page, frame, photo))]


# -- shared prompt and citations -----------------------------------------------------------------


def test_context_parts_number_the_sources_and_carry_images_and_text():
    parts = context_parts(QUESTION, make_hits(), PromptSettings(max_images=2))
    texts = "".join(p.text for p in parts if p.kind == "text")
    images = [p.image for p in parts if p.kind == "image"]
    assert "[1] report.pdf p.2 (label 1)" in texts
    assert "[2] update.mp4 @ 0:04.0" in texts
    assert "roof.jpg" not in texts  # max_images=2: the third hit is not shown
    assert "Revenue grew 12% in 2024." in texts
    assert texts.rstrip().endswith("cite them like [1].") and f"Question: {QUESTION}" in texts
    assert [im.size for im in images] == [(200, 120), (160, 90)]
    # the image follows its own header
    kinds = [(p.kind, p.text.strip()[:3]) for p in parts]
    assert kinds.index(("image", "")) == kinds.index(("text", "[1]")) + 1


def test_cited_hits_follow_the_markers_else_all_sources():
    hits = make_hits()
    assert [h.id for h in cited_hits("grew 12% [1]; most installs [2, 1]", hits)] == [
        hits[0].id,
        hits[1].id,
    ]
    assert [h.id for h in cited_hits("see [3]", hits)] == [hits[2].id]
    assert [h.id for h in cited_hits("[9] is out of range", hits)] == [h.id for h in hits]
    assert cited_hits("no markers", hits) == hits


# -- local transformers VLMs -------------------------------------------------------------------


@pytest.fixture(scope="module", params=["qwen2vl", "idefics3", "smolvlm"])
def generator(request) -> TransformersGenerator:
    path = request.getfixturevalue(f"tiny_{request.param}")
    return TransformersGenerator(str(path), device="cpu", max_new_tokens=6, max_images=2)


def test_prompt_holds_system_question_sources_and_one_image_per_source(generator):
    text = generator.prompt_text(QUESTION, make_hits())
    family = generator._model.config.model_type
    image_token = "<|image_pad|>" if family == "qwen2_vl" else "<image>"
    assert text.count(image_token) == 2  # max_images=2
    assert DEFAULT_SYSTEM_PROMPT in text
    assert f"Question: {QUESTION}" in text
    first, second = text.index("[1] report.pdf p.2"), text.index("[2] update.mp4 @ 0:04.0")
    assert first < text.index(image_token) < second  # each image follows its header
    if family == "qwen2_vl":
        assert text.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n")
        assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    else:  # Idefics3 / SmolVLM template
        assert text.startswith(f"<|im_start|>System: {DEFAULT_SYSTEM_PROMPT}<end_of_utterance>")
        assert text.endswith("<end_of_utterance>\nAssistant:")


def test_generate_returns_an_answer_citing_the_shown_sources(generator):
    hits = make_hits()
    answer = generator.generate(QUESTION, hits)
    assert answer.sources == hits[:2]
    assert answer.citations and all(c in hits[:2] for c in answer.citations)
    assert answer.usage["prompt_tokens"] > 20
    assert 1 <= answer.usage["completion_tokens"] <= 6


def test_streaming_gives_the_same_text_piece_by_piece(generator):
    hits = make_hits()
    pieces: list[str] = []
    streamed = generator.generate(QUESTION, hits, on_token=pieces.append)
    plain = generator.generate(QUESTION, hits)  # greedy: deterministic
    assert "".join(pieces).strip() == streamed.text == plain.text
    assert streamed.usage == plain.usage


def test_generator_model_sees_the_page_pixels(generator):
    # the same prompt with different page images must change the model's input pixels
    hits = make_hits()[:1]
    other = [Hit(id=hits[0].id, score=1.0, item=_with_image(hits[0].item, "blank"))]
    proc = generator._processor

    def pixels(h: list[Hit]) -> Any:
        inputs = proc.apply_chat_template(
            generator.messages(QUESTION, h),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        return inputs["pixel_values"]

    assert not pixels(hits).equal(pixels(other))


def _with_image(item: Item, text: str) -> Item:
    import dataclasses

    return dataclasses.replace(item, image_loader=lambda: text_frame(text, (200, 120)))


def test_generator_config_round_trip():
    from mmrag.config import GeneratorSpec, PipelineConfig

    gen = TransformersGenerator("org/model", max_new_tokens=64, temperature=0.3, top_p=0.9)
    rebuilt = GeneratorSpec.model_validate(gen.to_dict()).build()
    assert rebuilt.to_dict() == gen.to_dict() and rebuilt.do_sample
    default = PipelineConfig().generator
    assert default is not None and default.type == "transformers"
    assert default.init_parameters["model"] == "HuggingFaceTB/SmolVLM-256M-Instruct"


# -- LangChain adapter ---------------------------------------------------------------------------


def recording_model(reply: str) -> Any:
    """langchain-core's fake chat model, recording the messages it receives."""
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    class Recording(GenericFakeChatModel):
        received: list = []  # noqa: RUF012

        def _generate(self, messages, *args, **kwargs):
            self.received.append(messages)
            return super()._generate(messages, *args, **kwargs)

        def _stream(self, messages, *args, **kwargs):
            self.received.append(messages)
            yield from super()._stream(messages, *args, **kwargs)

    return Recording(messages=iter([AIMessage(reply)] * 3))


def test_langchain_generator_sends_images_and_question_as_content_blocks():
    model = recording_model("Revenue grew 12% [1].")
    gen = LangChainGenerator(model, max_images=2)
    hits = make_hits()
    answer = gen.generate(QUESTION, hits)
    (messages,) = model.received
    system, human = messages
    assert system.type == "system" and system.content == DEFAULT_SYSTEM_PROMPT
    blocks = human.content
    images = [b for b in blocks if b["type"] == "image"]
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    assert len(images) == 2 and all(b["mime_type"] == "image/jpeg" for b in images)
    sizes = [Image.open(io.BytesIO(base64.b64decode(b["base64"]))).size for b in images]
    assert sizes == [(200, 120), (160, 90)]
    assert f"Question: {QUESTION}" in text and "[2] update.mp4 @ 0:04.0" in text
    assert answer.text == "Revenue grew 12% [1]."
    assert answer.citations == [hits[0]] and answer.sources == hits[:2]


def test_langchain_generator_streams_and_openai_image_format():
    model = recording_model("Southwest installed the most [2].")
    gen = LangChainGenerator(model, image_format="openai")
    pieces: list[str] = []
    answer = gen.generate(QUESTION, make_hits(), on_token=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == "Southwest installed the most [2]."
    assert answer.citations[0].item.timestamp_s == 4.0
    blocks = model.received[0][1].content
    urls = [b["image_url"]["url"] for b in blocks if b["type"] == "image_url"]
    assert len(urls) == 3 and all(u.startswith("data:image/jpeg;base64,") for u in urls)


def test_langchain_generator_from_config_with_chat_class():
    from mmrag.config import GeneratorSpec

    spec = GeneratorSpec(
        type="langchain",
        init_parameters={
            "chat_class": "langchain_core.language_models.fake_chat_models.FakeListChatModel",
            "model_kwargs": {"responses": ["From config [1]."]},
            "max_images": 1,
        },
    )
    gen = spec.build()
    answer = gen.generate(QUESTION, make_hits())
    assert answer.text == "From config [1]." and len(answer.sources) == 1
    assert gen.to_dict()["init_parameters"]["max_images"] == 1


def test_langchain_generator_errors_name_the_fix():
    from mmrag.errors import ConfigError, MissingDependencyError

    with pytest.raises(ConfigError, match="needs a chat model"):
        LangChainGenerator()
    gen = LangChainGenerator(chat_class="no_such_pkg.ChatThing")
    with pytest.raises(MissingDependencyError, match="no_such_pkg"):
        gen.generate(QUESTION, make_hits())


def test_generators_share_the_protocol(tiny_idefics3: Path):
    from mmrag.generators.base import Generator

    assert isinstance(TransformersGenerator(str(tiny_idefics3)), Generator)
    assert isinstance(LangChainGenerator(recording_model("x")), Generator)
