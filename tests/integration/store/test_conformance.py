"""The store conformance suite on every backend of mmrag.

:class:`~mmrag.testing.conformance.store.StoreConformance` runs on the embedded store (Qdrant
Edge in ``tmp_path``), on the server backend over qdrant-client's local mode (in memory), and
on a real Qdrant server at ``QDRANT_URL`` (marked ``server``; skipped when the variable is
unset). Each class only says how to open a store of its backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from qdrant_client import models

from mmrag.store.embedded import EmbeddedStore
from mmrag.store.server import DEFAULT_INDEXING_THRESHOLD_KB, ServerStore
from mmrag.testing.conformance.corpus import schema_for
from mmrag.testing.conformance.store import StoreConformance, StoreFactory

pytestmark = pytest.mark.integration


def _server_factory(client, prefix: str, opened: list) -> StoreFactory:
    def factory(schema=None, collection: str = "c", recreate: bool = False):
        store = ServerStore(client, prefix + collection, schema, recreate=recreate)
        opened.append(store)
        return store

    return factory


class TestEmbeddedStore(StoreConformance):
    """Qdrant Edge in-process; several calls open the same folder."""

    @pytest.fixture
    def open_store(self, tmp_path) -> Iterator[StoreFactory]:
        opened: list[EmbeddedStore] = []

        def factory(schema=None, collection: str = "c", recreate: bool = False):
            store = EmbeddedStore(tmp_path / "index", collection, schema, recreate=recreate)
            opened.append(store)
            return store

        yield factory
        for store in opened:
            store.close()


class TestServerStoreLocalMode(StoreConformance):
    """The server backend on qdrant-client's local mode; several calls share one client."""

    @pytest.fixture
    def open_store(self) -> Iterator[StoreFactory]:
        from qdrant_client import QdrantClient

        client = QdrantClient(":memory:")
        opened: list[ServerStore] = []
        yield _server_factory(client, "", opened)
        for store in opened:
            store.close()
        client.close()


@pytest.mark.server
class TestServerStoreRealServer(StoreConformance):
    """A real Qdrant at ``QDRANT_URL``; its collections get a unique prefix and are deleted."""

    @pytest.fixture
    def open_store(self) -> Iterator[StoreFactory]:
        url = os.environ.get("QDRANT_URL")
        if not url:
            pytest.skip("set QDRANT_URL to run the conformance suite against a real Qdrant server")
        from qdrant_client import QdrantClient

        client = QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY"))
        prefix = f"mmrag_test_{uuid.uuid4().hex[:8]}_"
        opened: list[ServerStore] = []
        yield _server_factory(client, prefix, opened)
        for store in opened:
            store.close()
        for collection in client.get_collections().collections:
            if collection.name.startswith(prefix):
                client.delete_collection(collection.name)
        client.close()

    def test_bulk_defers_index_building_and_restores_the_threshold(self, open_store, corpus):
        store = open_store(schema_for())

        def threshold() -> int:
            info = store._client.get_collection(store.name)
            return info.config.optimizer_config.indexing_threshold

        before = threshold()
        assert before
        with store.bulk():
            assert threshold() == 0  # segments are not indexed while the job writes
            store.upsert([(d.item, d.embedding) for d in corpus])
        assert threshold() == before
        store.optimize()  # waits for the graphs: green
        store._client.update_collection(
            store.name, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=0)
        )  # what a crashed bulk block leaves behind
        with store.bulk():
            pass
        assert threshold() == DEFAULT_INDEXING_THRESHOLD_KB
