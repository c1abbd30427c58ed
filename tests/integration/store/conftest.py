"""Fixtures of the store conformance suite: every backend, a small seeded corpus.

Backends: ``embedded`` (Qdrant Edge in tmp_path), ``local`` (the server backend on
qdrant-client's local mode, in memory) and ``server`` (a real Qdrant at ``QDRANT_URL``; marked
``server``, skipped when the variable is unset).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from mmrag.config import PoolingConfig
from mmrag.embedders.pooling import Pooler
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.schema import CollectionSchema
from mmrag.store.server import ServerStore
from mmrag.types import Embedding, Item, Modality

DIM = 16
GRID = (4, 4)
POOLING = PoolingConfig(
    views=["global", "rows", "muvera"], muvera={"k_sim": 2, "dim_proj": 4, "r_reps": 2}
)
SOURCES = ("alpha.pdf", "beta.pdf", "gamma.png", "delta.mp4")
WORDS = ("revenue", "chart", "invoice", "diagram", "table", "summary", "contract", "map")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@dataclass
class Doc:
    item: Item
    embedding: Embedding


def make_corpus(n: int = 40, seed: int = 0, embedder_id: str = "toy-multi@1") -> list[Doc]:
    """``n`` pages over four sources: pdf pages, images and video frames, with text and
    metadata; multi-vector embeddings on a 4 x 4 grid with their pooled views."""
    rng = np.random.default_rng(seed)
    pooler = Pooler(POOLING)
    docs = []
    for i in range(n):
        source = SOURCES[i % 4]
        modality = (Modality.PDF_PAGE, Modality.PDF_PAGE, Modality.IMAGE, Modality.VIDEO_FRAME)[
            i % 4
        ]
        extra: dict = {}
        if modality is Modality.PDF_PAGE:
            extra["page"] = i // 4 + 1
        elif modality is Modality.VIDEO_FRAME:
            extra.update(frame_index=i, timestamp_s=i / 2)
        else:
            extra["frame_index"] = i // 4
        item = Item(
            source=source,
            source_sha256=f"{i % 4:064x}",
            modality=modality,
            text=f"{WORDS[i % len(WORDS)]} {WORDS[(i * 3) % len(WORDS)]} page {i}",
            metadata={"lang": "en" if i % 2 else "de", "batch": i % 3},
            embedder_id=embedder_id,
            **extra,
        )
        multi = unit(rng.standard_normal((GRID[0] * GRID[1], DIM)).astype(np.float32))
        embedding = Embedding(multi=multi, grid=GRID, pooled=pooler.document_views(multi, GRID))
        docs.append(Doc(item, embedding))
    return docs


def schema_for(embedder_id: str = "toy-multi@1", text: bool = True) -> CollectionSchema:
    return CollectionSchema.for_embedder(embedder_id, "multi", DIM, POOLING, text=text)


BACKENDS = [
    "embedded",
    "local",
    pytest.param("server", marks=pytest.mark.server),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "server" and not os.environ.get("QDRANT_URL"):
        pytest.skip("set QDRANT_URL to run the conformance suite against a real Qdrant server")
    return request.param


StoreFactory = Callable[..., "EmbeddedStore | ServerStore"]


@pytest.fixture
def open_store(backend: str, tmp_path) -> Iterator[StoreFactory]:
    """``open_store(schema=None, collection='c', recreate=False)`` on this test's backend;
    several calls open the same place (a folder, one local-mode client, one server)."""
    opened: list = []
    client = None
    prefix = f"mmrag_test_{uuid.uuid4().hex[:8]}_"
    if backend == "local":
        from qdrant_client import QdrantClient

        client = QdrantClient(":memory:")
    elif backend == "server":
        from qdrant_client import QdrantClient

        client = QdrantClient(
            url=os.environ["QDRANT_URL"], api_key=os.environ.get("QDRANT_API_KEY")
        )

    def factory(schema=None, collection: str = "c", recreate: bool = False):
        if backend == "embedded":
            store = EmbeddedStore(tmp_path / "index", collection, schema, recreate=recreate)
        else:
            store = ServerStore(client, prefix + collection, schema, recreate=recreate)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    if backend == "server" and client is not None:
        for c in client.get_collections().collections:
            if c.name.startswith(prefix):
                client.delete_collection(c.name)
    if client is not None:
        client.close()


@pytest.fixture
def corpus() -> list[Doc]:
    return make_corpus()


@pytest.fixture
def store(open_store, corpus):
    """A store holding the 40-page corpus (with the text channel), optimized."""
    s = open_store(schema_for())
    s.upsert([(d.item, d.embedding) for d in corpus], batch_size=16)
    s.optimize()
    return s
