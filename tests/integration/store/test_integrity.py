"""Store integrity: damaged files are reported as damage (not as a lock), lost points are
caught by the recorded point count, old layouts ask for a rebuild, ``mmrag doctor`` finds NaN
vectors, unfinished jobs and missing or orphan page images, and a locked folder fails before
any model loads. Each failure names the folder and what to do, with its own exit status."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmrag.cli import EX_DATAERR, EX_IOERR, EX_LOCKED, EX_NOINPUT, app
from mmrag.config import PipelineConfig, StoreConfig
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store import AssetStore, CollectionSchema, Point
from mmrag.store.contract import (
    PENDING_FIELD,
    SCHEMA_VERSION,
    StoreCorruptError,
    StoreLockedError,
    StoreVersionError,
)
from mmrag.store.doctor import check_store
from mmrag.store.embedded import EmbeddedStore

pytestmark = pytest.mark.integration

SCHEMA = CollectionSchema(embedder_id="toy@1", kind="single", dim=4)
runner = CliRunner()


def _points(n: int, *, start: int = 0, source: str | None = None, pending: bool = False):
    rng = np.random.default_rng(start)
    return [
        Point(
            str(uuid.UUID(int=i + 1)),
            {"dense": rng.random(4).astype(np.float32) + 0.1},
            {
                "source": source or f"s{i % 5}.pdf",
                "page": i // 5 + 1,
                **({PENDING_FIELD: 1} if pending else {}),
            },
        )
        for i in range(start, start + n)
    ]


def _build(root: Path, n: int = 400, collection: str = "docs") -> Path:
    with EmbeddedStore(root, collection, SCHEMA) as store:
        store.upsert(_points(n))
    return (root / collection).resolve()


def _shard_files(folder: Path, pattern: str) -> list[Path]:
    found = sorted((folder / "shard").glob(pattern))
    assert found, f"no {pattern} under {folder / 'shard'}"
    return found


def _config_file(tmp_path: Path, collection: str = "docs") -> Path:
    """A config whose embedder is a model folder that does not exist: computing the schema
    (the embedder's id) or loading the model fails with 'no such model folder' (status 2),
    so a run that reports the store's own error never touched the model."""
    path = tmp_path / "mmrag.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [embedder]
            type = "colmodernvbert"
            [embedder.init_parameters]
            model = "{tmp_path / "no-such-model"}"
            device = "cpu"
            [store]
            path = "{tmp_path / "index"}"
            collection = "{collection}"
            """
        )
    )
    return path


def _assert_clean_failure(result, code: int, *texts: str) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no raw traceback
    assert "Traceback" not in result.output
    for text in texts:
        assert text in result.output, result.output


# -- the schema file and layout version -----------------------------------------------------------


def test_a_garbled_schema_file_is_damage_naming_the_file(tmp_path):
    folder = _build(tmp_path / "index", 5)
    (folder / "mmrag.json").write_bytes(b"\xff\xfe\x00{garbage")
    with pytest.raises(StoreCorruptError, match="not UTF-8") as caught:
        EmbeddedStore(tmp_path / "index", "docs")
    assert str(folder / "mmrag.json") in str(caught.value)
    assert "--recreate" in str(caught.value)
    (folder / "mmrag.json").write_text('{"embedder_id": "toy@1", ')
    with pytest.raises(StoreCorruptError, match="not valid JSON"):
        EmbeddedStore(tmp_path / "index", "docs")


def test_cli_garbled_schema_file_exits_with_the_damaged_status(tmp_path):
    folder = _build(tmp_path / "index", 5)
    (folder / "mmrag.json").write_bytes(b"\xff\xfe\x00{garbage")
    result = runner.invoke(app, ["delete", "s0.pdf", "-c", str(_config_file(tmp_path))])
    _assert_clean_failure(result, EX_IOERR, "mmrag.json", "is unreadable", "--recreate")
    result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path))])
    _assert_clean_failure(result, EX_IOERR, "mmrag.json", "schema")


def test_an_older_layout_version_asks_for_a_rebuild(tmp_path):
    folder = _build(tmp_path / "index", 5)
    data = json.loads((folder / "mmrag.json").read_text())
    data["version"] = SCHEMA_VERSION - 1
    (folder / "mmrag.json").write_text(json.dumps(data))
    with pytest.raises(StoreVersionError) as caught:
        EmbeddedStore(tmp_path / "index", "docs", SCHEMA)
    message = str(caught.value)
    assert message.startswith(f"{folder} was built by an older mmrag")
    assert f"(layout version {SCHEMA_VERSION - 1}; this is {SCHEMA_VERSION})" in message
    assert "mmrag index PATHS --recreate" in message and "delete the folder" in message
    result = runner.invoke(app, ["delete", "s0.pdf", "-c", str(_config_file(tmp_path))])
    _assert_clean_failure(result, EX_DATAERR, "older mmrag", "--recreate")
    result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path))])
    _assert_clean_failure(result, EX_DATAERR, "version")
    # --recreate's path: it deletes the collection and starts again
    with EmbeddedStore(tmp_path / "index", "docs", SCHEMA, recreate=True) as store:
        assert store.count() == 0


def test_the_server_store_checks_the_stored_layout_version_too():
    from qdrant_client import QdrantClient, models

    from mmrag.store.server import ServerStore

    client = QdrantClient(":memory:")
    old = {**SCHEMA.to_dict(), "version": SCHEMA_VERSION - 1}
    client.create_collection(
        "old",
        vectors_config={"dense": models.VectorParams(size=4, distance=models.Distance.COSINE)},
        metadata={"mmrag": old},
    )
    with pytest.raises(StoreVersionError, match=r"--recreate.*delete the collection"):
        ServerStore(client, "old", SCHEMA)


# -- the shard: lock vs damage --------------------------------------------------------------------


def test_a_garbled_wal_is_damage_not_a_lock(tmp_path):
    folder = _build(tmp_path / "index", 20)
    for wal in _shard_files(folder, "wal/open-*"):
        with wal.open("r+b") as handle:
            handle.write(os.urandom(4096))
    with pytest.raises(StoreCorruptError) as caught:
        EmbeddedStore(tmp_path / "index", "docs")
    assert not isinstance(caught.value, StoreLockedError)
    message = str(caught.value)
    assert f"the embedded store {folder} is damaged" in message and "already open" not in message
    assert "--recreate" in message
    result = runner.invoke(app, ["delete", "s0.pdf", "-c", str(_config_file(tmp_path))])
    _assert_clean_failure(result, EX_IOERR, "is damaged")
    report = check_store(StoreConfig(path=str(tmp_path / "index"), collection="docs"))
    assert [f.check for f in report.errors] == ["shard"]
    # a damaged (not locked) collection can be rebuilt with recreate=True
    with EmbeddedStore(tmp_path / "index", "docs", SCHEMA, recreate=True) as store:
        assert store.count() == 0


def test_a_real_lock_is_reported_as_one_in_this_process_and_another(tmp_path):
    _build(tmp_path / "index", 5)
    with EmbeddedStore(tmp_path / "index", "docs"):
        with pytest.raises(StoreLockedError, match="already open"):
            EmbeddedStore(tmp_path / "index", "docs")
        code = (
            "from mmrag.store.embedded import EmbeddedStore\n"
            "from mmrag.store.contract import StoreLockedError\n"
            "try:\n"
            f"    EmbeddedStore({str(tmp_path / 'index')!r}, 'docs')\n"
            "except StoreLockedError as exc:\n"
            "    print('LOCKED', exc)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert out.stdout.startswith("LOCKED"), out.stdout + out.stderr
        report = check_store(StoreConfig(path=str(tmp_path / "index"), collection="docs"))
        assert [f.check for f in report.errors] == ["lock"]
        result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path))])
        _assert_clean_failure(result, EX_LOCKED, "already open")


@pytest.mark.parametrize("command", [["index", "docs"], ["delete", "s0.pdf"]])
def test_cli_on_a_locked_folder_fails_with_the_lock_status_before_the_model(tmp_path, command):
    _build(tmp_path / "index", 5)
    (tmp_path / "docs").mkdir()
    Image.new("RGB", (32, 32), "white").save(tmp_path / "docs" / "page.png")
    args = [*command[:1], str(tmp_path / command[1]) if command[0] == "index" else command[1]]
    with EmbeddedStore(tmp_path / "index", "docs"):
        result = runner.invoke(
            app,
            [*args, "-c", str(_config_file(tmp_path)), *(["--no-progress"] * (args[0] == "index"))],
        )
    # 'no such model folder' (status 2) would mean the schema, or the model, came first
    _assert_clean_failure(result, EX_LOCKED, "already open", str(tmp_path / "index"))
    assert "no such model folder" not in result.output


def test_cli_search_on_a_locked_folder_fails_before_the_model(tmp_path):
    _build(tmp_path / "index", 5)
    with EmbeddedStore(tmp_path / "index", "docs"):
        result = runner.invoke(app, ["search", "q", "-c", str(_config_file(tmp_path))])
    _assert_clean_failure(result, EX_LOCKED, "already open")


class _SpyEmbedder:
    """An embedder that records whether anything needed its model (its id or dim)."""

    kind = "single"

    def __init__(self) -> None:
        self.touched = False

    @property
    def id(self) -> str:
        self.touched = True
        return "toy@1"

    @property
    def dim(self) -> int:
        self.touched = True
        return 4


def test_pipeline_store_takes_the_lock_before_computing_the_schema(tmp_path):
    _build(tmp_path / "index", 5)
    config = PipelineConfig.from_dict(
        {"store": {"path": str(tmp_path / "index"), "collection": "docs"}}
    )
    spy = _SpyEmbedder()
    with EmbeddedStore(tmp_path / "index", "docs"), pytest.raises(StoreLockedError):
        Pipeline(config, embedder=spy).store  # noqa: B018
    assert not spy.touched
    with Pipeline(config, embedder=spy) as pipe:  # unlocked: opened, then checked
        assert pipe.store.count() == 5
    assert spy.touched


# -- lost points: the recorded count ---------------------------------------------------------------


def test_a_truncated_id_mapping_is_caught_by_the_recorded_count(tmp_path):
    folder = _build(tmp_path / "index", 400)
    assert json.loads((folder / "mmrag.state.json").read_text()) == {"points": 400, "clean": True}
    for mapping in _shard_files(folder, "segments/*/mutable_id_tracker.mappings"):
        os.truncate(mapping, 84)  # 4 of the 400 id mappings left
    with pytest.raises(StoreCorruptError) as caught:
        EmbeddedStore(tmp_path / "index", "docs")
    message = str(caught.value)
    found = int(message.split("its shard holds ")[1].split()[0])
    assert found < 400 and "but 400 were stored" in message
    assert str(folder) in message and "--recreate" in message
    # the failed open released the folder: doctor can open it and reports the same
    report = check_store(StoreConfig(path=str(tmp_path / "index"), collection="docs"))
    (count,) = [f for f in report.findings if f.check == "count"]
    assert count.level == "error" and f"holds {found} points, but 400" in count.what
    result = runner.invoke(app, ["delete", "s0.pdf", "-c", str(_config_file(tmp_path))])
    _assert_clean_failure(result, EX_IOERR, "but 400 were stored")
    # the check never records anything itself: the evidence stays
    assert json.loads((folder / "mmrag.state.json").read_text())["points"] == 400


def test_the_count_is_recorded_on_optimize_and_close_and_marked_stale_on_write(tmp_path):
    store = EmbeddedStore(tmp_path, "docs", SCHEMA)
    state = tmp_path / "docs" / "mmrag.state.json"
    store.upsert(_points(10))
    assert json.loads(state.read_text())["clean"] is False
    store.optimize()
    assert json.loads(state.read_text()) == {"points": 10, "clean": True}
    store.delete([_points(1)[0].id])
    assert json.loads(state.read_text())["clean"] is False
    store.close()
    assert json.loads(state.read_text()) == {"points": 9, "clean": True}


def test_a_writer_that_died_without_closing_is_no_false_alarm(tmp_path):
    _build(tmp_path, 50)
    code = textwrap.dedent(
        f"""
        import os, uuid
        import numpy as np
        from mmrag.store import CollectionSchema, Point
        from mmrag.store.embedded import EmbeddedStore
        store = EmbeddedStore({str(tmp_path)!r}, "docs")
        store.upsert([Point(str(uuid.UUID(int=1000 + i)), {{"dense": np.ones(4, np.float32)}},
                            {{"source": "late.pdf"}}) for i in range(7)])
        os._exit(0)  # killed mid-job: no close
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    with EmbeddedStore(tmp_path, "docs") as store:
        assert store.count() == 57
    report = check_store(StoreConfig(path=str(tmp_path), collection="docs"))
    assert report.ok, report.format()


# -- doctor ----------------------------------------------------------------------------------------


def test_doctor_finds_nan_vectors_from_garbled_vector_bytes(tmp_path):
    folder = _build(tmp_path / "index", 40)
    for chunk in _shard_files(folder, "segments/*/vector_storage-dense/vectors/chunk_0.mmap"):
        with chunk.open("r+b") as handle:
            handle.write(b"\xff" * 160)  # 10 points' float32 vectors become NaN
    with EmbeddedStore(tmp_path / "index", "docs") as store:
        assert store.count() == 40  # opens fine: only doctor can tell
    report = check_store(StoreConfig(path=str(tmp_path / "index"), collection="docs"))
    (vectors,) = [f for f in report.findings if f.check == "vectors"]
    assert vectors.level == "error" and "NaN or infinite" in vectors.what
    assert vectors.what.startswith("10 of 40 points")
    assert "dense" in vectors.what and "--force" in vectors.advice
    result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path)), "--json"])
    assert result.exit_code == EX_IOERR, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is False and "vectors" in {f["check"] for f in data["findings"]}


def test_doctor_reports_missing_and_orphan_page_images_and_pending_points(tmp_path):
    root = tmp_path / "index"
    points = _points(6)
    with EmbeddedStore(root, "docs", SCHEMA) as store:
        store.upsert(points)
        store.upsert(_points(2, start=100, source="half.pdf", pending=True))
    with EmbeddedStore(root, "other", SCHEMA) as store:  # shares <path>/assets
        store.upsert(_points(1, start=200))
    assets = AssetStore(root / "assets")
    image = Image.new("RGB", (4, 4))
    for point in [*points[1:], *_points(2, start=100), *_points(1, start=200)]:
        assets.put(point.id, image)
    orphan = str(uuid.UUID(int=999))
    assets.put(orphan, image)

    report = check_store(StoreConfig(path=str(root), collection="docs"))
    by_check = {}
    for finding in report.findings:
        by_check.setdefault(finding.check, []).append(finding)
    (pending,) = by_check["pending"]
    assert pending.level == "warn" and "2 points of 1 source pending" in pending.what
    assert "half.pdf" in pending.what and "mmrag index SOURCE" in pending.advice
    missing, orphans = by_check["images"]
    assert missing.level == "error" and missing.what.startswith("1 point without a page image")
    assert points[0].id in missing.what and "s0.pdf p.1" in missing.what
    assert orphans.level == "warn" and orphans.what.startswith("1 page image in")
    assert orphan in orphans.what  # the other collection's image is not an orphan
    assert [f.check for f in report.errors] == ["images"]

    result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path))])
    assert result.exit_code == EX_IOERR, result.output
    assert "ERROR  images" in result.output and "-> re-index their sources" in result.output


def test_doctor_on_a_healthy_store_exits_0(tmp_path):
    root = tmp_path / "index"
    points = _points(12)
    with EmbeddedStore(root, "docs", SCHEMA) as store:
        store.upsert(points)
    assets = AssetStore(root / "assets")
    for point in points:
        assets.put(point.id, Image.new("RGB", (4, 4)))
    result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "0 errors, 0 warnings" in result.output
    for check in ("schema", "shard", "count", "pending", "vectors", "images"):
        assert f"ok     {check}" in result.output
    result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path)), "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["ok"] is True
    assert {f["level"] for f in data["findings"]} == {"ok"}


def test_doctor_without_a_collection_exits_no_input(tmp_path):
    result = runner.invoke(app, ["doctor", "-c", str(_config_file(tmp_path, "nothing"))])
    _assert_clean_failure(result, EX_NOINPUT, "there is no collection 'nothing'")


@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_doctor_on_the_server_backend_checks_what_applies(tmp_path):
    config = StoreConfig(backend="server", url="http://127.0.0.1:1", retries=0, collection="c")
    report = check_store(config)
    assert [f.check for f in report.errors] == ["connection"]


@pytest.mark.parametrize(
    "module", ["mmrag.store.doctor", "mmrag.store._integrity", "mmrag.store.contract"]
)
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# -- the HTTP server -------------------------------------------------------------------------------


def test_serve_on_a_damaged_or_locked_store_fails_before_listening(tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: pytest.fail("must not listen"))
    folder = _build(tmp_path / "index", 5)
    config = str(_config_file(tmp_path))
    with EmbeddedStore(tmp_path / "index", "docs"):
        result = runner.invoke(app, ["serve", "-c", config])
    _assert_clean_failure(result, EX_LOCKED, "already open", str(tmp_path / "index"))
    (folder / "mmrag.json").write_bytes(b"\xff\xfe\x00{garbage")
    result = runner.invoke(app, ["serve", "-c", config])
    _assert_clean_failure(result, EX_IOERR, "mmrag.json", "--recreate")


def test_the_http_app_on_a_damaged_store_does_not_start(tmp_path):
    from fastapi.testclient import TestClient

    from mmrag.integrations.server import create_app

    folder = _build(tmp_path / "index", 5)
    (folder / "mmrag.json").write_text('{"embedder_id": "toy@1", ')
    app_ = create_app(PipelineConfig.load(_config_file(tmp_path)))
    with pytest.raises(StoreCorruptError, match="not valid JSON") as caught, TestClient(app_):
        pass
    assert str(folder / "mmrag.json") in str(caught.value)
