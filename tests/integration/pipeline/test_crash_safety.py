"""Crash safety: ``mmrag index`` killed with SIGKILL mid-job, then run again, ends with the same
collection as an uninterrupted run; meanwhile no half-indexed document is visible to search.

The job runs in a real subprocess (``python -m mmrag.cli -v index``); the test reads its log
and kills it at a chosen point: after its first batch is stored (the first document half
written), right after a document was published, and in the middle of a later document.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from mmrag.config import PipelineConfig
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.contract import PENDING_FIELD
from mmrag.testing.media import make_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STORED = "mmrag.pipeline.indexing.steps: stored "
PUBLISHED = "mmrag.pipeline.indexing.steps: published "


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, pages, seed in (("a.pdf", 6, 1), ("b.pdf", 10, 2), ("c.pdf", 6, 3)):
        make_pdf(folder / name, pages=pages, seed=seed)
    return folder


@pytest.fixture
def config(tiny_config: PipelineConfig) -> PipelineConfig:
    config = tiny_config.model_copy(deep=True)
    config.embedder.init_parameters["batch_size"] = 2  # many small writes to land between
    return config


def by_source(pipe: Pipeline) -> dict[str, dict[str, bool]]:
    """source -> {point id -> pending} of every stored point."""
    out: dict[str, dict[str, bool]] = defaultdict(dict)
    for record in pipe.store.iter_records():
        out[record.payload["source"]][record.id] = bool(record.payload.get(PENDING_FIELD))
    return dict(out)


def visible(pipe: Pipeline) -> set[str]:
    return {hit.id for hit in pipe.search("solar revenue", k=1000, plan="full@1000")}


def kill_when(command: list[str], trigger: list[str], cwd: Path) -> tuple[int, list[str]]:
    """Run ``command``; SIGKILL it once its log has shown the lines of ``trigger`` in order
    (each given by a prefix). Returns the exit status and the log read."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert process.stderr is not None
    log, waiting = [], list(trigger)
    deadline = time.monotonic() + 300
    for line in process.stderr:
        log.append(line)
        if waiting and waiting[0] in line:
            waiting.pop(0)
            if not waiting:
                process.send_signal(signal.SIGKILL)
                break
        assert time.monotonic() < deadline, "the job took too long"
    process.stderr.close()
    return process.wait(), log


@pytest.mark.parametrize(
    ("trigger", "left"),
    [
        pytest.param([STORED], {"pending"}, id="first-document-half-written"),
        pytest.param([PUBLISHED], {"published"}, id="just-after-a-publish"),
        pytest.param(
            [PUBLISHED, STORED, STORED], {"published", "pending"}, id="second-document-half-written"
        ),
    ],
)
def test_sigkill_at_any_point_then_rerun_equals_an_uninterrupted_run(
    config, docs, tmp_path, trigger, left
):
    reference = config.model_copy(deep=True)
    reference.store.path = str(tmp_path / "reference")
    with Pipeline(reference) as pipe:
        assert pipe.index([docs]).ok
        expected = by_source(pipe)
    assert sum(map(len, expected.values())) == 22

    path = tmp_path / "mmrag.toml"
    config.save(path)
    command = [sys.executable, "-m", "mmrag.cli", "-v", "index", str(docs), "-c", str(path)]
    status, log = kill_when([*command, "--no-progress"], trigger, tmp_path)
    assert status == -signal.SIGKILL, "".join(log[-20:])  # killed mid-job, not finished

    with Pipeline(config) as pipe:
        killed = by_source(pipe)
        states = {
            "pending" if p else "published" for points in killed.values() for p in points.values()
        }
        assert left <= states, states  # the kill left what this case is about
        shown = visible(pipe)
        for source, points in killed.items():
            published = {i for i, pending in points.items() if not pending}
            if published:  # a published document is complete
                assert published == set(expected[source]), source
            assert not ({i for i, pending in points.items() if pending} & shown), source
        assert shown == {i for points in killed.values() for i, p in points.items() if not p}

        report = pipe.index([docs])
        assert report.ok
        final = by_source(pipe)
        assert {s: set(p) for s, p in final.items()} == {s: set(p) for s, p in expected.items()}
        assert pipe.store.count() == 22  # no duplicates
        assert not any(any(points.values()) for points in final.values())  # nothing pending
        assert visible(pipe) == {i for points in expected.values() for i in points}
        assert report.indexed + report.skipped == 22


def test_sigkill_mid_update_keeps_the_old_version_searchable(config, docs, tmp_path):
    """A changed file's old version stays searchable until the new one is complete: kill the
    job after the new version's first batch is stored, and search still finds the old pages
    (and none of the new ones); the rerun then replaces the old version whole."""
    with Pipeline(config) as pipe:
        assert pipe.index([docs / "b.pdf"]).ok
        old = by_source(pipe)[str(docs / "b.pdf")]
    assert len(old) == 10
    make_pdf(docs / "b.pdf", pages=10, seed=99)  # a new version of the same file

    path = tmp_path / "mmrag.toml"
    config.save(path)
    command = [sys.executable, "-m", "mmrag.cli", "-v", "index", str(docs / "b.pdf")]
    status, log = kill_when([*command, "-c", str(path), "--no-progress"], [STORED], tmp_path)
    assert status == -signal.SIGKILL, "".join(log[-20:])

    with Pipeline(config) as pipe:
        points = by_source(pipe)[str(docs / "b.pdf")]
        assert set(old) <= set(points)  # the old version is all there ...
        new = {i for i, pending in points.items() if pending}
        assert new and not new & set(old)  # ... beside the new version's first batch, pending
        assert visible(pipe) == set(old)  # search shows the old version only

        report = pipe.index([docs / "b.pdf"])
        assert report.ok
        final = by_source(pipe)[str(docs / "b.pdf")]
        assert len(final) == 10 and not set(final) & set(old)  # the new version replaced it
        assert not any(final.values())
        assert visible(pipe) == set(final)
