"""A store outage on the server backend: retries with backoff, a clear give-up, a resumable job.

The server's side of the boundary is faked: qdrant-client's local mode behind a "network" that
refuses connections (the errors qdrant-client raises when a server is down), or a closed port.
"""

from __future__ import annotations

import logging
import shutil
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from typer.testing import CliRunner

from mmrag.cli import EX_TEMPFAIL, app
from mmrag.config import PipelineConfig
from mmrag.embedders.pooling import Pooler
from mmrag.pipeline.indexing import IndexStoppedError, index_sources
from mmrag.store.assets import AssetStore
from mmrag.store.contract import PENDING_FIELD, StoreUnavailableError
from mmrag.store.schema import CollectionSchema
from mmrag.store.server import RetryPolicy, ServerStore

pytestmark = pytest.mark.integration

URL = "http://qdrant.test:6333"
QUICK = RetryPolicy(retries=3, backoff_s=0.01)


class FlakyNetwork:
    """A QdrantClient (local mode) reached through a network that can go down.

    ``fail_next`` calls fail, then calls succeed again; ``down_after_upserts=n`` lets n
    upserts through and then fails every call until ``down_after_upserts`` is reset.
    """

    def __init__(self, client: QdrantClient) -> None:
        self._inner = client
        self.fail_next = 0
        self.down_after_upserts: int | None = None
        self.upserted = 0
        self.calls: Counter[str] = Counter()

    def _is_down(self) -> bool:
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        limit = self.down_after_upserts
        return limit is not None and self.upserted >= limit

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name.startswith("_") or not callable(attribute) or name == "close":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if self._is_down():
                raise ResponseHandlingException(
                    httpx.ConnectError("[Errno 111] Connection refused")
                )
            result = attribute(*args, **kwargs)
            self.upserted += name == "upsert"
            return result

        return call


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SCHEMA = CollectionSchema(embedder_id="toy", kind="single", dim=4)
SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    target = tmp_path / "docs"
    shutil.copytree(SAMPLE, target)
    return target


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_colmodernvbert: Path) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "embedder": {
                "type": "colmodernvbert",
                "init_parameters": {"model": str(tiny_colmodernvbert), "device": "cpu"},
            },
            "ingest": {"dpi": 72, "video_fps": 0.5},
        }
    )


def test_a_transient_failure_is_retried_with_growing_backoff(caplog):
    network = FlakyNetwork(QdrantClient(":memory:"))
    store = ServerStore(network, "c", SCHEMA, location=URL, retry=RetryPolicy(4, 0.02))
    network.fail_next = 3
    with caplog.at_level(logging.WARNING, logger="mmrag.store.server"):
        assert store.count() == 0
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert [r.retry for r in retries] == [1, 2, 3]
    assert all(URL in r.getMessage() and "Connection refused" in r.getMessage() for r in retries)
    delays = [r.delay_s for r in retries]
    for attempt, delay in enumerate(delays):  # half the exponential step for sure, at most all
        assert 0.01 * 2**attempt <= delay <= 0.02 * 2**attempt
    assert network.calls["count"] == 4


def test_giving_up_names_the_url_and_the_operation():
    network = FlakyNetwork(QdrantClient(":memory:"))
    store = ServerStore(network, "c", SCHEMA, location=URL, retry=QUICK)
    network.fail_next = 100
    with pytest.raises(StoreUnavailableError) as caught:
        store.count()
    message = str(caught.value)
    assert URL in message and "count failed 4 times" in message
    assert "Connection refused" in message and "Nothing already written is lost" in message


def test_an_answer_from_the_server_is_not_retried():
    calls = []

    def bad_request() -> None:
        calls.append(1)
        raise UnexpectedResponse(
            400, "Bad Request", b'{"status": {"error": "wrong"}}', httpx.Headers()
        )

    with pytest.raises(UnexpectedResponse):
        QUICK.call("upsert", bad_request, where=URL)
    assert len(calls) == 1


def test_a_closed_port_gives_up_with_a_clear_message():
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(StoreUnavailableError, match=f"Qdrant at {url} is unreachable"):
        ServerStore.connect(url, collection="c", schema=SCHEMA, retries=1, retry_backoff_s=0.01)


def test_cli_index_against_a_closed_port_exits_75(tmp_path, sample_dir, tiny_config):
    url = f"http://127.0.0.1:{closed_port()}"
    tiny_config.store = tiny_config.store.model_copy(
        update={"backend": "server", "url": url, "retries": 1, "retry_backoff_s": 0.01}
    )
    path = tmp_path / "mmrag.toml"
    tiny_config.save(path)
    result = CliRunner().invoke(app, ["index", str(sample_dir), "-c", str(path), "--no-progress"])
    assert result.exit_code == EX_TEMPFAIL, result.output
    assert f"Qdrant at {url} is unreachable" in result.output


def _job(store: ServerStore, embedder: Any, pooler: Pooler, assets: AssetStore, docs: Path):
    return index_sources(
        [docs], embedder=embedder, store=store, pooler=pooler, assets=assets, batch_size=2
    )


def test_a_job_stops_when_the_store_stays_down_and_a_rerun_resumes_without_loss(
    tiny_config, sample_dir, tmp_path
):
    embedder = tiny_config.embedder.build()
    pooler = Pooler(tiny_config.pooling)
    schema = CollectionSchema.for_embedder_object(embedder, tiny_config.pooling)
    assets = AssetStore(str(tmp_path / "assets"))

    reference = ServerStore(QdrantClient(":memory:"), "c", schema)
    full = _job(reference, embedder, pooler, assets, sample_dir)
    assert full.ok and full.indexed == reference.count() > 6
    expected = {r.id for r in reference.iter_records()}

    network = FlakyNetwork(QdrantClient(":memory:"))
    store = ServerStore(network, "c", schema, location=URL, retry=QUICK)
    network.down_after_upserts = 3  # the server goes away after three upserts
    with pytest.raises(IndexStoppedError) as caught:
        _job(store, embedder, pooler, assets, sample_dir)
    message = str(caught.value)
    assert URL in message and "run the same job again to resume" in message
    assert "failed 4 times" in message  # the failing call was retried 3 times first

    network.down_after_upserts = None  # the server is back
    kept = {r.id for r in store.iter_records()}
    stored = caught.value.report.indexed
    assert 0 < stored == len(kept) < len(expected) and kept <= expected  # nothing was lost
    again = _job(store, embedder, pooler, assets, sample_dir)
    assert again.ok and (again.indexed, again.skipped) == (len(expected) - stored, stored)
    final = list(store.iter_records())
    assert {r.id for r in final} == expected and len(final) == len(expected)
    assert not any(r.payload.get(PENDING_FIELD) for r in final)
