"""examples/langchain_agent.py runs end to end offline: tiny embedder, stand-in chat model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "langchain_agent.py"
SAMPLE_FILES = {p.name for p in (ROOT / "examples" / "data").iterdir()}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_agent_example_answers_with_citations_on_the_tiny_model(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    command = [sys.executable, str(EXAMPLE), "--tiny", "--workdir", str(tmp_path), "--k", "3"]
    result = subprocess.run(
        [*command, "How much did revenue grow?"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:]
    assert "index: 12 indexed, 0 skipped (already present), 0 failed" in out
    assert "chat model: offline stand-in" in out
    answer = re.search(r"^Answer: (.+)$", out, re.MULTILINE)
    assert answer, out
    cited = re.findall(r"^  \[(\d)\] (\S+)(.*)\(score [-\d.]+\)$", out, re.MULTILINE)
    assert [int(n) for n, _, _ in cited] == [1, 2, 3], out
    assert {Path(source).name for _, source, _ in cited} <= SAMPLE_FILES
    assert "Citations (search: 'How much did revenue grow?')" in out  # the tool was called
    assert re.search(r"\[[1-3]\]", answer.group(1)), answer.group(1)  # cites a result
