"""What only the embedded store does: its folder layout, its lock, the factory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from mmrag.config import StoreConfig
from mmrag.store import open_store
from mmrag.store.contract import StoreError, StoreLockedError
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.server import ServerStore

from .conftest import make_corpus, schema_for

pytestmark = pytest.mark.integration


def test_a_second_process_gets_a_clear_error_naming_the_folder(tmp_path):
    store = EmbeddedStore(tmp_path, "docs", schema_for())
    store.upsert([(d.item, d.embedding) for d in make_corpus(3)])
    code = textwrap.dedent(
        f"""
        from mmrag.store.embedded import EmbeddedStore
        from mmrag.store.contract import StoreLockedError
        try:
            EmbeddedStore({str(tmp_path)!r}, "docs")
        except StoreLockedError as exc:
            print("LOCKED", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("LOCKED")
    assert str(tmp_path / "docs") in out.stdout
    assert "already open" in out.stdout and "backend = 'server'" in out.stdout
    store.close()
    # Once closed, another process can open it.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from mmrag.store.embedded import EmbeddedStore; "
            f"print(EmbeddedStore({str(tmp_path)!r}, 'docs').count())",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "3", out.stderr


def test_a_second_store_in_the_same_process_is_refused_too(tmp_path):
    with EmbeddedStore(tmp_path, "docs", schema_for()):
        with pytest.raises(StoreLockedError, match="already open"):
            EmbeddedStore(tmp_path, "docs", schema_for())
        with pytest.raises(StoreLockedError):
            EmbeddedStore(tmp_path, "docs", schema_for(), recreate=True)


def test_layout_is_a_schema_file_and_a_shard(tmp_path):
    with EmbeddedStore(tmp_path, "docs", schema_for()) as store:
        assert store.folder == (tmp_path / "docs").resolve()
    stored = json.loads((tmp_path / "docs" / "mmrag.json").read_text())
    assert stored["embedder_id"] == "toy-multi@1" and stored["views"] == [
        "global",
        "rows",
        "muvera",
    ]
    assert (tmp_path / "docs" / "shard").is_dir()


def test_a_shard_without_schema_file_is_refused(tmp_path):
    EmbeddedStore(tmp_path, "docs", schema_for()).close()
    (tmp_path / "docs" / "mmrag.json").unlink()
    with pytest.raises(StoreError, match=r"without mmrag\.json"):
        EmbeddedStore(tmp_path, "docs", schema_for())


def test_a_closed_store_says_so(tmp_path):
    store = EmbeddedStore(tmp_path, "docs", schema_for())
    store.close()
    store.close()  # harmless
    with pytest.raises(StoreError, match="closed"):
        store.count()


def test_data_survives_reopening(tmp_path):
    docs = make_corpus(6)
    with EmbeddedStore(tmp_path, "docs", schema_for()) as store:
        store.upsert([(d.item, d.embedding) for d in docs])
        store.optimize()
    with EmbeddedStore(tmp_path, "docs") as store:
        assert store.count() == 6
        assert store.sources() == sorted({d.item.source for d in docs})


def test_open_store_picks_the_backend_from_config(tmp_path, monkeypatch):
    with open_store(StoreConfig(path=str(tmp_path), collection="x"), schema_for()) as store:
        assert isinstance(store, EmbeddedStore) and store.name == "x"
    with pytest.raises(StoreError, match=r"store\.url"):
        open_store(StoreConfig(backend="server"), schema_for())


def test_server_backend_in_local_mode_on_a_folder(tmp_path):
    docs = make_corpus(4)
    store = ServerStore.connect(path=str(tmp_path / "local"), collection="c", schema=schema_for())
    store.upsert([(d.item, d.embedding) for d in docs])
    with pytest.raises(StoreLockedError, match="already open"):
        ServerStore.connect(path=str(tmp_path / "local"), collection="c")
    store.close()
    again = ServerStore.connect(path=str(tmp_path / "local"), collection="c")
    assert again.count() == 4 and again.schema == schema_for()
    again.close()
