"""Sample media built with the libraries themselves: PDFs (PyMuPDF), images (Pillow), video (PyAV).

Tests, benchmarks and the quickstart sample use these instead of downloading files. Everything is
deterministic (same arguments, same bytes where the encoder allows) and nothing heavy is imported
until a builder runs.

The images share one reference picture, :func:`reference_pattern`: four coloured quadrants
(red top-left, green top-right, blue bottom-left, yellow bottom-right), so a test can check that
orientation, colour conversion and frame order came out right by sampling quadrant colours.

Example:
    >>> import tempfile, pathlib
    >>> from mmrag.testing.media import make_image, make_pdf
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> make_pdf(folder / "doc.pdf", pages=2).name
    'doc.pdf'
    >>> make_image(folder / "photo.jpg", size=(64, 48), exif_orientation=6).name
    'photo.jpg'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "QUADRANT_COLORS",
    "SCENE_COLORS",
    "make_audio",
    "make_image",
    "make_pdf",
    "make_video",
    "reference_pattern",
    "text_frame",
    "truncate_file",
]

#: Quadrant colours of :func:`reference_pattern`: top-left, top-right, bottom-left, bottom-right.
QUADRANT_COLORS: tuple[tuple[int, int, int], ...] = (
    (220, 30, 30),
    (30, 200, 60),
    (40, 60, 220),
    (240, 220, 40),
)

#: Background colours of successive video scenes (far apart, so cuts are unmistakable).
SCENE_COLORS: tuple[tuple[int, int, int], ...] = (
    (200, 40, 40),
    (40, 160, 60),
    (40, 70, 200),
    (230, 200, 40),
    (150, 60, 170),
    (30, 170, 180),
)

_VOCABULARY = (
    "solar array output inverter capacity revenue margin quarter panel storage grid customer "
    "installation warranty efficiency module forecast region contract maintenance battery "
    "tariff household commercial pipeline growth cost supply chain shipment report audit"
)

# Where exif_transpose sends each orientation, and the transpose that undoes it (so that the
# stored pixels, once oriented, show the reference pattern upright).
_UNDO_ORIENTATION = {2: 0, 3: 3, 4: 1, 5: 5, 6: 2, 7: 6, 8: 4}
# Image.Transpose values: FLIP_LEFT_RIGHT=0, FLIP_TOP_BOTTOM=1, ROTATE_90=2, ROTATE_180=3,
# ROTATE_270=4, TRANSPOSE=5, TRANSVERSE=6.


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def reference_pattern(size: tuple[int, int] = (64, 48), frame: int = 0) -> Image.Image:
    """An RGB picture of four coloured quadrants; ``frame`` rotates the colours (for animations).

    Example:
        >>> im = reference_pattern((4, 2))
        >>> im.getpixel((0, 0)), im.getpixel((3, 1))
        ((220, 30, 30), (240, 220, 40))
    """
    from PIL import Image, ImageDraw

    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    half_w, half_h = width // 2, height // 2
    boxes = [
        (0, 0, half_w - 1, half_h - 1),
        (half_w, 0, width - 1, half_h - 1),
        (0, half_h, half_w - 1, height - 1),
        (half_w, half_h, width - 1, height - 1),
    ]
    for quadrant, box in enumerate(boxes):
        draw.rectangle(box, fill=QUADRANT_COLORS[(quadrant + frame) % 4])
    return image


def _paragraph(rng: Any, sentences: int = 5) -> str:
    vocabulary = _VOCABULARY.split()
    out = []
    for _ in range(sentences):
        picks = rng.integers(0, len(vocabulary), int(rng.integers(8, 16)))
        words = [vocabulary[int(i)] for i in picks]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def _page_picture(page_number: int, width: int = 240, height: int = 160) -> bytes:
    """A small JPEG that differs on every page (a gradient with a page-dependent phase)."""
    import io

    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = page_number * 0.37
    red = 127 + 120 * np.sin(x / 23.0 + phase)
    green = 127 + 120 * np.cos(y / 17.0 + phase * 1.3)
    blue = 127 + 120 * np.sin((x + y) / 31.0 - phase)
    pixels = np.stack([red, green, blue], axis=-1).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def make_pdf(
    path: str | os.PathLike[str],
    pages: int = 3,
    *,
    with_text: bool = True,
    with_images: bool = True,
    labels: Sequence[Mapping[str, Any]] | None = None,
    password: str | None = None,
    page_size: tuple[float, float] = (612, 792),
    blank_pages: Iterable[int] = (),
    margin: float = 72,
    seed: int = 0,
) -> Path:
    """Write a PDF of ``pages`` pages with PyMuPDF; returns its path.

    Each page (unless listed in ``blank_pages``, 1-based, which stay empty) carries a heading
    ``Page N``, a few deterministic paragraphs (``with_text``) and a distinct JPEG picture
    (``with_images``), all inside ``margin`` points of white border. ``labels`` are PyMuPDF page
    label rules, e.g. ``[{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1}]``.
    ``password`` encrypts the file (AES-256) with that user password.

    Example:
        >>> import tempfile, pathlib, pymupdf
        >>> p = make_pdf(pathlib.Path(tempfile.mkdtemp()) / "a.pdf", pages=2)
        >>> pymupdf.open(p).page_count
        2
    """
    import numpy as np
    import pymupdf

    path = Path(path)
    width, height = page_size
    blank = set(blank_pages)
    rng = np.random.default_rng(seed)
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=width, height=height)
        if number in blank:
            continue
        top = margin
        text_bottom = height * 0.55 if with_images else height - margin
        if with_text:
            page.insert_text((margin, top + 18), f"Page {number}", fontsize=18)
            body = "\n\n".join(_paragraph(rng) for _ in range(3))
            page.insert_textbox(
                pymupdf.Rect(margin, top + 32, width - margin, text_bottom), body, fontsize=10
            )
        if with_images:
            image_top = text_bottom + 10 if with_text else top
            rect = pymupdf.Rect(margin, image_top, width - margin, height - margin)
            page.insert_image(rect, stream=_page_picture(number), keep_proportion=True)
        if not with_text and not with_images:
            page.draw_rect(pymupdf.Rect(margin, top, width - margin, top + 40), fill=(0, 0, 0))
    if labels:
        doc.set_page_labels(list(labels))
    save_args: dict[str, Any] = {"garbage": 3, "deflate": True}
    if password is not None:
        save_args.update(
            encryption=pymupdf.PDF_ENCRYPT_AES_256,
            user_pw=password,
            owner_pw=password + "-owner",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path, **save_args)
    doc.close()
    return path


def _to_mode(image: Image.Image, mode: str, transparency: bool) -> Image.Image:
    """Express the RGB reference picture in ``mode`` the way real files do."""
    import numpy as np
    from PIL import Image

    width, height = image.size
    if mode in ("RGB", "L", "1", "CMYK", "YCbCr"):
        return image.convert(mode)
    if mode in ("RGBA", "LA"):
        alpha = Image.new("L", image.size, 255)
        alpha.paste(0, (width // 2, 0, width, height))  # right half fully transparent
        converted = image.convert(mode[:-1])
        converted.putalpha(alpha)
        return converted
    if mode == "P":
        palette = image.quantize(colors=16, method=Image.Quantize.MEDIANCUT)
        if transparency:
            palette.info["transparency"] = palette.getpixel((width - 1, height - 1))
        return palette
    if mode in ("I;16", "I"):
        # A horizontal ramp over the whole 16-bit range: dark left, bright right.
        ramp = np.linspace(0, 65535, width, dtype=np.float64)
        values = np.tile(ramp, (height, 1)).round().astype(np.uint16)
        return Image.fromarray(values if mode == "I;16" else values.astype(np.int32))
    raise ValueError(f"make_image cannot produce mode {mode!r}")


def make_image(
    path: str | os.PathLike[str],
    *,
    mode: str = "RGB",
    size: tuple[int, int] = (64, 48),
    exif_orientation: int | None = None,
    frames: int = 1,
    transparency: bool = False,
    format: str | None = None,
    **save_args: Any,
) -> Path:
    """Write the :func:`reference_pattern` as an image file with Pillow; returns its path.

    ``size`` is the size the image *displays* at: with ``exif_orientation`` (2-8) the stored
    pixels are transformed so that applying the EXIF orientation shows the upright pattern, so
    orientations 5-8 store a ``(height, width)`` raster. ``mode`` is the stored mode (``RGB``,
    ``RGBA``, ``L``, ``LA``, ``P``, ``1``, ``CMYK``, ``I;16``, ``I``); ``RGBA``/``LA`` make the
    right half transparent, ``P`` with ``transparency`` makes the bottom-right colour
    transparent, ``I;16``/``I`` store a 0..65535 ramp. ``frames > 1`` writes an animated GIF /
    WebP or a multi-page TIFF whose frame ``k`` is ``reference_pattern(size, frame=k)``.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> p = make_image(pathlib.Path(tempfile.mkdtemp()) / "r.png", exif_orientation=6)
        >>> Image.open(p).size  # stored rotated; displays as 64 x 48
        (48, 64)
    """
    from PIL import Image

    path = Path(path)
    pictures = []
    for frame in range(frames):
        picture = reference_pattern(size, frame)
        if exif_orientation not in (None, 1):
            picture = picture.transpose(Image.Transpose(_UNDO_ORIENTATION[exif_orientation]))
        pictures.append(_to_mode(picture, mode, transparency))
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        save_args.setdefault("exif", exif.tobytes())
    if frames > 1:
        save_args.setdefault("save_all", True)
        save_args.setdefault("append_images", pictures[1:])
        if (format or path.suffix.lower().lstrip(".")) in ("gif", "webp"):
            save_args.setdefault("duration", 100)
            save_args.setdefault("loop", 0)
    if (format or path.suffix.lower()) in (".webp", "webp"):
        save_args.setdefault("lossless", True)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures[0].save(path, format=format, **save_args)
    return path


def text_frame(
    text: str,
    size: tuple[int, int] = (320, 180),
    *,
    background: tuple[int, int, int] = (255, 255, 255),
    color: tuple[int, int, int] = (0, 0, 0),
    font_size: int | None = None,
) -> Image.Image:
    """An RGB image with ``text`` (may contain newlines) centred in a large font."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    font = _font(font_size or max(10, size[1] // 8))
    box = draw.multiline_textbbox((0, 0), text, font=font, align="center")
    x = (size[0] - (box[2] - box[0])) / 2 - box[0]
    y = (size[1] - (box[3] - box[1])) / 2 - box[1]
    draw.multiline_text((x, y), text, fill=color, font=font, align="center")
    return image


def make_video(
    path: str | os.PathLike[str],
    *,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
    scenes: int | Sequence[str] = 1,
    codec: str = "mpeg4",
    gop_size: int | None = None,
    audio: bool = False,
    faststart: bool = False,
) -> Path:
    """Write a video with PyAV; returns its path.

    The video is split into equal-length scenes (``scenes`` as a count, or as the caption of
    each scene). Scene ``k`` has background :data:`SCENE_COLORS[k]` and its caption in large
    text, plus a small square that moves every frame (so frames within a scene differ a little
    and cuts between scenes differ a lot). Frame ``i`` has timestamp ``i / fps``. ``audio``
    adds a silent AAC track. ``faststart`` puts the MP4 index first (a streamable file, which
    stays partly decodable when truncated; by default the index comes last).

    Example:
        >>> import tempfile, pathlib, av
        >>> p = make_video(pathlib.Path(tempfile.mkdtemp()) / "v.mp4", seconds=1, fps=5)
        >>> av.open(str(p)).streams.video[0].frames
        5
    """
    import av
    import numpy as np
    from PIL import ImageDraw

    path = Path(path)
    if isinstance(scenes, int):
        captions = [f"Scene {k + 1}" for k in range(scenes)]
    else:
        captions = list(scenes)
    total = max(1, round(seconds * fps))
    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop_size is not None:
            stream.codec_context.gop_size = gop_size
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        frames_per_scene = total / len(captions)
        for index in range(total):
            scene = min(int(index / frames_per_scene), len(captions) - 1)
            background = SCENE_COLORS[scene % len(SCENE_COLORS)]
            light = sum(background) / 3 > 150
            ink = (20, 20, 20) if light else (255, 255, 255)
            image = text_frame(captions[scene], size, background=background, color=ink)
            step = index % 20
            x = int(4 + step * (width - 20) / 20)
            ImageDraw.Draw(image).rectangle((x, height - 14, x + 10, height - 4), fill=(0, 0, 0))
            frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            _write_silence(audio_stream, container, seconds)
    return path


def _write_silence(stream: Any, container: Any, seconds: float) -> None:
    import av
    import numpy as np

    rate = stream.codec_context.sample_rate
    samples = 1024
    channels = stream.codec_context.layout.nb_channels
    for block in range(int(seconds * rate / samples) + 1):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((channels, samples), np.float32),
            format="fltp",
            layout=stream.codec_context.layout.name,
        )
        frame.sample_rate = rate
        frame.pts = block * samples
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_audio(path: str | os.PathLike[str], *, seconds: float = 1.0) -> Path:
    """Write an audio-only file with PyAV (no video stream): AAC in .m4a/.mp4, PCM in .wav."""
    import av

    path = Path(path)
    codec = "pcm_s16le" if path.suffix.lower() == ".wav" else "aac"
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=16000)
        if codec == "aac":
            _write_silence(stream, container, seconds)
        else:
            import numpy as np

            frame = av.AudioFrame.from_ndarray(
                np.zeros(
                    (1, int(16000 * seconds) * stream.codec_context.layout.nb_channels), np.int16
                ),
                format="s16",
                layout=stream.codec_context.layout.name,
            )
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def truncate_file(path: str | os.PathLike[str], keep: float = 0.5) -> Path:
    """Cut ``path`` to the first ``keep`` fraction of its bytes (an interrupted download)."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
