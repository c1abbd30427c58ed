"""The `mmrag` command: subcommands listed, unavailable features exit non-zero, info works."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mmrag.cli import EX_UNAVAILABLE, app

pytestmark = pytest.mark.unit

runner = CliRunner()
COMMANDS = ["index", "search", "ask", "eval", "serve", "info", "delete", "quickstart"]


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


@pytest.mark.parametrize(
    "args",
    [["ask", "what grew?"], ["serve"]],
)
def test_unlanded_features_exit_non_zero_and_say_so(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == EX_UNAVAILABLE
    assert "not available in this build" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing was written


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
