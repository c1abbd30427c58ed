"""LangChain's own standard vector-store tests (``langchain-tests``), run on MmragVectorStore.

The suite embeds with its own ``DeterministicFakeEmbedding`` (``get_embeddings()``) and checks
rankings ("bar" first for the query "bar"), so the store is built with that LangChain
``embedding``: each document's text is embedded by it (and still rendered to a stored page
image). The multimodal path is tested in ``test_vectorstore.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from mmrag.integrations.langchain import MmragVectorStore

pytestmark = pytest.mark.integration


# The suite's async tests are bare ``async def`` s (LangChain runs pytest-asyncio in auto mode):
# mark the class so pytest-asyncio runs them, and silence its note on the synchronous ones.
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning")
class TestMmragVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[MmragVectorStore]:  # type: ignore[override]
        """An empty store in its own folder, embedding with the suite's fake embeddings."""
        config = {"ingest": {"dpi": 36}, "store": {"path": str(tmp_path / "index")}}
        with MmragVectorStore(embedding=self.get_embeddings(), config=config) as store:
            yield store
