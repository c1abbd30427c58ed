"""The `mmrag` command: subcommands listed, serve wired to the HTTP app, info works."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mmrag.cli import app

pytestmark = pytest.mark.unit

runner = CliRunner()
COMMANDS = [
    "index",
    "search",
    "ask",
    "eval",
    "serve",
    "sources",
    "delete",
    "doctor",
    "info",
    "init",
    "quickstart",
]


def test_help_lists_every_subcommand():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_each_subcommand_documents_itself(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert len(result.output.strip().splitlines()) > 3


def test_serve_builds_the_app_from_its_options_and_runs_uvicorn(tmp_path, monkeypatch):
    import uvicorn

    from mmrag.integrations.server.service import Service

    served: dict = {}
    opened: list[bool] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    # the store opens (and models load) before the port does; here: only recorded
    monkeypatch.setattr(Service, "open", lambda self: opened.append(not served))
    monkeypatch.setenv("MY_SERVE_KEY", "k3y")
    (tmp_path / "mmrag.toml").write_text(f'[store]\npath = "{tmp_path / "idx"}"\n')
    docs = tmp_path / "docs"
    docs.mkdir()
    args = ["serve", "--config", str(tmp_path / "mmrag.toml"), "--port", "8123"]
    args += ["--api-key-env", "MY_SERVE_KEY", "--max-upload-mb", "5", "--allow-path", str(docs)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/" in result.output
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert opened == [True]  # before uvicorn ran
    service = served["app"].state.service
    assert service.api_key == "k3y"
    assert service.max_upload_bytes == 5 * 2**20
    assert service.allowed_roots == [docs.resolve()]
    assert service.upload_dir == (tmp_path / "idx" / "uploads").resolve()
    assert not (tmp_path / "idx").exists()


def test_serve_refuses_a_missing_key_variable_and_a_missing_root(tmp_path, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: pytest.fail("must not start"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    result = runner.invoke(app, ["serve", "--api-key-env", "NO_SUCH_KEY_VAR"])
    assert result.exit_code == 2
    assert "NO_SUCH_KEY_VAR" in result.output
    result = runner.invoke(app, ["serve", "--allow-path", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "nowhere" in result.output


def test_bad_plan_on_the_command_line_is_a_usage_error():
    result = runner.invoke(app, ["search", "q", "--plan", "global@5 -> full@10"])
    assert result.exit_code == 2
    assert "only narrow" in result.output


def test_bad_config_file_is_reported_with_its_key(tmp_path):
    path = tmp_path / "mmrag.toml"
    path.write_text("[ingest]\ndpi = 'high'\n")
    result = runner.invoke(app, ["info", "--config", str(path)])
    assert result.exit_code == 2
    assert "ingest.dpi" in result.output


def test_info_reports_versions_and_effective_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mmrag.toml").write_text('[store]\npath = "here_index"\n')
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mmrag"]["version"]
    assert data["config"]["location"] == "here_index"
    assert "cpu" in data["mmrag"]["devices"]
    assert data["libraries"]["pydantic"] != "not installed"


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "mmrag.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "quickstart" in result.stdout
