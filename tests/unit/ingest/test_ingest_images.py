"""Images: orientation, colour modes, frames, limits, bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrag.pipeline.ingest import (
    CorruptFileError,
    ImageTooLargeError,
    IngestConfig,
    iter_image_frames,
    to_rgb,
)
from mmrag.pipeline.ingest.images import ImageFrameLoader
from mmrag.testing import media
from mmrag.testing.media import QUADRANT_COLORS
from mmrag.types import Modality

pytestmark = pytest.mark.unit


def quadrant_colors(image: Image.Image) -> list[tuple[int, ...]]:
    """Mean colour at the centre of each quadrant: TL, TR, BL, BR."""
    pixels = np.asarray(image, dtype=np.float64)
    h, w = pixels.shape[:2]
    centres = [
        (h // 4, w // 4),
        (h // 4, 3 * w // 4),
        (3 * h // 4, w // 4),
        (3 * h // 4, 3 * w // 4),
    ]
    out = []
    for y, x in centres:
        patch = pixels[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).mean(axis=0)
        out.append(tuple(round(float(v)) for v in patch))
    return out


def close(a, b, tolerance: int = 12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def one(path: Path, config: IngestConfig | None = None):
    [item] = iter_image_frames(path, config)
    return item


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    path = media.make_image(tmp_path / "o.png", size=(64, 48), exif_orientation=orientation)
    stored = Image.open(path).size
    assert stored == ((48, 64) if orientation >= 5 else (64, 48))
    item = one(path)
    assert (item.width, item.height) == (64, 48)  # the displayed size, sides swapped back
    image = item.load_image()
    assert image.size == (64, 48)
    assert quadrant_colors(image) == list(QUADRANT_COLORS)
    assert item.frame_index is None and item.modality is Modality.IMAGE


def test_rotated_jpeg_photo_comes_out_upright(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "phone.jpg", size=(80, 60), exif_orientation=6, quality=95)
    item = one(path)
    assert (item.width, item.height) == (80, 60)
    got = quadrant_colors(item.load_image())
    assert all(close(g, want) for g, want in zip(got, QUADRANT_COLORS, strict=True)), got


def test_cmyk_becomes_the_right_rgb(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "print.jpg", mode="CMYK", quality=95)
    item = one(path)
    assert item.details["mode"] == "CMYK"
    got = quadrant_colors(item.load_image())
    assert all(close(g, want) for g, want in zip(got, QUADRANT_COLORS, strict=True)), got


@pytest.mark.parametrize(
    ("name", "mode"), [("gray16.png", "I;16"), ("gray16.tif", "I;16"), ("gray32.tif", "I")]
)
def test_high_bit_depth_gray_is_scaled_not_clipped(tmp_path: Path, name: str, mode: str) -> None:
    path = media.make_image(tmp_path / name, mode=mode, size=(256, 8))
    image = one(path).load_image()
    row = np.asarray(image)[4, :, 0].astype(int)
    assert image.mode == "RGB"
    assert row[0] == 0 and row[-1] == 255
    assert 120 <= row[128] <= 135  # the middle of a 0..65535 ramp is mid-grey, not white
    assert np.all(np.diff(row) >= 0)  # still a ramp
    assert (row == 255).sum() <= 2


def test_palette_transparency_becomes_white(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "logo.png", mode="P", transparency=True)
    got = quadrant_colors(one(path).load_image())
    assert got[:3] == list(QUADRANT_COLORS[:3])
    assert got[3] == (255, 255, 255)  # the transparent colour


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_on_white(tmp_path: Path, mode: str) -> None:
    path = media.make_image(tmp_path / "overlay.png", mode=mode)
    got = quadrant_colors(one(path).load_image())
    assert got[1] == got[3] == (255, 255, 255)  # the right half is fully transparent
    if mode == "RGBA":
        assert got[0] == QUADRANT_COLORS[0] and got[2] == QUADRANT_COLORS[2]
    else:
        assert got[0][0] == got[0][1] == got[0][2] < 200  # grey, opaque


def test_gray_and_bilevel_images_become_rgb(tmp_path: Path) -> None:
    for mode in ("L", "1"):
        image = one(media.make_image(tmp_path / f"{mode}.png", mode=mode)).load_image()
        assert image.mode == "RGB"
        pixels = np.asarray(image)
        assert (pixels[..., 0] == pixels[..., 2]).all()


@pytest.mark.parametrize("name", ["anim.gif", "pages.tif", "anim.webp"])
def test_multi_frame_images_yield_their_frames(tmp_path: Path, name: str) -> None:
    path = media.make_image(tmp_path / name, frames=3)
    items = list(iter_image_frames(path))
    assert [item.frame_index for item in items] == [0, 1, 2]
    assert {item.details["frame_count"] for item in items} == {3}
    for frame, item in enumerate(items):
        expected = [QUADRANT_COLORS[(q + frame) % 4] for q in range(4)]
        got = quadrant_colors(item.load_image())
        assert all(close(g, e, 3) for g, e in zip(got, expected, strict=True)), (frame, got)
    assert [
        i.frame_index for i in iter_image_frames(path, IngestConfig(max_frames_per_image=2))
    ] == [0, 1]


def test_frames_reload_identically_from_the_file(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "anim.gif", frames=3)
    for item in iter_image_frames(path):
        assert item.load_image().tobytes() == item.load_image().tobytes()
    lazy = list(iter_image_frames(path, IngestConfig(prefetch=0)))
    assert all(isinstance(item.image_loader, ImageFrameLoader) for item in lazy)
    assert quadrant_colors(lazy[2].load_image())[0] == QUADRANT_COLORS[2]


def test_decompression_bomb_limit(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "huge.png", size=(64, 48))
    with pytest.raises(ImageTooLargeError) as caught:
        list(iter_image_frames(path, IngestConfig(max_image_pixels=1000)))
    assert "huge.png" in str(caught.value)
    assert "3,072 pixels" in caught.value.reason and "max_image_pixels" in caught.value.reason
    assert one(path, IngestConfig(max_image_pixels=3072)).width == 64


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(path, optimize=True)  # 400 Mpx in ~50 kB
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png"):
        list(iter_image_frames(path))


def test_max_side_downscales_keeping_the_aspect(tmp_path: Path) -> None:
    path = media.make_image(tmp_path / "big.jpg", size=(400, 300), exif_orientation=8)
    item = one(path, IngestConfig(max_side=100))
    assert (item.width, item.height) == (100, 75)
    image = item.load_image()
    assert image.size == (100, 75)
    got = quadrant_colors(image)
    assert all(close(g, want, 16) for g, want in zip(got, QUADRANT_COLORS, strict=True)), got
    small = one(media.make_image(tmp_path / "small.png", size=(40, 30)), IngestConfig(max_side=100))
    assert (small.width, small.height) == (40, 30)  # never upscaled


def test_broken_images_raise_typed_errors(tmp_path: Path) -> None:
    png = media.make_image(tmp_path / "photo.png", size=(300, 200))
    truncated = media.truncate_file(shutil.copy(png, tmp_path / "cut.png"), keep=0.5)
    garbage = tmp_path / "noise.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 100)
    with pytest.raises(CorruptFileError, match=r"cut\.png: .*truncated"):
        list(iter_image_frames(truncated))
    with pytest.raises(CorruptFileError, match=r"noise\.png: "):
        list(iter_image_frames(garbage))


def test_to_rgb_handles_float_images() -> None:
    unit = Image.fromarray(np.linspace(0, 1, 11, dtype=np.float32).reshape(1, 11))
    got = np.asarray(to_rgb(unit))[0, :, 0].astype(int)
    assert np.abs(got - np.arange(11) * 25.5).max() <= 0.5
    wide = Image.fromarray(np.array([[-5.0, 5.0]], dtype=np.float32))
    assert np.asarray(to_rgb(wide))[0, :, 0].tolist() == [0, 255]
