"""The generator conformance suite on mmrag's generators: the LangChain adapter over
langchain-core's fake chat models (the provider's side of the boundary), and the transformers
generator over a tiny Idefics3 (SmolVLM's architecture).

Each class only says how to build its generator;
:class:`~mmrag.testing.conformance.generator.GeneratorConformance` holds every check.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from mmrag.generators.langchain import LangChainGenerator
from mmrag.registry import resolve
from mmrag.testing.conformance.generator import GeneratorConformance

pytestmark = pytest.mark.integration

#: The fake model's reply: it cites the first two sources (with one hit, [2] is out of range and
#: the answer cites nothing, so every source is its evidence).
REPLY = "Revenue grew 12% [1]; most systems went to the southwest [2, 1]."


class TestLangChainGenerator(GeneratorConformance):
    """Word-by-word streaming (GenericFakeChatModel) and character streaming
    (FakeListChatModel)."""

    @pytest.fixture(params=["generic", "list"])
    def generator(self, request) -> LangChainGenerator:
        from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
        from langchain_core.messages import AIMessage

        if request.param == "generic":
            model = GenericFakeChatModel(messages=itertools.cycle([AIMessage(REPLY)]))
        else:
            model = FakeListChatModel(responses=[REPLY])
        return LangChainGenerator(model, max_images=2)


class TestTransformersGenerator(GeneratorConformance):
    """Greedy decoding: deterministic, so streaming and not give the same answer. (Idefics3:
    the tiny Qwen2-VL's random weights emit only special tokens, an empty answer.)"""

    @pytest.fixture(scope="class")
    @classmethod
    def generator(cls, tiny_idefics3: Path):
        transformers_generator = resolve("generator", "transformers")
        return transformers_generator(
            str(tiny_idefics3), device="cpu", max_new_tokens=6, max_images=2
        )
