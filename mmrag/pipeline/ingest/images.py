"""Images as Items, decoded with Pillow: JPEG, PNG, WebP, TIFF, BMP, GIF (and more).

What comes out is always an upright 8-bit RGB image:

- the EXIF orientation is applied (a portrait photo stored sideways comes out portrait, and the
  Item's width/height are the oriented ones);
- CMYK goes through the embedded ICC profile when there is one (else Pillow's conversion);
- 16-bit and 32-bit integer images (``I;16``, ``I``) are scaled to 8 bits (``value / 257``),
  not clipped at 255; float images (``F``) are scaled from 0..1, or from their own range;
- palette images with transparency and images with alpha are composited on white;
- multi-page TIFFs and animated GIF / WebP yield one Item per frame (``frame_index`` 0-based, at
  most ``max_frames_per_image``); a single-frame image leaves ``frame_index`` as ``None``.

The pixel count is checked against ``IngestConfig.max_image_pixels`` from the header, before any
pixel is decoded (:class:`ImageTooLargeError`). ``max_side`` downscales (JPEGs decode directly at
a reduced scale when they can).

Example:
    >>> from mmrag.pipeline.ingest import IngestConfig, iter_image_frames
    >>> for item in iter_image_frames("photo.jpg", IngestConfig(max_side=1024)):  # doctest: +SKIP
    ...     image = item.load_image()  # RGB, item.width x item.height, upright
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mmrag.imaging import fit_size
from mmrag.pipeline.ingest._files import FileStamp, SlottedLoader, check_file, file_sha256
from mmrag.pipeline.ingest._prefetch import PrefetchWindow
from mmrag.pipeline.ingest.errors import (
    CorruptFileError,
    ImageTooLargeError,
    TruncatedFileError,
)
from mmrag.pipeline.ingest.ocr import apply_ocr, require_ocr
from mmrag.pipeline.ingest.options import IngestConfig
from mmrag.types import Item, Modality

__all__ = ["ImageFrameLoader", "fit_size", "iter_image_frames", "to_rgb"]

logger = logging.getLogger(__name__)

_ORIENTATION_TAG = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = {5, 6, 7, 8}
_WHITE = (255, 255, 255)


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    out = Image.new("RGB", rgba.size, _WHITE)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def _integer_to_rgb(image: Image.Image) -> Image.Image:
    values = np.asarray(image)
    sixteen_bit = values.size and values.min() >= 0 and values.max() <= 65535
    if image.mode.startswith("I;16") or sixteen_bit:
        # 16-bit data (I;16, or 16-bit PNG/TIFF that Pillow opened as I): 65535 -> 255.
        scaled = (values.astype(np.float32) / 257.0).round()
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values.astype(np.float64) - low) * (255.0 / (high - low or 1.0))
    return Image.fromarray(scaled.clip(0, 255).astype(np.uint8)).convert("RGB")


def _float_to_rgb(image: Image.Image) -> Image.Image:
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    else:
        scaled = (values - low) * (255.0 / (high - low or 1.0))
    return Image.fromarray(scaled.round().clip(0, 255).astype(np.uint8)).convert("RGB")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    profile = image.info.get("icc_profile")
    if profile:
        try:
            from PIL import ImageCms
        except ImportError:  # Pillow built without LittleCMS
            return image.convert("RGB")
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            converted = ImageCms.profileToProfile(
                image, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
        except (OSError, ImageCms.PyCMSError) as err:
            logger.debug("ICC conversion of a CMYK image failed (%s); using Pillow's", err)
        else:
            if converted is not None:
                return converted
    return image.convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow image to 8-bit RGB the way a viewer would show it on white.

    Example:
        >>> from PIL import Image
        >>> to_rgb(Image.new("I;16", (2, 1), 65535)).getpixel((0, 0))
        (255, 255, 255)
        >>> to_rgb(Image.new("RGBA", (1, 1), (0, 0, 0, 0))).getpixel((0, 0))
        (255, 255, 255)
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return _composite_on_white(image)
    if mode == "P":
        has_alpha = "transparency" in image.info or (
            image.palette is not None and image.palette.mode == "RGBA"
        )
        return _composite_on_white(image) if has_alpha else image.convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode.startswith("I"):
        return _integer_to_rgb(image)
    if mode == "F":
        return _float_to_rgb(image)
    try:
        return image.convert("RGB")
    except ValueError as err:
        raise ValueError(f"cannot convert an image in mode {mode} to RGB") from err


def _orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(_ORIENTATION_TAG, 1))
    except (ValueError, TypeError, SyntaxError, OSError):  # malformed EXIF: show as stored
        return 1
    return value if value in _TRANSPOSE else 1


def _decode(image: Image.Image, orientation: int, target: tuple[int, int]) -> Image.Image:
    """Decode the current frame to upright RGB of exactly ``target`` (oriented) size."""
    stored_target = target[::-1] if orientation in _SWAPS_SIDES else target
    if (
        image.format == "JPEG"
        and getattr(image, "n_frames", 1) == 1
        and (stored_target[0] < image.size[0])
    ):
        image.draft(image.mode, stored_target)  # DCT-domain downscale: decode less
    image.load()
    rgb = to_rgb(image)
    if rgb.size != stored_target:
        rgb = rgb.resize(stored_target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    if rgb is image:
        rgb = rgb.copy()  # never hand out the file-backed image itself
    return rgb


def _open(path: str, max_pixels: int) -> Image.Image:
    try:
        return Image.open(path)
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError(
            path,
            f"Pillow refuses to open it as a decompression bomb ({err}); if you trust it, raise "
            "ingest.max_image_pixels (e.g. max_image_pixels = 400000000 in [ingest]) and, in "
            "Python, PIL.Image.MAX_IMAGE_PIXELS",
        ) from err
    except UnidentifiedImageError as err:
        raise CorruptFileError(
            path, "Pillow cannot read the image data (corrupt or not really an image)"
        ) from err
    except OSError as err:
        raise CorruptFileError(path, f"cannot open the image ({err})") from err


def _check_pixels(path: str, size: tuple[int, int], limit: int, frame: int | None) -> None:
    width, height = size
    if width * height > limit:
        where = f"frame {frame} is" if frame is not None else "the image is"
        raise ImageTooLargeError(
            path,
            f"{where} {width}x{height} = {width * height:,} pixels, over the decompression-bomb "
            f"limit of {limit:,}; if you trust this file, raise ingest.max_image_pixels (in "
            "[ingest] of mmrag.toml, or MMRAG_INGEST__MAX_IMAGE_PIXELS)",
        )


def _decode_error(path: str, frame: int | None, err: Exception) -> CorruptFileError:
    where = f"frame {frame}" if frame is not None else "the image"
    if "truncated" in str(err).lower():
        return TruncatedFileError(
            path, f"{where} is truncated: the file ends before its image data does ({err})"
        )
    return CorruptFileError(path, f"{where} cannot be decoded ({err})")


class ImageFrameLoader(SlottedLoader):
    """Decodes one image (or one frame of it) from the file on demand (picklable).

    Example:
        >>> ImageFrameLoader("photo.jpg", frame=None, max_side=1024)
        ImageFrameLoader('photo.jpg', frame=None, max_side=1024)
    """

    __slots__ = ("frame", "max_pixels", "max_side", "path", "stamp")

    def __init__(
        self,
        path: str | os.PathLike[str],
        frame: int | None = None,
        max_side: int | None = None,
        max_pixels: int = 178_956_970,
        stamp: FileStamp | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.frame = frame
        self.max_side = max_side
        self.max_pixels = max_pixels
        self.stamp = stamp

    def __repr__(self) -> str:
        return f"ImageFrameLoader({self.path!r}, frame={self.frame}, max_side={self.max_side})"

    def __call__(self) -> Image.Image:
        self.verify()
        with _open(self.path, self.max_pixels) as image:
            try:
                if self.frame:
                    image.seek(self.frame)
                _check_pixels(self.path, image.size, self.max_pixels, self.frame)
                orientation = _orientation(image)
                width, height = image.size
                if orientation in _SWAPS_SIDES:
                    width, height = height, width
                return _decode(image, orientation, fit_size(width, height, self.max_side))
            except (OSError, EOFError, ValueError, SyntaxError) as err:
                raise _decode_error(self.path, self.frame, err) from err


def iter_image_frames(
    path: str | os.PathLike[str], config: IngestConfig | None = None
) -> Iterator[Item]:
    """Stream one image file as Items (``modality=image``): one, or one per frame.

    Each Item has ``width``/``height`` of the upright, ``max_side``-bounded RGB image that
    ``load_image()`` returns, ``frame_index`` for frames of multi-frame files, and details
    ``format``, ``mode`` (as stored) and ``frame_count``. With ``ingest.ocr`` on or auto, the
    text Tesseract read is ``text`` and details add ``text_source = "ocr"`` and ``words``
    (boxes in pixels of the Item's image).

    Raises typed errors: ``EmptyFileError``, ``CorruptFileError`` / ``TruncatedFileError``
    (undecodable data), ``ImageTooLargeError`` (over ``max_image_pixels``),
    ``SourceNotFoundError``.

    Example:
        >>> from mmrag.pipeline.ingest import IngestConfig, iter_image_frames
        >>> [item.frame_index for item in iter_image_frames("anim.gif")]  # doctest: +SKIP
        [0, 1, 2]
    """
    config = config or IngestConfig()
    yield from image_items(path, config, window=PrefetchWindow(config.prefetch))


def image_items(
    path: str | os.PathLike[str],
    config: IngestConfig,
    *,
    window: PrefetchWindow,
    sha256: str | None = None,
) -> Iterator[Item]:
    """:func:`iter_image_frames` with a caller-owned prefetch window."""
    source = os.fspath(path)
    check_file(source)
    stamp = FileStamp.of(source)
    digest = sha256 or file_sha256(source)
    limit = config.max_image_pixels
    ocr = require_ocr(config.ocr)  # an image has no text layer: "auto" reads it like "on"
    with _open(source, limit) as image:
        frame_count = int(getattr(image, "n_frames", 1) or 1)
        fmt, stored_mode = image.format, image.mode
        if frame_count > config.max_frames_per_image:
            logger.info(
                "%s: taking the first %d of %d frames (max_frames_per_image)",
                source,
                config.max_frames_per_image,
                frame_count,
            )
        for frame in range(min(frame_count, config.max_frames_per_image)):
            frame_index = frame if frame_count > 1 else None
            try:
                if frame:
                    image.seek(frame)
                _check_pixels(source, image.size, limit, frame_index)
                orientation = _orientation(image)
                width, height = image.size
                if orientation in _SWAPS_SIDES:
                    width, height = height, width
                target = fit_size(width, height, config.max_side)
                wants_pixels = window.keeps_images or ocr
                pixels = _decode(image, orientation, target) if wants_pixels else None
            except (OSError, EOFError, ValueError, SyntaxError) as err:
                raise _decode_error(source, frame_index, err) from err
            metadata: dict[str, Any] = {"format": fmt, "mode": stored_mode}
            text = None
            if ocr and pixels is not None:
                text = apply_ocr(pixels, metadata, config.ocr_languages)
                if not window.keeps_images:
                    pixels = None
            if frame_count > 1:
                metadata["frame_count"] = frame_count
            fallback = ImageFrameLoader(source, frame_index, config.max_side, limit, stamp)
            yield Item(
                source=source,
                source_sha256=digest,
                modality=Modality.IMAGE,
                frame_index=frame_index,
                width=target[0],
                height=target[1],
                text=text,
                details=metadata,
                image_loader=window.wrap(pixels, fallback),
            )
