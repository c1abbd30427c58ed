"""The async Pipeline methods: aindex, asearch, aask run the sync ones in a worker thread, one
call at a time per pipeline (``Pipeline.lock``), and give the same results."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from mmrag.config import PipelineConfig
from mmrag.pipeline.pipeline import Pipeline

pytestmark = pytest.mark.integration

QUERIES = [
    "How much did ACME Solar's revenue grow in 2024?",
    "rooftop installation",
    "customer survey results",
    "system diagram",
    "video update",
    "revenue table",
]


def test_gathered_asearches_equal_sequential_searches(
    sample_dir: Path, tiny_config: PipelineConfig
):
    with Pipeline(tiny_config) as pipe:
        threads: set[str] = set()

        async def run() -> tuple[object, list[list]]:
            report = await pipe.aindex(
                [sample_dir], on_progress=lambda n: threads.add(threading.current_thread().name)
            )
            results = await asyncio.gather(*(pipe.asearch(q, k=3) for q in QUERIES))
            return report, list(results)

        report, together = asyncio.run(run())
        assert report.ok and report.indexed > 10
        assert threading.main_thread().name not in threads  # the job ran in a worker thread
        sequential = [pipe.search(q, k=3) for q in QUERIES]
    assert [[(h.id, h.score) for h in hits] for hits in together] == [
        [(h.id, h.score) for h in hits] for hits in sequential
    ]
    assert all(len(hits) == 3 for hits in together)


def test_calls_on_one_pipeline_hold_its_lock(tiny_config: PipelineConfig) -> None:
    pipe = Pipeline(tiny_config)
    assert pipe.lock is pipe.lock and Pipeline(tiny_config).lock is not pipe.lock

    async def blocked() -> bool:
        with pipe.lock:  # held by this thread: the search's worker thread waits for it
            task = asyncio.ensure_future(pipe.asearch("revenue", k=1))
            await asyncio.sleep(0.3)
            waiting = not task.done()
        await task  # released: it runs (an empty index: no hits)
        return waiting

    assert asyncio.run(blocked())
    pipe.close()


@pytest.mark.slow
def test_aask_answers_like_ask(sample_dir: Path, tiny_config: PipelineConfig, tiny_idefics3: Path):
    data = tiny_config.model_dump(mode="json")
    data["generator"] = {
        "type": "transformers",
        "init_parameters": {"model": str(tiny_idefics3), "device": "cpu", "max_new_tokens": 4},
    }
    with Pipeline(PipelineConfig.from_dict(data)) as pipe:
        pipe.index([sample_dir / "acme_solar_annual_report_2024.pdf"])
        tokens: list[str] = []
        answer = asyncio.run(pipe.aask("How much did revenue grow?", k=2, on_token=tokens.append))
        again = pipe.ask("How much did revenue grow?", k=2)
    assert answer.text == again.text and tokens  # streamed from the worker thread
    assert [h.id for h in answer.sources] == [h.id for h in again.sources]
