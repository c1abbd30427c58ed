"""Fixtures for the ingest tests: sample media built once per session with the libraries."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.testing import media


@pytest.fixture(scope="session")
def ingest_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only folder of shared sample files (copy one before damaging it)."""
    root = tmp_path_factory.mktemp("ingest-media")
    media.make_pdf(root / "doc.pdf", pages=4)
    media.make_pdf(
        root / "labelled.pdf",
        pages=5,
        labels=[
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 2, "prefix": "A-", "style": "D", "firstpagenum": 1},
        ],
    )
    media.make_pdf(root / "with_blank.pdf", pages=3, blank_pages=[2])
    media.make_pdf(root / "secret.pdf", pages=2, password="s3cret")
    media.make_video(root / "scenes.mp4", seconds=3.0, fps=10, scenes=3, gop_size=5)
    media.make_audio(root / "voice.m4a", seconds=0.5)
    return root


@pytest.fixture
def sample_pdf(ingest_media: Path) -> Path:
    return ingest_media / "doc.pdf"


@pytest.fixture
def scenes_video(ingest_media: Path) -> Path:
    """3 s at 10 fps: scenes start at frames 0, 10 and 20 (t = 0, 1, 2 s)."""
    return ingest_media / "scenes.mp4"
