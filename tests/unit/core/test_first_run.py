"""A first run as a new user makes it, without any model: commands that need no model start
without torch; a model that cannot be had is one message and exit status 68, at once; `mmrag
init` writes a commented config; a config or `Pipeline.from_pretrained` may name only a model."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmrag.cli import EX_NOHOST, app
from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError, ModelNotAvailableError
from mmrag.pipeline.pipeline import Pipeline

pytestmark = pytest.mark.unit

runner = CliRunner()
HUB_MODEL = "vidore/colqwen2-v1.0-hf"  # in the catalogue: its family needs no download
SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"

# Runs the CLI as the console script does, then reports which heavy libraries it imported.
_MAIN = """\
import sys
from mmrag.cli import main
sys.argv = ["mmrag", *sys.argv[1:]]
try:
    main()
finally:
    heavy = [m for m in ("torch", "transformers") if m in sys.modules]
    print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    """No Hub access and an empty Hugging Face cache: a new user's offline machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMRAG_", "HF_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"), TRANSFORMERS_OFFLINE="1")
    return env


def _mmrag(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _MAIN, *args],
        cwd=cwd or tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _heavy(result: subprocess.CompletedProcess) -> str:
    line = [x for x in result.stderr.splitlines() if x.startswith("HEAVY=")][-1]
    return line.removeprefix("HEAVY=")


def _toy_index(folder: Path) -> str:
    """An index built by another embedder (a toy one) in ``folder``; returns one source."""
    from mmrag.ids import canonical_source
    from mmrag.store.embedded import EmbeddedStore
    from mmrag.testing.conformance.corpus import make_corpus, schema_for

    source = canonical_source(folder.parent / "alpha.pdf")
    docs = make_corpus(8)
    with EmbeddedStore(folder, "mmrag", schema_for()) as store:
        store.upsert(
            [
                (dataclasses.replace(d.item, source=source) if i % 2 else d.item, d.embedding)
                for i, d in enumerate(docs)
            ]
        )
    return source


# -- start-up: no torch where no model is needed ---------------------------------------------


@pytest.mark.parametrize("command", [["--help"], ["info"], ["info", "--json"], ["init", "--help"]])
def test_commands_that_need_no_model_never_import_torch(tmp_path, command):
    result = _mmrag(tmp_path, *command)
    assert result.returncode == 0, result.stderr
    assert _heavy(result) == ""


def test_sources_and_delete_open_the_index_without_the_embedder_or_torch(tmp_path):
    # The config names a Hub model that is neither cached nor downloadable: listing and
    # deleting never need it (nor its id, nor torch); searching does, and says so.
    source = _toy_index(tmp_path / "idx")
    (tmp_path / "mmrag.toml").write_text(
        f'[embedder]\nmodel = "{HUB_MODEL}"\n[store]\npath = "{tmp_path / "idx"}"\n'
    )
    listed = _mmrag(tmp_path, "sources", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[source] == 4
    assert _heavy(listed) == ""

    removed = _mmrag(tmp_path, "delete", source)
    assert removed.returncode == 0, removed.stderr
    assert "removed 4 items" in removed.stdout
    assert _heavy(removed) == ""

    searched = _mmrag(tmp_path, "search", "revenue")
    assert searched.returncode == EX_NOHOST, searched.stderr
    assert "HF_HUB_OFFLINE" in searched.stderr


def test_sources_of_an_index_never_built_lists_nothing_and_creates_nothing(tmp_path):
    (tmp_path / "mmrag.toml").write_text(f'[store]\npath = "{tmp_path / "idx"}"\n')
    result = _mmrag(tmp_path, "sources")
    assert result.returncode == 0, result.stderr
    assert "no sources indexed" in result.stdout
    assert not (tmp_path / "idx").exists()


def test_info_is_fast_and_names_an_inferred_embedder(tmp_path):
    (tmp_path / "mmrag.toml").write_text(f'[embedder]\nmodel = "{HUB_MODEL}"\n')
    started = time.perf_counter()
    result = _mmrag(tmp_path, "info", "--json")
    took = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["config"]["model"] == HUB_MODEL
    assert "checkpoint" in data["config"]["embedder"]
    assert data["mmrag"]["devices"].endswith("cpu")
    assert took < 30  # measured: about 1 s (it took 5-9 s when it imported torch)


# -- first run without the model: one message, exit status 68, at once -------------------------


def test_index_without_hub_access_fails_at_once_with_one_message(tmp_path):
    docs = tmp_path / "mydocs"
    docs.mkdir()
    (docs / "slide.png").write_bytes((SAMPLE / "customer_survey_slide.png").read_bytes())
    result = _mmrag(tmp_path, "index", "mydocs")  # no config: the default Hub models
    assert result.returncode == EX_NOHOST, result.stderr
    message = result.stderr
    assert "ModernVBERT/colmodernvbert-merged" in message
    assert "HF_HUB_OFFLINE is set" in message  # what was tried
    assert "local folder" in message and "mmrag init --tiny" in message  # what to do
    for noise in ("Traceback", "Retry", "indexing:", "job stopped", "run the same job again"):
        assert noise not in message
    assert not (tmp_path / "mmrag_index").exists()  # nothing started


def test_missing_weights_of_a_pinned_model_fail_before_loading_without_retries(tmp_path):
    # The commit is known (pinned), so the index opens; the weights are not in the cache and
    # the Hub cannot be asked: one message, no retry loop, no "job stopped".
    (tmp_path / "mmrag.toml").write_text(
        f'[embedder]\nmodel = "{HUB_MODEL}"\n[embedder.init_parameters]\nrevision = "{"1" * 40}"\n'
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.png").write_bytes((SAMPLE / "system_diagram.png").read_bytes())
    result = _mmrag(tmp_path, "index", "docs")
    assert result.returncode == EX_NOHOST, result.stderr
    assert "no weights for revision" in result.stderr
    assert "loading embedder" in result.stderr
    assert "Retry" not in result.stderr and "Traceback" not in result.stderr
    assert _heavy(result) == ""  # it stopped before importing the model code


def test_eval_prints_a_message_not_a_traceback(tmp_path):
    empty = _mmrag(tmp_path, "eval", ".")
    assert empty.returncode == 2
    assert "Traceback" not in empty.stderr and "mmrag:" in empty.stderr

    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "revenue grew"}) + "\n")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "revenue"}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    offline = _mmrag(tmp_path, "eval", str(data))
    assert offline.returncode == EX_NOHOST, offline.stderr
    assert "Traceback" not in offline.stderr
    assert "HF_HUB_OFFLINE" in offline.stderr


def test_hub_warnings_are_printed_once(tmp_path):
    code = (
        "import logging\n"
        "from mmrag.cli import app\n"
        "app(['info'], standalone_mode=False)\n"
        "import huggingface_hub\n"
        "logging.getLogger('huggingface_hub.utils._http').warning('HUB-WARNING')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("HUB-WARNING") == 1


def test_model_not_available_is_a_config_error_with_its_own_exit_status():
    assert EX_NOHOST == 68
    assert issubclass(ModelNotAvailableError, ConfigError)


# -- mmrag init ---------------------------------------------------------------------------------


def test_init_writes_a_commented_config_that_loads_and_never_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "--model", HUB_MODEL, "--index", "my_index"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "mmrag.toml").read_text()
    for section in ("[embedder]", "[ingest]", "[pooling]", "[store]", "[retrieval]"):
        assert section in text
    for commented in ("# [reranker]", "# [ray]", '# backend = "server"'):
        assert commented in text
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) > 20
    cfg = PipelineConfig.load(tmp_path / "mmrag.toml")
    assert cfg.embedder.type is None  # read from the checkpoint when used
    assert cfg.embedder.init_parameters["model"] == HUB_MODEL
    assert cfg.embedder.resolved_type() == "colqwen2"
    assert cfg.store.path == "my_index"

    again = runner.invoke(app, ["init"])
    assert again.exit_code == 2 and "--force" in again.output
    assert PipelineConfig.load(tmp_path / "mmrag.toml").store.path == "my_index"  # untouched
    forced = runner.invoke(app, ["init", "--force"])
    assert forced.exit_code == 0, forced.output
    default = PipelineConfig.load(tmp_path / "mmrag.toml")
    assert (
        default.embedder.init_parameters["model"]
        == PipelineConfig().embedder.init_parameters["model"]
    )
    assert default.store.path == "mmrag_index"
    assert runner.invoke(app, ["init", "--tiny", "--model", "x", "-c", "other.toml"]).exit_code == 2


# -- a config, or Pipeline.from_pretrained, naming only a model ------------------------------------


def test_an_embedder_may_be_given_by_its_model_alone():
    for data in (
        {"embedder": {"model": HUB_MODEL}},
        {"embedder": {"init_parameters": {"model": HUB_MODEL, "batch_size": 2}}},
    ):
        cfg = PipelineConfig.from_dict(data)
        assert cfg.embedder.type is None
        assert PipelineConfig.from_toml_string(cfg.to_toml()) == cfg
        embedder = cfg.embedder.build()
        assert embedder.family == "colqwen2" and embedder.model == HUB_MODEL
    with pytest.raises(ConfigError, match="embedder's model"):
        PipelineConfig.from_dict({"embedder": {"init_parameters": {"batch_size": 2}}})
    with pytest.raises(ConfigError, match="give the model once"):
        PipelineConfig.from_dict(
            {"embedder": {"model": "a/b", "init_parameters": {"model": "c/d"}}}
        )


def test_a_hub_model_whose_family_cannot_be_read_offline_says_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    cfg = PipelineConfig.from_dict({"embedder": {"model": "someone/my-finetune"}})
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE is set") as caught:
        cfg.embedder.build()
    assert "name its family" in str(caught.value)


def test_from_pretrained_is_one_line_and_loads_nothing(tmp_path):
    pipe = Pipeline.from_pretrained(
        HUB_MODEL,
        index=tmp_path / "my_index",
        collection="papers",
        device="cpu",
        retrieval={"top_k": 3},
        generator=None,
    )
    cfg = pipe.config
    assert cfg.store.path == str(tmp_path / "my_index") and cfg.store.collection == "papers"
    assert cfg.embedder.init_parameters == {"model": HUB_MODEL, "device": "cpu"}
    assert cfg.retrieval.top_k == 3 and cfg.retrieval.plan == PipelineConfig().retrieval.plan
    assert cfg.generator is None
    assert pipe.embedder.family == "colqwen2" and not pipe.embedder.is_loaded
    assert not (tmp_path / "my_index").exists()
    default = Pipeline.from_pretrained(HUB_MODEL, device="cpu").config
    assert default.generator is not None and default.generator.init_parameters["device"] == "cpu"
    with pytest.raises(ConfigError, match="unknown config section"):
        Pipeline.from_pretrained(HUB_MODEL, retreival={"top_k": 3})
