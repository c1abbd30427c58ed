"""Discovery: which files, in which order, and what each one is (by content)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mmrag.pipeline.ingest import SourceKind, SourceNotFoundError, detect_kind, discover
from mmrag.pipeline.ingest.documents import find_soffice
from mmrag.testing import media

pytestmark = pytest.mark.unit


def _names(sources, root: Path) -> list[str]:
    return [source.path.relative_to(root).as_posix() for source in sources]


@pytest.fixture
def tree(tmp_path: Path, sample_pdf: Path) -> Path:
    pdf = sample_pdf.read_bytes()
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden_dir").mkdir()
    for name in ("b.pdf", "sub/a.pdf", "sub/deeper/z.pdf", "page10.pdf", "page2.pdf"):
        (tmp_path / name).write_bytes(pdf)
    media.make_image(tmp_path / "sub" / "img.png")
    # Hidden, temporary and OS files: never taken from a directory walk.
    for name in (
        ".x.pdf",
        "~$doc.pdf",
        "x.pdf.part",
        "y.pdf.crdownload",
        "notes.pdf~",
        ".DS_Store",
        "Thumbs.db",
        ".hidden_dir/inside.pdf",
    ):
        (tmp_path / name).write_bytes(pdf)
    return tmp_path


def test_walks_directories_recursively_in_natural_order(tree: Path) -> None:
    names = _names(discover([tree]), tree)
    assert names == [
        "b.pdf",
        "page2.pdf",
        "page10.pdf",
        "sub/a.pdf",
        "sub/deeper/z.pdf",
        "sub/img.png",
    ]


def test_order_is_stable_and_follows_the_inputs(tree: Path) -> None:
    first = discover([tree / "sub", tree / "b.pdf"])
    again = discover([tree / "sub", tree / "b.pdf"])
    assert first == again
    assert _names(first, tree) == ["sub/a.pdf", "sub/deeper/z.pdf", "sub/img.png", "b.pdf"]


def test_hidden_and_temporary_files_are_skipped_but_explicit_ones_taken(tree: Path) -> None:
    walked = _names(discover([tree]), tree)
    for skipped in (
        ".x.pdf",
        "~$doc.pdf",
        "x.pdf.part",
        "y.pdf.crdownload",
        "notes.pdf~",
        ".DS_Store",
        "Thumbs.db",
        ".hidden_dir/inside.pdf",
    ):
        assert skipped not in walked
    assert _names(discover([tree / ".x.pdf"]), tree) == [".x.pdf"]


def test_globs_expand_recursively_and_skip_temp_files(tree: Path) -> None:
    names = _names(discover([str(tree / "**" / "*.pdf")]), tree)
    assert names == ["b.pdf", "page2.pdf", "page10.pdf", "sub/a.pdf", "sub/deeper/z.pdf"]
    assert _names(discover(str(tree / "sub" / "*.png")), tree) == ["sub/img.png"]


def test_missing_paths_and_empty_globs_raise_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"nope\.pdf"):
        discover([tmp_path / "nope.pdf"])
    with pytest.raises(SourceNotFoundError, match="matches no file"):
        discover([str(tmp_path / "*.pdf")])


def test_a_file_reached_twice_is_listed_once(tree: Path) -> None:
    names = _names(discover([tree / "b.pdf", tree, str(tree / "*.pdf")]), tree)
    assert names.count("b.pdf") == 1
    assert names[0] == "b.pdf"


def test_type_comes_from_content_not_extension(tmp_path: Path, sample_pdf: Path) -> None:
    disguised_pdf = tmp_path / "photo.jpg"
    disguised_pdf.write_bytes(sample_pdf.read_bytes())
    png_named_pdf = media.make_image(tmp_path / "scan.pdf", format="PNG")
    video = media.make_video(tmp_path / "clip.mp4", seconds=0.5, fps=4).rename(tmp_path / "clip")
    assert detect_kind(disguised_pdf) == (SourceKind.PDF, "pdf", "content")
    assert detect_kind(png_named_pdf) == (SourceKind.IMAGE, "png", "content")
    assert detect_kind(video)[0] is SourceKind.VIDEO


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".jpg", "jpeg"),
        (".png", "png"),
        (".gif", "gif"),
        (".webp", "webp"),
        (".tif", "tiff"),
        (".bmp", "bmp"),
    ],
)
def test_every_image_format_is_recognised(tmp_path: Path, suffix: str, fmt: str) -> None:
    path = media.make_image(tmp_path / f"x{suffix}")
    wrong_name = path.rename(tmp_path / "x.data")
    assert detect_kind(wrong_name) == (SourceKind.IMAGE, fmt, "content")


def test_unrecognised_content_falls_back_to_the_extension(tmp_path: Path) -> None:
    garbage = tmp_path / "broken.pdf"
    garbage.write_bytes(b"\x13\x37" * 500)
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n")
    code = tmp_path / "notes.py"
    code.write_text("print('just some code')\n")
    archive = tmp_path / "bundle.zip"
    slides = tmp_path / "slides.pptx"
    for path in (archive, slides):
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("ppt/slide1.xml", "<xml/>")
    audio = media.make_audio(tmp_path / "voice.wav", seconds=0.2)
    assert detect_kind(garbage) == (SourceKind.PDF, "pdf", "extension")
    assert detect_kind(text) == (SourceKind.DOCUMENT, "text", "extension")  # rendered to pages
    assert detect_kind(code) == (None, "text", "none")
    assert detect_kind(archive) == (None, "zip", "content")
    office = SourceKind.DOCUMENT if find_soffice() else None  # converted by LibreOffice
    assert detect_kind(slides) == (office, "pptx", "content")
    assert detect_kind(audio) == (SourceKind.VIDEO, "wav", "content")  # the reader says why


def test_sources_carry_size_and_empty_files_are_listed(tmp_path: Path) -> None:
    (tmp_path / "empty.pdf").write_bytes(b"")
    [source] = discover([tmp_path])
    assert source.size == 0
    assert source.kind is None
