"""iter_items: many files, one stream; failures reported and skipped; settings and errors."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mmrag.errors import IngestError
from mmrag.pipeline.ingest import (
    CorruptFileError,
    EmptyFileError,
    EncryptedPDFError,
    IngestConfig,
    NoVideoStreamError,
    SourceNotFoundError,
    TruncatedFileError,
    UnsupportedTypeError,
    discover,
    iter_items,
)
from mmrag.testing import media
from mmrag.types import IndexReport, Modality

pytestmark = pytest.mark.unit


@pytest.fixture
def mixed_folder(tmp_path: Path, ingest_media: Path) -> Path:
    """Good and bad files side by side."""
    folder = tmp_path / "inbox"
    (folder / "photos").mkdir(parents=True)
    shutil.copy(ingest_media / "doc.pdf", folder / "a_report.pdf")
    shutil.copy(ingest_media / "secret.pdf", folder / "b_secret.pdf")
    shutil.copy(ingest_media / "scenes.mp4", folder / "c_talk.mp4")
    shutil.copy(ingest_media / "voice.m4a", folder / "d_voice.m4a")
    (folder / "e_empty.pdf").write_bytes(b"")
    (folder / "f_garbage.pdf").write_bytes(os.urandom(2048))
    media.truncate_file(shutil.copy(ingest_media / "doc.pdf", folder / "g_cut.pdf"), keep=0.6)
    (folder / "h_notes.py").write_text("print('not a document')\n")
    media.make_image(folder / "photos" / "p1.jpg", exif_orientation=6)
    media.make_image(folder / "photos" / "p2.gif", frames=2)
    (folder / "photos" / ".p3.png").write_bytes(b"hidden")
    return folder


EXPECTED_FAILURES = {
    "b_secret.pdf": EncryptedPDFError,
    "d_voice.m4a": NoVideoStreamError,
    "e_empty.pdf": EmptyFileError,
    "f_garbage.pdf": CorruptFileError,
    "g_cut.pdf": TruncatedFileError,
}


def test_good_files_stream_and_bad_ones_are_reported(
    mixed_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    report = IndexReport()
    with caplog.at_level(logging.WARNING, logger="mmrag.pipeline.ingest"):
        items = list(iter_items([mixed_folder], IngestConfig(dpi=36), report=report))
    citations = [(Path(item.source).name, item.locator) for item in items]
    assert citations == [
        ("a_report.pdf", "page=1"),
        ("a_report.pdf", "page=2"),
        ("a_report.pdf", "page=3"),
        ("a_report.pdf", "page=4"),
        ("c_talk.mp4", "frame=0"),
        ("c_talk.mp4", "frame=10"),
        ("c_talk.mp4", "frame=20"),
        ("p1.jpg", "whole"),
        ("p2.gif", "frame=0"),
        ("p2.gif", "frame=1"),
    ]
    failures = {Path(f.source).name: f for f in report.failed}
    assert set(failures) == set(EXPECTED_FAILURES)
    assert [Path(f.source).name for f in report.unsupported] == ["h_notes.py"]  # not a failure
    for name, error_type in EXPECTED_FAILURES.items():
        assert failures[name].error_type == error_type.__name__
        assert failures[name].reason
        assert any(
            name in record.getMessage() and failures[name].reason in record.getMessage()
            for record in caplog.records
        ), name
    assert "password" in failures["b_secret.pdf"].reason
    for item in items:
        image = item.load_image()
        assert image.mode == "RGB" and image.size == (item.width, item.height)


def test_items_carry_source_hash_modality_and_locator(mixed_folder: Path) -> None:
    items = list(iter_items([mixed_folder / "photos", mixed_folder / "c_talk.mp4"]))
    digest = hashlib.sha256((mixed_folder / "photos" / "p1.jpg").read_bytes()).hexdigest()
    assert items[0].source_sha256 == digest
    assert [item.modality for item in items] == [Modality.IMAGE] * 3 + [Modality.VIDEO_FRAME] * 3
    assert items[3].timestamp_s == 0.0 and items[4].timestamp_s == 1.0
    assert len({item.id for item in items}) == len(items)


def test_strict_mode_raises_the_typed_error(mixed_folder: Path) -> None:
    with pytest.raises(EncryptedPDFError, match=r"b_secret\.pdf"):
        list(iter_items([mixed_folder], strict=True))


def test_missing_inputs_are_reported_and_the_rest_continues(
    tmp_path: Path, sample_pdf: Path
) -> None:
    report = IndexReport()
    items = list(
        iter_items(
            [tmp_path / "gone.pdf", str(tmp_path / "*.png"), sample_pdf],
            IngestConfig(dpi=36),
            report=report,
        )
    )
    assert len(items) == 4
    assert [f.error_type for f in report.failed] == ["SourceNotFoundError"] * 2
    with pytest.raises(SourceNotFoundError):
        list(iter_items([tmp_path / "gone.pdf"], strict=True))


def test_unsupported_files_in_folders_are_skipped_unless_fail_unsupported(
    mixed_folder: Path,
) -> None:
    report = IndexReport()
    config = IngestConfig(dpi=36)
    list(iter_items([mixed_folder, mixed_folder / "h_notes.py"], config, report=report))
    notes = [f for f in report.failed if f.source.endswith("h_notes.py")]
    assert len(notes) == 1  # from the explicit path, not from the folder walk
    assert notes[0].error_type == UnsupportedTypeError.__name__
    assert [Path(f.source).name for f in report.unsupported] == ["h_notes.py"]
    strict = IndexReport()
    list(iter_items([mixed_folder], IngestConfig(dpi=36, fail_unsupported=True), report=strict))
    assert "h_notes.py" in {Path(f.source).name for f in strict.failed}
    assert not strict.unsupported


def test_accepts_a_single_path_and_discovered_sources(sample_pdf: Path) -> None:
    assert len(list(iter_items(str(sample_pdf), IngestConfig(dpi=36)))) == 4
    assert len(list(iter_items(discover([sample_pdf]), IngestConfig(dpi=36)))) == 4


def test_mid_file_failures_keep_the_items_already_yielded(tmp_path: Path) -> None:
    path = media.make_video(tmp_path / "stream.mp4", seconds=4, fps=10, scenes=4, faststart=True)
    media.truncate_file(path, keep=0.6)
    report = IndexReport()
    items = list(iter_items([path], IngestConfig(video_fps=1), report=report))
    assert [item.timestamp_s for item in items][:2] == [0.0, 1.0]
    assert [f.error_type for f in report.failed] == ["TruncatedFileError"]


def test_config_validation_and_secrets() -> None:
    with pytest.raises(ValidationError, match="video sampling needs"):
        IngestConfig(video_fps=None)
    with pytest.raises(ValidationError):
        IngestConfig(unknown_option=1)
    config = IngestConfig(pdf_password="hunter2")
    assert "hunter2" not in repr(config)
    assert "pdf_password" not in config.model_dump()


def test_errors_pickle_and_name_the_file() -> None:
    errors = [
        EmptyFileError("a.pdf"),
        EncryptedPDFError("b.pdf"),
        UnsupportedTypeError("c.txt", "unsupported file type: this is a plain-text file"),
    ]
    for error in errors:
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is type(error) and str(clone) == str(error)
        assert isinstance(clone, IngestError)
        assert str(clone).startswith(error.source + ": ")


def test_importing_stays_cheap() -> None:
    code = (
        "import sys, mmrag, mmrag.pipeline.ingest as ingest\n"
        "ingest.iter_items, ingest.discover, ingest.IngestConfig\n"
        "heavy = [m for m in ('pymupdf', 'fitz', 'av', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
