"""The pipeline config: TOML round trip, env overrides, secrets, clear errors."""

from __future__ import annotations

import pytest

from mmrag.auth import Secret
from mmrag.config import EmbedderSpec, GeneratorSpec, PipelineConfig
from mmrag.errors import ConfigError

pytestmark = pytest.mark.unit

FULL = """
[ingest]
dpi = 200
max_side = 1600
workers = 2
video_fps = 0.5

[embedder]
type = "colqwen2"

[embedder.init_parameters]
model = "vidore/colqwen2-v1.0-hf"
batch_size = 4
device = "auto"

[pooling]
views = ["global", "rows", "muvera"]

[pooling.muvera]
k_sim = 4

[store]
backend = "server"
url = "http://localhost:6333"
api_key = { type = "env_var", env_vars = ["QDRANT_API_KEY"], strict = true }
prefer_grpc = true

[retrieval]
plan = "global@200 -> rows@50 -> full@10"
top_k = 3

[reranker]
type = "monoqwen"

[reranker.init_parameters]
model = "lightonai/MonoQwen2-VL-v0.1"

[generator]
type = "langchain"

[generator.init_parameters]
api_key = { type = "env_var", env_vars = ["OPENAI_API_KEY"], strict = true }
model = "gpt-4o-mini"
"""


@pytest.fixture(autouse=True)
def _no_mmrag_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("MMRAG_"):
            monkeypatch.delenv(name)


def test_toml_round_trip_is_unchanged():
    cfg = PipelineConfig.from_toml_string(FULL)
    text = cfg.to_toml()
    again = PipelineConfig.from_toml_string(text)
    assert again == cfg
    assert again.to_toml() == text


def test_values_from_toml_land_in_sections():
    cfg = PipelineConfig.from_toml_string(FULL)
    assert cfg.ingest.dpi == 200 and cfg.ingest.workers == 2
    assert cfg.embedder.type == "colqwen2"
    assert cfg.embedder.init_parameters["batch_size"] == 4
    assert cfg.pooling.views == ["global", "rows", "muvera"]
    assert cfg.pooling.muvera.k_sim == 4 and cfg.pooling.muvera.r_reps == 20
    assert cfg.store.api_key == Secret.from_env_var("QDRANT_API_KEY")
    assert cfg.reranker is not None and cfg.reranker.type == "monoqwen"


def test_defaults_round_trip_through_files(tmp_path):
    cfg = PipelineConfig()
    for name in ("c.toml", "c.json"):
        path = cfg.save(tmp_path / name)
        assert PipelineConfig.load(path) == cfg


def test_component_serialises_as_type_and_init_parameters():
    cfg = PipelineConfig.from_toml_string(FULL)
    data = cfg.to_dict()
    assert set(data["embedder"]) == {"type", "init_parameters"}
    assert data["generator"]["init_parameters"]["api_key"] == {
        "type": "env_var",
        "env_vars": ["OPENAI_API_KEY"],
        "strict": True,
    }


def test_env_overrides_file_values(monkeypatch, tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(FULL)
    monkeypatch.setenv("MMRAG_INGEST__DPI", "96")
    monkeypatch.setenv("MMRAG_STORE__URL", "http://qdrant.internal:6333")
    monkeypatch.setenv("MMRAG_RETRIEVAL__PLAN", "rows@40->full@5")
    cfg = PipelineConfig.load(path)
    assert cfg.ingest.dpi == 96
    assert cfg.ingest.workers == 2  # untouched keys keep the file's value
    assert cfg.store.url == "http://qdrant.internal:6333"
    assert cfg.store.backend == "server"
    assert cfg.retrieval.plan == "rows@40 -> full@5"


def test_env_override_of_a_component_parameter(monkeypatch):
    monkeypatch.setenv("MMRAG_EMBEDDER__INIT_PARAMETERS__DEVICE", "cpu")
    cfg = PipelineConfig.from_toml_string(FULL)
    assert cfg.embedder.init_parameters == {
        "model": "vidore/colqwen2-v1.0-hf",
        "batch_size": 4,
        "device": "cpu",
    }


def test_bad_env_value_names_the_key(monkeypatch):
    monkeypatch.setenv("MMRAG_STORE__BACKEND", "sqlite")
    with pytest.raises(ConfigError, match=r"store\.backend: .*'embedded' or 'server'.*'sqlite'"):
        PipelineConfig.from_dict({})


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"store": {"backend": "sqlite"}}, r"store\.backend: .*'embedded' or 'server'"),
        ({"ingest": {"dpii": 100}}, r"ingest\.dpii: unknown key; allowed keys: dpi, max_side"),
        ({"retreival": {}}, r"retreival: unknown key; allowed keys: ingest, embedder"),
        ({"ingest": {"dpi": 5}}, r"ingest\.dpi: .*greater than or equal to 18"),
        ({"pooling": {"views": ["global", "rowz"]}}, r"pooling\.views\.1: .*'rows'.*'rowz'"),
        (
            {"embedder": {"type": "colbertx"}},
            r"embedder\.type: unknown embedder type 'colbertx'; "
            r"allowed: clip, vlm2vec",
        ),
        ({"retrieval": {"plan": "global@5 -> full@9"}}, r"retrieval\.plan: .*only narrow"),
        ({"store": {"api_key": "sk-123"}}, r"store\.api_key: secrets are never stored as values"),
    ],
)
def test_bad_values_name_key_and_allowed_values(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        PipelineConfig.from_dict(data)


def test_bad_file_error_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[store]\nbackend = 'sqlite'\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: invalid configuration"):
        PipelineConfig.load(path)
    path.write_text("[store\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        PipelineConfig.load(path)
    with pytest.raises(ConfigError, match="cannot read"):
        PipelineConfig.load(tmp_path / "missing.toml")


def test_secret_values_are_never_saved():
    cfg = PipelineConfig(
        generator=GeneratorSpec(type="langchain", init_parameters={"api_key": "sk-live"})
    )
    with pytest.raises(ConfigError, match=r"generator\.init_parameters\.api_key: refusing"):
        cfg.to_toml()
    cfg = PipelineConfig.from_dict({"ingest": {"pdf_password": "letmein"}})
    assert cfg.ingest.pdf_password == "letmein"
    assert "letmein" not in cfg.to_toml()  # usable in memory, never written
    assert "letmein" not in repr(cfg)


def test_token_secret_in_store_is_usable_but_not_saved():
    cfg = PipelineConfig()
    cfg.store.api_key = Secret.from_token("abc")
    assert cfg.store.api_key.resolve_value() == "abc"
    assert "abc" not in repr(cfg.model_dump())
    with pytest.raises(ConfigError, match=r"store\.api_key: a secret given as a token cannot be"):
        cfg.to_toml()


def test_component_spec_builds_through_the_registry():
    spec = EmbedderSpec(type="collections.OrderedDict", init_parameters={"a": 1})
    assert spec.build() == {"a": 1}
    secret_spec = EmbedderSpec(
        type="builtins.dict",
        init_parameters={"api_key": {"type": "env_var", "env_vars": ["X_KEY"], "strict": True}},
    )
    assert secret_spec.build() == {"api_key": Secret.from_env_var("X_KEY")}
