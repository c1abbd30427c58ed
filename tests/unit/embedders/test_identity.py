"""An embedder's id names its weights: a local folder by content, a Hub id by commit."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import ClassVar

import pytest

from mmrag.embedders.clip import ClipEmbedder
from mmrag.embedders.colpali import ColQwen2Embedder
from mmrag.embedders.e5v import E5VEmbedder
from mmrag.embedders.identity import (
    EDGE_BYTES,
    commit_of,
    folder_fingerprint,
    model_fingerprint,
    resolve_hub_commit,
)
from mmrag.embedders.vlm2vec import VLM2VecEmbedder
from mmrag.errors import ConfigError

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _checkpoint(folder: Path, seed: int = 0) -> Path:
    """A small checkpoint folder: configs, a 3 MiB sharded weight pair, a nested adapter."""
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "qwen2_vl"}')
    (folder / "model.safetensors.index.json").write_text('{"weight_map": {}}')
    for shard in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        (folder / shard).write_bytes(rng.randbytes(3 * EDGE_BYTES))
    (folder / "lora").mkdir()
    (folder / "lora" / "adapter_model.bin").write_bytes(rng.randbytes(1000))
    (folder / "tokenizer.json").write_text("{}")
    return folder


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# -- local folders --------------------------------------------------------------------------------


def test_moving_or_copying_a_folder_keeps_the_id(tmp_path):
    original = _checkpoint(tmp_path / "a" / "ckpt")
    embedder = ColQwen2Embedder(str(original))
    before = embedder.id
    assert before.startswith("colqwen2:local@") and str(tmp_path) not in before
    copy = shutil.copytree(original, tmp_path / "elsewhere" / "renamed")
    moved = shutil.move(str(original), tmp_path / "moved")
    assert ColQwen2Embedder(str(copy)).id == before
    assert ColQwen2Embedder(str(moved)).id == before
    assert not embedder.is_loaded  # the id never loads the model


@pytest.mark.parametrize(
    "change",
    [
        lambda f: _flip(f / "model-00001-of-00002.safetensors", 12345),  # first MiB
        lambda f: _flip(f / "model-00002-of-00002.safetensors", 3 * EDGE_BYTES - 1),  # last MiB
        lambda f: _flip(f / "lora" / "adapter_model.bin", 0),  # nested weights
        lambda f: (f / "config.json").write_text('{"model_type": "qwen2_vl", "x": 1}'),
        lambda f: (f / "model.safetensors.index.json").write_text('{"weight_map": {"a": 1}}'),
        lambda f: (f / "adapter_config.json").write_text("{}"),
        lambda f: (f / "extra.pt").write_bytes(b"w"),
        lambda f: (f / "lora" / "adapter_model.bin").rename(f / "lora" / "other.bin"),
        lambda f: (f / "model-00001-of-00002.safetensors").open("ab").write(b"\0"),  # size
    ],
    ids=["head", "tail", "nested", "config", "index", "adapter", "new-file", "rename", "size"],
)
def test_weights_or_config_changes_change_the_id(tmp_path, change):
    folder = _checkpoint(tmp_path / "ckpt")
    before = folder_fingerprint(folder)
    change(folder)
    assert folder_fingerprint(folder) != before


def test_other_files_and_hidden_folders_do_not_count(tmp_path):
    folder = _checkpoint(tmp_path / "ckpt")
    before = folder_fingerprint(folder)
    (folder / "README.md").write_text("notes")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "stale.bin").write_bytes(b"partial download")
    assert folder_fingerprint(folder) == before


def test_two_checkpoints_of_the_same_shape_differ(tmp_path):
    first = folder_fingerprint(_checkpoint(tmp_path / "a", seed=0))
    second = folder_fingerprint(_checkpoint(tmp_path / "b", seed=1))
    assert first != second
    assert first.startswith("local@") and len(first) == len("local@") + 16


def test_huge_weight_files_are_sampled_not_read(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    with (folder / "model.safetensors").open("wb") as handle:
        handle.truncate(8 * 2**30)  # 8 GiB, sparse
    start = time.perf_counter()
    folder_fingerprint(folder)
    assert time.perf_counter() - start < 1.0


def test_a_missing_folder_path_is_named():
    with pytest.raises(ConfigError, match="no such model folder"):
        model_fingerprint("/no/such/checkpoint")


# -- Hugging Face ids -----------------------------------------------------------------------------


def test_hub_id_resolves_from_the_cache_and_loads_that_commit(hub_cache):
    commit = hub_cache("org/name")
    dev = hub_cache("org/name", "dev")
    assert model_fingerprint("org/name", None) == f"org/name@{commit}"
    assert model_fingerprint("org/name", "main") == f"org/name@{commit}"
    assert model_fingerprint("org/name", "dev") == f"org/name@{dev}"
    embedder = ColQwen2Embedder("org/name", local_files_only=True)
    assert embedder.id.startswith(f"colqwen2:org/name@{commit}#")
    assert embedder._from_pretrained_kwargs()["revision"] == commit
    assert E5VEmbedder("org/name", revision="dev")._from_pretrained_kwargs()["revision"] == dev
    assert not embedder.is_loaded


def test_a_commit_is_used_as_given_without_any_lookup(monkeypatch):
    monkeypatch.setattr("huggingface_hub.HfApi", _explode)
    assert resolve_hub_commit("org/name", COMMIT.upper()) == COMMIT
    embedder = ColQwen2Embedder("org/name", revision=COMMIT)
    assert embedder.model_fingerprint() == f"org/name@{COMMIT}"
    assert commit_of(embedder.model_fingerprint()) == COMMIT


def test_local_folders_load_as_given(tmp_path):
    folder = _checkpoint(tmp_path / "ckpt")
    assert "revision" not in ColQwen2Embedder(str(folder))._from_pretrained_kwargs()


def test_vlm2vec_loads_the_resolved_commit(hub_cache, monkeypatch):
    commit = hub_cache("org/vlm2vec")
    seen = {}

    def find_adapter(model, *, revision=None, local_files_only=None):
        seen["revision"] = revision
        raise _StopError

    monkeypatch.setattr("mmrag.embedders._lora.find_adapter", find_adapter)
    with pytest.raises(_StopError):
        VLM2VecEmbedder("org/vlm2vec")._load()
    assert seen["revision"] == commit


def test_open_clip_hub_repository_downloads_the_resolved_commit(hub_cache, monkeypatch):
    commit = hub_cache("org/clip")
    seen = {}

    def snapshot_download(repo_id, *, revision=None, **kwargs):
        seen.update(repo_id=repo_id, revision=revision)
        raise _StopError

    monkeypatch.setattr("huggingface_hub.snapshot_download", snapshot_download)
    embedder = ClipEmbedder("hf-hub:org/clip")
    assert embedder.id == f"clip:hf-hub:org/clip@{commit}"
    with pytest.raises(_StopError):
        embedder._resolve_name()
    assert seen == {"repo_id": "org/clip", "revision": commit}


def test_open_clip_ids(tmp_path):
    assert ClipEmbedder("ViT-B-32/laion2b_s34b_b79k").id == "clip:ViT-B-32/laion2b_s34b_b79k"
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text('{"model_cfg": {}}')
    (folder / "open_clip_model.safetensors").write_bytes(b"weights")
    local = ClipEmbedder(str(folder)).id
    assert local.startswith("clip:local@") and str(tmp_path) not in local
    assert ClipEmbedder(f"local-dir:{folder}").id == local
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    assert ClipEmbedder(f"ViT-B-32/{weights}").id.startswith("clip:ViT-B-32/local@")


def test_unresolvable_hub_id_offline_names_what_was_tried(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.HfApi", _explode)
    embedder = ColQwen2Embedder("org/not-downloaded")
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        _ = embedder.id
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "'org/not-downloaded'" in message
    assert "models--org--not-downloaded" in message and "refs" in message  # the cache tried
    assert "HF_HUB_OFFLINE is set" in message
    assert 'embedder.model = "/path/to/checkpoint"' in message


class _FakeApi:
    calls: ClassVar[list[tuple[str, str | None, float | None]]] = []
    sha: str | None = COMMIT

    def model_info(self, repo_id, *, revision=None, timeout=None, **kwargs):
        type(self).calls.append((repo_id, revision, timeout))
        if self.sha is None:
            raise OSError("connection refused")
        return type("Info", (), {"sha": self.sha})()


@pytest.fixture
def online(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(_FakeApi, "calls", [])
    monkeypatch.setattr("huggingface_hub.HfApi", _FakeApi)
    return _FakeApi


def test_online_the_hub_is_asked_once_per_embedder(online):
    embedder = ColQwen2Embedder("org/name")
    assert embedder.id == embedder.id
    assert embedder.id.startswith(f"colqwen2:org/name@{COMMIT}#")
    assert len(online.calls) == 1
    repo, revision, timeout = online.calls[0]
    assert (repo, revision) == ("org/name", None) and timeout is not None and timeout <= 30


def test_online_failure_and_local_files_only_raise_config_errors(online, monkeypatch):
    monkeypatch.setattr(_FakeApi, "sha", None)
    with pytest.raises(ConfigError, match=r"the Hub \(OSError: connection refused\)"):
        _ = ColQwen2Embedder("org/name").id
    online.calls.clear()
    with pytest.raises(ConfigError, match="local_files_only=True"):
        _ = ColQwen2Embedder("org/name", local_files_only=True).id
    assert online.calls == []


class _StopError(Exception):
    pass


def _explode(*args, **kwargs):
    raise AssertionError("the Hub must not be asked")


# -- end to end: an index follows the weights, not the folder --------------------------------------


@pytest.fixture(scope="module")
def tiny_clips(tmp_path_factory):
    from mmrag.testing.zoo import build

    root = tmp_path_factory.mktemp("clips")
    return build("open_clip", root / "seed0", seed=0), build("open_clip", root / "seed1", seed=1)


@pytest.mark.integration
@pytest.mark.slow
def test_an_index_opens_with_a_moved_copy_and_refuses_other_weights(tmp_path, tiny_clips):
    from mmrag.config import PipelineConfig
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.contract import CollectionMismatchError

    def config(model: Path) -> PipelineConfig:
        return PipelineConfig.from_dict(
            {
                "embedder": {
                    "type": "clip",
                    "init_parameters": {"model": str(model), "device": "cpu"},
                },
                "store": {"path": str(tmp_path / "index")},
                "ingest": {"dpi": 72},
            }
        )

    first, other = tiny_clips
    model = shutil.copytree(first, tmp_path / "models" / "clip")
    sources = [SAMPLE / "system_diagram.png", SAMPLE / "customer_survey_slide.png"]
    with Pipeline(config(model)) as pipe:
        assert pipe.index(sources).indexed == 2
        built_with = pipe.embedder.id
        expected = [h.id for h in pipe.search("a diagram", k=2)]

    moved = shutil.move(str(model), tmp_path / "moved" / "clip-copy")
    with Pipeline(config(moved)) as pipe:
        assert pipe.embedder.id == built_with
        assert [h.id for h in pipe.search("a diagram", k=2)] == expected
        assert pipe.index(sources).indexed == 0  # same weights, same points: nothing to redo

    with Pipeline(config(other)) as pipe:
        other_id = pipe.embedder.id
        assert other_id != built_with
        with pytest.raises(CollectionMismatchError) as info:
            pipe.search("a diagram", k=2)
    assert built_with in str(info.value) and other_id in str(info.value)


def test_module_doctests():
    import doctest

    import mmrag.embedders.base as base_module
    import mmrag.embedders.identity as identity_module

    for module in (identity_module, base_module):
        assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
