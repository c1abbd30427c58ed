"""PDF pages: sizes, text layer, labels, cropping, blank pages, passwords, bad files, memory."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pymupdf
import pytest

from mmrag.pipeline.ingest import (
    CorruptFileError,
    EmptyFileError,
    EncryptedPDFError,
    IngestConfig,
    SourceChangedError,
    TruncatedFileError,
    iter_pdf_pages,
)
from mmrag.pipeline.ingest._prefetch import PrefetchedImage
from mmrag.pipeline.ingest.pdf import PdfPageLoader
from mmrag.testing import media
from mmrag.types import Modality

pytestmark = pytest.mark.unit


def test_pages_stream_in_order_with_size_at_the_dpi(sample_pdf: Path) -> None:
    items = list(iter_pdf_pages(sample_pdf, IngestConfig(dpi=72)))
    assert [item.page for item in items] == [1, 2, 3, 4]
    for item in items:
        assert item.modality is Modality.PDF_PAGE
        assert (item.width, item.height) == (612, 792)  # US Letter at 72 DPI
        assert item.frame_index is None and item.timestamp_s is None
        assert item.details["page_count"] == 4
        image = item.load_image()
        assert image.mode == "RGB"
        assert image.size == (612, 792)
    items = list(iter_pdf_pages(sample_pdf, IngestConfig(dpi=144)))
    assert {(item.width, item.height) for item in items} == {(1224, 1584)}


def test_items_identify_their_source(sample_pdf: Path) -> None:
    item = next(iter_pdf_pages(sample_pdf))
    assert item.source == os.fspath(sample_pdf)
    assert item.source_sha256 == hashlib.sha256(sample_pdf.read_bytes()).hexdigest()
    assert item.locator == "page=1"


@pytest.mark.parametrize(
    ("dpi", "max_side", "expected"),
    [
        (144, 1000, (773, 1000)),  # max_side is smaller: render directly at that zoom
        (72, 1000, (612, 792)),  # DPI is smaller: max_side does nothing
        (300, 512, (396, 512)),
    ],
)
def test_max_side_bounds_the_longer_side(
    sample_pdf: Path, dpi: int, max_side: int, expected: tuple[int, int]
) -> None:
    item = next(iter_pdf_pages(sample_pdf, IngestConfig(dpi=dpi, max_side=max_side)))
    assert (item.width, item.height) == expected
    assert item.load_image().size == expected


def test_text_layer_is_kept(sample_pdf: Path) -> None:
    texts = [item.text for item in iter_pdf_pages(sample_pdf)]
    assert all(text and text.startswith(f"Page {n}") for n, text in enumerate(texts, 1))
    assert len(texts[0].split()) > 30
    without = iter_pdf_pages(sample_pdf, IngestConfig(extract_text=False))
    assert [item.text for item in without] == [None] * 4


def test_page_labels_come_from_the_pdf(ingest_media: Path, sample_pdf: Path) -> None:
    labels = [item.page_label for item in iter_pdf_pages(ingest_media / "labelled.pdf")]
    assert labels == ["i", "ii", "A-1", "A-2", "A-3"]
    expected = [page.get_label() for page in pymupdf.open(ingest_media / "labelled.pdf")]
    assert labels == expected
    assert {item.page_label for item in iter_pdf_pages(sample_pdf)} == {None}


def test_rotated_pages_come_out_rotated(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page(width=600, height=200).insert_text((50, 100), "sideways", fontsize=20)
    doc[0].set_rotation(90)
    doc.save(tmp_path / "rotated.pdf")
    [item] = iter_pdf_pages(tmp_path / "rotated.pdf", IngestConfig(dpi=72))
    assert (item.width, item.height) == (200, 600)
    assert item.load_image().size == (200, 600)


def _ink_box(image) -> tuple[int, int, int, int]:
    pixels = np.asarray(image)
    ink = (pixels < 200).any(axis=2)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def test_crop_margins_keeps_the_content_and_drops_the_margins(sample_pdf: Path) -> None:
    full = next(iter_pdf_pages(sample_pdf, IngestConfig(dpi=72)))
    cropped = next(iter_pdf_pages(sample_pdf, IngestConfig(dpi=72, crop_margins=True)))
    assert cropped.width < full.width - 100 and cropped.height < full.height - 100
    x0, y0, x1, y1 = cropped.details["crop_box"]
    assert (x1 - x0, y1 - y0) == (cropped.width, cropped.height)
    image = cropped.load_image()
    assert image.size == (cropped.width, cropped.height)
    # The content itself is untouched: same pixels as the same box of the full page.
    reference = full.load_image().crop((x0, y0, x1, y1))
    assert image.tobytes() == reference.tobytes()
    # Ink reaches within the padding of every edge.
    left, top, right, bottom = _ink_box(image)
    assert max(left, top, image.width - 1 - right, image.height - 1 - bottom) <= 12
    # Re-rendering from the file (second load) gives the same crop.
    assert cropped.load_image().tobytes() == image.tobytes()


def test_blank_pages_can_be_skipped(ingest_media: Path) -> None:
    path = ingest_media / "with_blank.pdf"
    assert [item.page for item in iter_pdf_pages(path)] == [1, 2, 3]
    kept = list(iter_pdf_pages(path, IngestConfig(skip_blank_pages=True)))
    assert [item.page for item in kept] == [1, 3]


def test_a_page_with_only_a_picture_is_not_blank(tmp_path: Path) -> None:
    path = media.make_pdf(tmp_path / "pictures.pdf", pages=2, with_text=False)
    kept = list(iter_pdf_pages(path, IngestConfig(skip_blank_pages=True, crop_margins=True)))
    assert [item.page for item in kept] == [1, 2]


def test_encrypted_pdf_needs_the_password(ingest_media: Path) -> None:
    path = ingest_media / "secret.pdf"
    with pytest.raises(EncryptedPDFError) as caught:
        list(iter_pdf_pages(path))
    assert str(path) in str(caught.value)
    assert "pdf_password" in caught.value.reason
    with pytest.raises(EncryptedPDFError, match="does not open"):
        list(iter_pdf_pages(path, IngestConfig(pdf_password="wrong")))
    items = list(iter_pdf_pages(path, IngestConfig(pdf_password="s3cret")))
    assert [item.page for item in items] == [1, 2]
    assert items[1].text.startswith("Page 2")
    # The fallback loader re-opens the file with the password too.
    assert items[0].load_image().size == items[0].load_image().size == (1224, 1584)
    assert "s3cret" not in repr(items[0].image_loader)


def test_bad_files_raise_typed_errors_naming_the_file(tmp_path: Path, sample_pdf: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(os.urandom(4096))
    truncated = media.truncate_file(shutil.copy(sample_pdf, tmp_path / "cut.pdf"), keep=0.6)
    with pytest.raises(EmptyFileError, match=r"empty\.pdf: the file is empty"):
        list(iter_pdf_pages(empty))
    with pytest.raises(CorruptFileError, match=r"garbage\.pdf: not a PDF"):
        list(iter_pdf_pages(garbage))
    with pytest.raises(TruncatedFileError, match=r"cut\.pdf: the PDF is truncated"):
        list(iter_pdf_pages(truncated))
    recovered = list(iter_pdf_pages(truncated, IngestConfig(recover_truncated_pdfs=True)))
    assert len(recovered) >= 1


def test_the_image_is_handed_over_once_and_then_re_rendered(sample_pdf: Path) -> None:
    item = next(iter_pdf_pages(sample_pdf, IngestConfig(dpi=50)))
    loader = item.image_loader
    assert isinstance(loader, PrefetchedImage) and loader.ready
    first = item.load_image()
    assert not loader.ready  # the Item no longer holds pixels
    second = item.load_image()  # re-rendered from the file
    assert first.tobytes() == second.tobytes()
    assert first is not second


def test_loaders_pickle_without_pixels(sample_pdf: Path) -> None:
    item = next(iter_pdf_pages(sample_pdf, IngestConfig(dpi=50)))
    clone = pickle.loads(pickle.dumps(item.image_loader))
    assert not clone.ready
    assert clone().tobytes() == item.load_image().tobytes()


def test_prefetch_zero_renders_only_on_demand(sample_pdf: Path) -> None:
    eager = list(iter_pdf_pages(sample_pdf, IngestConfig(dpi=50)))
    lazy = list(iter_pdf_pages(sample_pdf, IngestConfig(dpi=50, prefetch=0)))
    assert all(isinstance(item.image_loader, PdfPageLoader) for item in lazy)
    for a, b in zip(eager, lazy, strict=True):
        assert (a.width, a.height, a.text) == (b.width, b.height, b.text)
        assert a.load_image().tobytes() == b.load_image().tobytes()


def test_a_changed_file_is_noticed_on_reload(tmp_path: Path, sample_pdf: Path) -> None:
    path = Path(shutil.copy(sample_pdf, tmp_path / "doc.pdf"))
    item = next(iter_pdf_pages(path, IngestConfig(dpi=50, prefetch=0)))
    media.make_pdf(path, pages=1, seed=7)
    os.utime(path, ns=(1, 1))
    with pytest.raises(SourceChangedError, match="changed on disk"):
        item.load_image()


def test_streaming_holds_a_bounded_number_of_pages(tmp_path: Path) -> None:
    path = media.make_pdf(tmp_path / "long.pdf", pages=300, with_images=False)
    config = IngestConfig(dpi=18, prefetch=4)
    items = []
    for item in iter_pdf_pages(path, config):  # collected without loading: worst case
        items.append(item)
        assert sum(i.image_loader.ready for i in items) <= config.prefetch
    assert len(items) == 300
    assert [i.page for i in items if i.image_loader.ready] == [297, 298, 299, 300]
    assert items[0].load_image().size == (items[0].width, items[0].height)  # re-rendered

    held_while_loading = []
    loaded = []
    for item in iter_pdf_pages(path, config):  # the embedder's way: load each as it comes
        item.load_image()
        loaded.append(item)
        held_while_loading.append(sum(i.image_loader.ready for i in loaded))
    assert max(held_while_loading) == 0  # no Item keeps pixels once its image was taken


def test_mupdf_cache_is_trimmed_while_streaming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmrag.pipeline.ingest import pdf_render

    calls = []
    monkeypatch.setattr(pdf_render._mupdf, "fz_empty_store", lambda: calls.append(1))
    path = media.make_pdf(tmp_path / "long.pdf", pages=2 * pdf_render.CACHE_TRIM_PAGES + 1)
    for item in iter_pdf_pages(path, IngestConfig(dpi=18)):
        item.load_image()
    assert len(calls) == 2  # decoded pictures of earlier pages do not pile up in MuPDF's store
