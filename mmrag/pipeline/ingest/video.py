"""Video frames as Items, decoded with PyAV: uniform sampling at N fps and/or at scene changes.

The stream is decoded once, front to back. A frame is kept when

- uniform sampling (``video_fps``) is due: the first frame at or after each multiple of
  ``1 / video_fps`` seconds; if that would exceed ``max_frames_per_video`` on a video of known
  duration, the rate is lowered so the frames spread over the whole video;
- or the scene changes (``video_scene_threshold``): the mean absolute difference between a small
  RGB thumbnail of the frame and of the previous frame, on a 0..1 scale, reaches the threshold
  (the first frame opens the first scene).

Each Item carries ``frame_index`` (0-based, in decoding order), ``timestamp_s`` (from the frame's
presentation time, relative to the stream start), the display size (rotation metadata applied),
and details ``fps``, ``duration_s``, ``codec``, ``sampled_by`` (with ``ingest.ocr`` on or auto:
``text`` read by Tesseract, details ``text_source = "ocr"`` and ``words`` in frame pixels).

**Pixels.** Decoding is sequential, so each kept frame's RGB image (already scaled to
``max_side``) is held by its Item until the first ``load_image()``, inside the bounded prefetch
window like PDF pages. After that, or once the window moved on, :class:`VideoFrameLoader` re-opens
the file, seeks to the keyframe before the frame's timestamp and decodes forward to it.

Example:
    >>> from mmrag.pipeline.ingest import IngestConfig, iter_video_frames
    >>> cfg = IngestConfig(video_fps=0.5, video_scene_threshold=0.2, max_side=512)
    >>> for item in iter_video_frames("talk.mp4", cfg):  # doctest: +SKIP
    ...     print(item.frame_index, item.timestamp_s, item.details["sampled_by"])
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np
from PIL import Image

from mmrag.imaging import fit_size
from mmrag.pipeline.ingest._files import FileStamp, SlottedLoader, check_file, file_sha256
from mmrag.pipeline.ingest._prefetch import PrefetchWindow
from mmrag.pipeline.ingest.errors import (
    CorruptFileError,
    NoVideoStreamError,
    TruncatedFileError,
)
from mmrag.pipeline.ingest.ocr import apply_ocr, require_ocr
from mmrag.pipeline.ingest.options import IngestConfig
from mmrag.types import Item, Modality

__all__ = ["VideoFrameLoader", "iter_video_frames"]

logger = logging.getLogger(__name__)

_THUMB = (32, 18)  # scene-change thumbnails: small enough to ignore noise and motion detail
_EPSILON = 1e-6
_TRUNCATION_SLACK = 0.9  # decoding ending before 90 % of the declared duration is a truncation

# Clockwise display rotation (degrees) -> the transpose that shows the frame upright.
_ROTATE = {
    90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_90,
}


def _iso_bmff_truncated(path: str) -> bool:
    """Whether an MP4 / MOV / M4A file's top-level boxes run past the end of the file."""
    size = os.path.getsize(path)
    offset = 0
    with open(path, "rb") as handle:
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            box_size = int.from_bytes(header[:4], "big")
            if header[4:8] == b"ftyp" and offset != 0:
                return False  # not a plain sequence of boxes: no opinion
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:  # the last box extends to the end of the file
                return False
            if box_size < 8:
                return False
            offset += box_size
    return offset > size


def _open(path: str) -> Any:
    try:
        return av.open(path)
    except av.error.FFmpegError as err:
        message = getattr(err, "strerror", None) or str(err)
        with open(path, "rb") as handle:
            is_mp4 = handle.read(12)[4:8] == b"ftyp"
        if "moov atom not found" in str(err) or (is_mp4 and _iso_bmff_truncated(path)):
            raise TruncatedFileError(
                path,
                "the video file is truncated: it ends inside its own data (the download or copy "
                f"was probably cut short), so FFmpeg cannot open it ({message})",
            ) from err
        raise CorruptFileError(path, f"FFmpeg cannot open the file as a video ({message})") from err


def _clockwise_rotation(frame: Any) -> int:
    """Degrees to turn the frame clockwise to show it upright (0, 90, 180 or 270)."""
    try:
        counterclockwise = round(float(frame.rotation or 0))
    except (AttributeError, TypeError, ValueError):
        return 0
    return (-counterclockwise) % 360 if (-counterclockwise) % 90 == 0 else 0


def _display_size(frame: Any, rotation: int) -> tuple[int, int]:
    return (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)


def frame_to_image(frame: Any, target: tuple[int, int], rotation: int) -> Image.Image:
    """An upright RGB PIL image of ``frame`` at the ``target`` (display) size."""
    stored = target[::-1] if rotation in (90, 270) else target
    if stored == (frame.width, frame.height):
        image = frame.to_image()
    else:
        image = frame.reformat(
            width=stored[0], height=stored[1], format="rgb24", interpolation="AREA"
        ).to_image()
    if rotation in _ROTATE:
        image = image.transpose(_ROTATE[rotation])
    return image


def _thumbnail(frame: Any) -> np.ndarray:
    small = frame.reformat(width=_THUMB[0], height=_THUMB[1], format="rgb24")
    return small.to_ndarray().astype(np.int16)  # (18, 32, 3)


class VideoFrameLoader(SlottedLoader):
    """Decodes one video frame from the file on demand (picklable): seek, then decode forward.

    ``pts`` is the frame's presentation timestamp in its stream's time base; without one the
    video is decoded from the start up to ``frame_index``.

    Example:
        >>> VideoFrameLoader("talk.mp4", stream=0, pts=30720, frame_index=30, size=(320, 180))
        VideoFrameLoader('talk.mp4', frame=30)
    """

    __slots__ = ("frame_index", "path", "pts", "rotation", "size", "stamp", "stream")

    def __init__(
        self,
        path: str | os.PathLike[str],
        stream: int,
        pts: int | None,
        frame_index: int,
        size: tuple[int, int],
        rotation: int = 0,
        stamp: FileStamp | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.stream = stream
        self.pts = pts
        self.frame_index = frame_index
        self.size = size
        self.rotation = rotation
        self.stamp = stamp

    def __repr__(self) -> str:
        return f"VideoFrameLoader({self.path!r}, frame={self.frame_index})"

    def __call__(self) -> Image.Image:
        self.verify()
        with _open(self.path) as container:
            stream = container.streams[self.stream]
            try:
                if self.pts is not None:
                    container.seek(self.pts, stream=stream, backward=True, any_frame=False)
                for index, frame in enumerate(container.decode(stream)):
                    if self.pts is not None:
                        if frame.pts is not None and frame.pts >= self.pts:
                            return frame_to_image(frame, self.size, self.rotation)
                    elif index == self.frame_index:
                        return frame_to_image(frame, self.size, self.rotation)
            except av.error.FFmpegError as err:
                raise CorruptFileError(
                    self.path, f"frame {self.frame_index} cannot be decoded ({err})"
                ) from err
        raise CorruptFileError(self.path, f"frame {self.frame_index} is no longer in the file")


def iter_video_frames(
    path: str | os.PathLike[str], config: IngestConfig | None = None
) -> Iterator[Item]:
    """Stream sampled frames of one video as Items (``modality=video_frame``), in time order.

    Raises typed errors: ``NoVideoStreamError`` (audio only, or no streams), ``CorruptFileError``
    (cannot be opened or decoded), ``TruncatedFileError`` (index missing; or the stream ends well
    before its declared duration, raised after the frames that could be decoded),
    ``EmptyFileError``, ``SourceNotFoundError``.

    Example:
        >>> from mmrag.pipeline.ingest import IngestConfig, iter_video_frames
        >>> items = list(iter_video_frames("talk.mp4", IngestConfig(video_fps=2)))  # doctest: +SKIP
        >>> [item.timestamp_s for item in items[:3]]  # doctest: +SKIP
        [0.0, 0.5, 1.0]
    """
    config = config or IngestConfig()
    yield from video_items(path, config, window=PrefetchWindow(config.prefetch))


def _describe_streams(container: Any) -> str:
    kinds = [stream.type for stream in container.streams]
    if not kinds:
        return "it has no streams at all"
    counts = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    return "it has " + ", ".join(f"{n} {kind} stream{'s' * (n > 1)}" for kind, n in counts.items())


def video_items(
    path: str | os.PathLike[str],
    config: IngestConfig,
    *,
    window: PrefetchWindow,
    sha256: str | None = None,
) -> Iterator[Item]:
    """:func:`iter_video_frames` with a caller-owned prefetch window."""
    source = os.fspath(path)
    check_file(source)
    stamp = FileStamp.of(source)
    digest = sha256 or file_sha256(source)
    with _open(source) as container:
        if not container.streams.video:
            raise NoVideoStreamError(
                source,
                f"there is no video stream to take frames from ({_describe_streams(container)})",
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from _sample(container, stream, source, digest, stamp, config, window)


def _sample(
    container: Any,
    stream: Any,
    source: str,
    digest: str,
    stamp: FileStamp,
    config: IngestConfig,
    window: PrefetchWindow,
) -> Iterator[Item]:
    time_base: Fraction = stream.time_base or Fraction(1, 1)
    start = stream.start_time or 0
    rate = float(stream.average_rate) if stream.average_rate else None
    duration = None
    if stream.duration is not None:
        duration = float(stream.duration * time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    codec = stream.codec_context.name if stream.codec_context else "unknown"

    interval = 1.0 / config.video_fps if config.video_fps else None
    limit = config.max_frames_per_video
    if interval is not None and duration and math.floor(duration / interval) + 1 > limit:
        interval = duration / limit
        logger.info(
            "%s: sampling every %.2f s instead of %.2f s to stay within max_frames_per_video=%d",
            source,
            interval,
            1.0 / config.video_fps,
            limit,  # type: ignore[operator]
        )
    threshold = config.video_scene_threshold
    ocr = require_ocr(config.ocr)  # a frame has no text layer: "auto" reads it like "on"
    next_uniform = 0  # the next multiple of `interval` due
    previous: np.ndarray | None = None
    taken = 0
    last_time = 0.0
    index = -1
    try:
        for index, frame in enumerate(container.decode(stream)):
            if frame.pts is not None:
                seconds = float((frame.pts - start) * time_base)
            else:
                seconds = index / rate if rate else float(index)
            last_time = seconds
            reasons = []
            if interval is not None and seconds + _EPSILON >= next_uniform * interval:
                reasons.append("uniform")
                next_uniform = math.floor(seconds / interval + _EPSILON) + 1
            score = None
            if threshold is not None:
                thumb = _thumbnail(frame)
                if previous is None:
                    reasons.append("scene")  # the first frame opens the first scene
                else:
                    score = float(np.abs(thumb - previous).mean()) / 255.0
                    if score >= threshold:
                        reasons.append("scene")
                previous = thumb
            if not reasons:
                continue
            if taken >= limit:
                logger.warning(
                    "%s: stopped at %.1f s: max_frames_per_video=%d frames taken",
                    source,
                    seconds,
                    limit,
                )
                return
            rotation = _clockwise_rotation(frame)
            width, height = _display_size(frame, rotation)
            target = fit_size(width, height, config.max_side)
            wants_image = window.keeps_images or ocr
            image = frame_to_image(frame, target, rotation) if wants_image else None
            metadata: dict[str, Any] = {
                "fps": rate,
                "duration_s": duration,
                "codec": codec,
                "sampled_by": "+".join(reasons),
            }
            if score is not None:
                metadata["scene_score"] = round(score, 4)
            text = None
            if ocr and image is not None:
                text = apply_ocr(image, metadata, config.ocr_languages)
                if not window.keeps_images:
                    image = None
            fallback = VideoFrameLoader(
                source, stream.index, frame.pts, index, target, rotation, stamp
            )
            taken += 1
            yield Item(
                source=source,
                source_sha256=digest,
                modality=Modality.VIDEO_FRAME,
                frame_index=index,
                timestamp_s=round(seconds, 6),
                width=target[0],
                height=target[1],
                text=text,
                details={k: v for k, v in metadata.items() if v is not None},
                image_loader=window.wrap(image, fallback),
            )
    except av.error.FFmpegError as err:
        raise CorruptFileError(
            source, f"decoding failed after {last_time:.1f} s ({codec} stream): {err}"
        ) from err
    if index < 0:
        raise CorruptFileError(source, f"the video stream ({codec}) has no decodable frames")
    frame_time = 1.0 / rate if rate else 0.0
    if duration and last_time + frame_time < _TRUNCATION_SLACK * duration:
        raise TruncatedFileError(
            source,
            f"the video stops at {last_time + frame_time:.1f} s although it declares "
            f"{duration:.1f} s: the file is truncated (frames up to there were taken)",
        )
