"""The Ray engine keeps the documented stale-version policy of the indexing steps: a changed
file's old version stays searchable until the new one is complete, even when the job dies
part-way through writing the new one."""

from __future__ import annotations

import pytest

from mmrag.integrations.ray import index_with_ray
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.contract import PENDING_FIELD
from mmrag.testing.media import make_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Died(BaseException):
    """Stands for the driver process dying (not an error the job could handle)."""


def points(pipe: Pipeline, source: str) -> dict[str, bool]:
    """point id -> pending, of ``source``."""
    return {
        r.id: bool(r.payload.get(PENDING_FIELD))
        for r in pipe.store.iter_records()
        if r.payload["source"] == source
    }


def visible(pipe: Pipeline) -> set[str]:
    return {hit.id for hit in pipe.search("solar revenue", k=1000, plan="full@1000")}


def test_ray_job_dying_mid_update_keeps_the_old_version(
    ray_cluster, make_config, tmp_path, monkeypatch
):
    pdf = tmp_path / "doc.pdf"
    make_pdf(pdf, pages=8, seed=1)
    with Pipeline(make_config("index")) as pipe:
        assert index_with_ray(pipe, [pdf]).ok
        old = points(pipe, str(pdf))
        assert len(old) == 8 and not any(old.values())

        make_pdf(pdf, pages=8, seed=2)  # a new version of the same file
        store = pipe.store
        upsert = store.upsert
        calls = []

        def upsert_then_die(batch, **kwargs):
            calls.append(upsert(batch, **kwargs))
            raise Died  # the driver dies right after the new version's first write

        monkeypatch.setattr(store, "upsert", upsert_then_die)
        with pytest.raises(Died):
            index_with_ray(pipe, [pdf])
        monkeypatch.setattr(store, "upsert", upsert)
        assert calls == [4]  # one batch of the new version was written

        now = points(pipe, str(pdf))
        assert set(old) <= set(now)  # the old version is all there, still published
        new = {i for i, pending in now.items() if pending}
        assert len(new) == 4 and not new & set(old)
        assert visible(pipe) == set(old)

        report = index_with_ray(pipe, [pdf])  # the rerun completes and replaces it
        assert report.ok
        final = points(pipe, str(pdf))
        assert len(final) == 8 and not set(final) & set(old) and not any(final.values())
        assert visible(pipe) == set(final)
