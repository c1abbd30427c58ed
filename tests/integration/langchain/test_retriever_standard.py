"""LangChain's own standard retriever tests (``langchain-tests``), run on MmragRetriever."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from mmrag.integrations.langchain import MmragRetriever
from mmrag.pipeline.pipeline import Pipeline

pytestmark = pytest.mark.integration


# The suite's async test is a bare ``async def`` (LangChain runs pytest-asyncio in auto mode, and
# forbids overriding its tests): mark the class so pytest-asyncio runs it, and silence the note
# pytest-asyncio adds to the class's synchronous tests.
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning")
class TestMmragRetrieverStandard(RetrieversIntegrationTests):
    pipeline: Pipeline

    @pytest.fixture(autouse=True)
    def _index(self, indexed_pipeline: Pipeline) -> None:
        self.pipeline = indexed_pipeline

    @property
    def retriever_constructor(self) -> type[MmragRetriever]:
        return MmragRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "How much did ACME Solar's revenue grow in 2024?"
