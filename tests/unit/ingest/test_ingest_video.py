"""Video frames: uniform and scene-change sampling, caps, and bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from mmrag.pipeline.ingest import (
    CorruptFileError,
    IngestConfig,
    NoVideoStreamError,
    TruncatedFileError,
    iter_video_frames,
)
from mmrag.pipeline.ingest.video import VideoFrameLoader, _clockwise_rotation, frame_to_image
from mmrag.testing import media
from mmrag.testing.media import SCENE_COLORS
from mmrag.types import Modality

pytestmark = pytest.mark.unit


def background(image) -> tuple[int, int, int]:
    """The colour near the top-left corner (the scene's background)."""
    return tuple(int(v) for v in np.asarray(image)[2:8, 2:8].reshape(-1, 3).mean(axis=0))


def near(a, b, tolerance: int = 30) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def test_uniform_sampling_gives_frame_indexes_and_timestamps(scenes_video: Path) -> None:
    items = list(iter_video_frames(scenes_video, IngestConfig(video_fps=2)))
    assert [item.frame_index for item in items] == [0, 5, 10, 15, 20, 25]
    assert [item.timestamp_s for item in items] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    for item in items:
        assert item.modality is Modality.VIDEO_FRAME
        assert (item.width, item.height) == (160, 120)
        assert item.text is None and item.page is None
        assert item.details["sampled_by"] == "uniform"
        assert item.details["fps"] == 10
        assert item.load_image().size == (160, 120)
    assert items[3].citation().endswith("@ 0:01.5")


def test_scene_changes_are_found(scenes_video: Path) -> None:
    config = IngestConfig(video_fps=None, video_scene_threshold=0.15)
    items = list(iter_video_frames(scenes_video, config))
    assert [item.frame_index for item in items] == [0, 10, 20]
    assert [item.timestamp_s for item in items] == [0.0, 1.0, 2.0]
    assert all(item.details["sampled_by"] == "scene" for item in items)
    for scene, item in enumerate(items):
        assert near(background(item.load_image()), SCENE_COLORS[scene])


def test_uniform_and_scene_sampling_combine(scenes_video: Path) -> None:
    config = IngestConfig(video_fps=0.4, video_scene_threshold=0.15)
    items = list(iter_video_frames(scenes_video, config))
    assert [item.frame_index for item in items] == [0, 10, 20, 25]
    assert [item.details["sampled_by"] for item in items] == [
        "uniform+scene",
        "scene",
        "scene",
        "uniform",
    ]


def test_max_frames_spreads_uniform_samples_over_the_video(scenes_video: Path) -> None:
    items = list(
        iter_video_frames(scenes_video, IngestConfig(video_fps=10, max_frames_per_video=4))
    )
    assert len(items) == 4
    assert items[0].timestamp_s == 0.0 and items[-1].timestamp_s >= 2.0


def test_max_side_and_reloading_from_the_file(scenes_video: Path) -> None:
    eager = list(iter_video_frames(scenes_video, IngestConfig(video_fps=1, max_side=80)))
    lazy = list(iter_video_frames(scenes_video, IngestConfig(video_fps=1, max_side=80, prefetch=0)))
    assert [(i.width, i.height) for i in eager] == [(80, 60)] * 3
    assert all(isinstance(item.image_loader, VideoFrameLoader) for item in lazy)
    for a, b in zip(eager, lazy, strict=True):
        first = a.load_image()
        assert first.size == (80, 60)
        assert first.tobytes() == b.load_image().tobytes()  # seek + decode = same frame
        assert first.tobytes() == a.load_image().tobytes()


@pytest.mark.parametrize("name", ["voice.m4a", "voice.wav"])
def test_audio_only_files_have_no_video_stream(
    tmp_path: Path, ingest_media: Path, name: str
) -> None:
    path = ingest_media / name if name.endswith(".m4a") else media.make_audio(tmp_path / name)
    with pytest.raises(NoVideoStreamError) as caught:
        list(iter_video_frames(path))
    assert name in str(caught.value)
    assert "no video stream" in caught.value.reason and "audio" in caught.value.reason


def test_truncated_video_is_a_clear_error(tmp_path: Path, scenes_video: Path) -> None:
    cut = media.truncate_file(shutil.copy(scenes_video, tmp_path / "cut.mp4"), keep=0.5)
    with pytest.raises(TruncatedFileError, match=r"cut\.mp4: .*truncated"):
        list(iter_video_frames(cut))


def test_truncated_streamable_video_keeps_what_decodes(tmp_path: Path) -> None:
    path = media.make_video(tmp_path / "stream.mp4", seconds=5, fps=10, faststart=True)
    media.truncate_file(path, keep=0.5)
    taken: list[float | None] = []

    def consume() -> None:
        taken.extend(
            item.timestamp_s for item in iter_video_frames(path, IngestConfig(video_fps=2))
        )

    with pytest.raises(TruncatedFileError, match="stops at"):
        consume()
    assert taken[:2] == [0.0, 0.5]


def test_garbage_with_a_video_extension(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x01garbage" * 300)
    with pytest.raises(CorruptFileError, match=r"clip\.mp4: FFmpeg cannot open"):
        list(iter_video_frames(path))


def test_display_rotation_is_applied() -> None:
    class Rotated:  # what PyAV reports for a phone video shot in portrait
        rotation = -90

    assert _clockwise_rotation(Rotated()) == 90
    pixels = np.zeros((32, 64, 3), dtype=np.uint8)
    pixels[:, :32] = (255, 0, 0)  # left half red
    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    upright = frame_to_image(frame, (32, 64), rotation=90)  # display size: portrait
    assert upright.size == (32, 64)
    assert upright.getpixel((16, 8))[0] > 200  # turned clockwise: the red half is on top
    assert upright.getpixel((16, 56))[0] < 50
