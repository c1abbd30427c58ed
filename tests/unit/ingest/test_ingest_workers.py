"""PDF rendering in worker processes: same Items, same pixels, bounded, cleaned up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmrag.pipeline.ingest import IngestConfig, iter_items, iter_pdf_pages
from mmrag.pipeline.ingest.pdf_pool import PdfRenderPool
from mmrag.pipeline.ingest.pdf_render import RenderSpec
from mmrag.testing import media
from mmrag.types import IndexReport

pytestmark = pytest.mark.integration


def _shm_entries() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def _signature(items) -> list[tuple]:
    return [
        (i.page, i.page_label, i.width, i.height, i.text, dict(i.metadata), i.source_sha256)
        for i in items
    ]


@pytest.mark.parametrize(
    "options",
    [
        {"dpi": 60},
        {"dpi": 90, "max_side": 500, "crop_margins": True, "skip_blank_pages": True},
    ],
)
def test_workers_give_the_same_items_and_pixels(ingest_media: Path, options: dict) -> None:
    path = ingest_media / "with_blank.pdf"
    in_process = list(iter_pdf_pages(path, IngestConfig(**options)))
    in_workers = list(iter_pdf_pages(path, IngestConfig(workers=2, **options)))
    assert _signature(in_workers) == _signature(in_process)
    for a, b in zip(in_process, in_workers, strict=True):
        assert a.load_image().tobytes() == b.load_image().tobytes()
        assert b.load_image().tobytes() == a.load_image().tobytes()  # the re-rendered ones too


def test_one_pool_serves_many_files_and_survives_bad_ones(
    tmp_path: Path, ingest_media: Path
) -> None:
    long_pdf = media.make_pdf(tmp_path / "long.pdf", pages=30, with_images=False)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\n garbage without end")
    report = IndexReport()
    config = IngestConfig(dpi=40, workers=2, prefetch=3)
    items = list(
        iter_items(
            [long_pdf, bad, ingest_media / "doc.pdf", ingest_media / "secret.pdf"],
            config,
            report=report,
        )
    )
    assert [i.page for i in items] == [*range(1, 31), 1, 2, 3, 4]
    assert [f.error_type for f in report.failed] == ["TruncatedFileError", "EncryptedPDFError"]
    assert all(i.load_image().size == (i.width, i.height) for i in items)


def test_abandoning_a_pdf_midway_drains_the_pool(tmp_path: Path) -> None:
    path = media.make_pdf(tmp_path / "long.pdf", pages=40, with_images=False)
    with PdfRenderPool(workers=2, in_flight=6) as pool:
        spec = RenderSpec(dpi=30)
        renders = pool.render(str(path), 40, spec, None, None, 500_000)
        first = [next(renders) for _ in range(5)]
        renders.close()  # the consumer stops early: in-flight pages are waited for
        again = list(pool.render(str(path), 40, spec, None, None, 500_000))
        slots = [slot.name.lstrip("/") for slot in pool._slots]
    assert slots and not set(slots) & _shm_entries()  # the shared memory is released
    assert [info.index for info, _ in first] == [0, 1, 2, 3, 4]
    assert [info.index for info, _ in again] == list(range(40))
    assert all(image is not None for _, image in again)


def test_pages_larger_than_a_slot_come_back_through_the_pipe(sample_pdf: Path) -> None:
    with PdfRenderPool(workers=1, in_flight=2) as pool:
        renders = list(pool.render(str(sample_pdf), 4, RenderSpec(dpi=100), None, None, 1000))
    assert [image.size for _, image in renders] == [(850, 1100)] * 4
