"""The Ray engine's settings, the Qdrant cluster layout, the compose profile and the README."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mmrag.cli import app
from mmrag.config import PipelineConfig, RayConfig, StoreConfig
from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.schema import CollectionSchema

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def test_ray_section_defaults_overrides_and_round_trip(monkeypatch):
    cfg = PipelineConfig()
    assert cfg.ray == RayConfig()
    assert (cfg.ray.address, cfg.ray.num_embed_actors, cfg.ray.gpus_per_actor) == (None, 1, 0.0)
    monkeypatch.setenv("MMRAG_RAY__NUM_EMBED_ACTORS", "4")
    cfg = PipelineConfig.from_dict({"ray": {"address": "auto", "gpus_per_actor": 0.5}})
    assert (cfg.ray.address, cfg.ray.num_embed_actors, cfg.ray.gpus_per_actor) == ("auto", 4, 0.5)
    assert PipelineConfig.from_toml_string(cfg.to_toml()) == cfg


def test_bad_ray_and_cluster_values_name_their_key():
    with pytest.raises(ConfigError, match=r"ray\.num_embed_actors"):
        PipelineConfig.from_dict({"ray": {"num_embed_actors": 0}})
    with pytest.raises(ConfigError, match=r"ray\.gpu_per_actor: unknown key"):
        PipelineConfig.from_dict({"ray": {"gpu_per_actor": 1}})
    with pytest.raises(ConfigError, match=r"store\.replication_factor"):
        PipelineConfig.from_dict({"store": {"replication_factor": 0}})
    assert StoreConfig(shard_number=6, replication_factor=2).shard_number == 6


def test_engine_overrides_are_validated_before_anything_runs(tmp_path):
    pipe = Pipeline(PipelineConfig.from_dict({"store": {"path": str(tmp_path / "idx")}}))
    from mmrag.integrations.ray import index_with_ray

    with pytest.raises(ConfigError, match="batch_size"):
        index_with_ray(pipe, [tmp_path], batch_size=0)
    with pytest.raises(ConfigError, match="num_gpus"):
        index_with_ray(pipe, [tmp_path], num_gpus=1)  # the key is gpus_per_actor


def test_missing_inputs_are_reported_without_starting_ray(tmp_path):
    from mmrag.integrations.ray import index_with_ray

    pipe = Pipeline(PipelineConfig.from_dict({"store": {"path": str(tmp_path / "idx")}}))
    report = index_with_ray(pipe, [tmp_path / "nothing.pdf", str(tmp_path / "*.png")])
    assert [Path(f.source).name for f in report.failed] == ["nothing.pdf", "*.png"]
    assert report.sources == 2 and report.indexed == 0
    assert not (tmp_path / "idx").exists()  # no store was opened


def test_without_ray_the_error_says_what_to_install(monkeypatch, tmp_path):
    from mmrag.integrations.ray import index_with_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    pipe = Pipeline(PipelineConfig.from_dict({"store": {"path": str(tmp_path / "idx")}}))
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[ray\]'"):
        index_with_ray(pipe, [tmp_path])


def test_ray_address_needs_the_ray_engine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["index", str(tmp_path), "--ray-address", "auto"])
    assert result.exit_code == 2
    assert "--ray-address is for --engine ray" in result.output


def test_new_collections_get_the_cluster_layout():
    from qdrant_client import QdrantClient

    from mmrag.store.server import ServerStore

    class RecordingClient(QdrantClient):  # the server's side of the boundary, in memory
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.created: list[dict] = []

        def create_collection(self, collection_name, **kwargs):
            self.created.append(kwargs)
            return super().create_collection(collection_name, **kwargs)

    schema = CollectionSchema(embedder_id="toy", kind="single", dim=4)
    client = RecordingClient(location=":memory:")
    ServerStore(client, "docs", schema, shard_number=6, replication_factor=2)
    ServerStore(client, "docs", schema, shard_number=3)  # exists: its layout is kept
    ServerStore(client, "other", schema)
    layouts = [(c["shard_number"], c["replication_factor"]) for c in client.created]
    assert layouts == [(6, 2), (None, None)]


def test_compose_keeps_one_node_by_default_and_has_a_three_node_cluster_profile():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert [name for name, s in services.items() if "profiles" not in s] == ["qdrant"]
    nodes = {name: s for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert sorted(nodes) == ["qdrant-node1", "qdrant-node2", "qdrant-node3"]
    for name, node in nodes.items():
        assert node["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        assert f"http://{name}:6335" in node["command"]
        if name != "qdrant-node1":
            assert node["command"][:2] == ["--bootstrap", "http://qdrant-node1:6335"]
    assert nodes["qdrant-node1"]["command"] == ["--uri", "http://qdrant-node1:6335"]
    published = {p.split(":")[0] for n in services.values() for p in n.get("ports", [])}
    assert published == {"6333", "6334", "6433", "6434"}  # no clash with the single node
    assert {f"qdrant_node{i}" for i in (1, 2, 3)} <= set(compose["volumes"])


def test_readme_lists_every_ray_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running a job across machines", 1)[1].split("\n## ", 1)[0]
    keys = re.findall(r"^\| `(\w+)` \|", section, flags=re.M)
    assert keys == list(RayConfig.model_fields)
    for line in re.findall(r"export (.+)", section):
        for name in re.findall(r"MMRAG_(\w+?)=", line):
            section_name, key = name.lower().split("__")
            assert key in PipelineConfig.model_fields[section_name].annotation.model_fields


def test_ray_module_docstring_examples_run():
    import doctest

    import mmrag.integrations.ray.rows as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_importing_the_engine_does_not_import_ray():
    import subprocess

    code = "import sys, mmrag.integrations.ray; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
