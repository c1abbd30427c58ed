"""Retrieved hits as LangChain ``Document`` s: the page text (or a stand-in naming the item),
metadata saying where it came from and how it scored, and optionally the page image (inline as
base64, or its URI)."""

from __future__ import annotations

import base64
import io
import logging
from typing import Any, Literal

from langchain_core.documents import Document

from mmrag.errors import ConfigError
from mmrag.store.assets import AssetNotFoundError
from mmrag.types import Hit, Item, Modality

__all__ = ["IMAGE_MODES", "ImageMode", "check_image_mode", "hit_to_document", "stand_in"]

logger = logging.getLogger(__name__)

#: How a Document carries its page image: not at all, inline as base64, or as the asset's URI.
ImageMode = Literal["none", "base64", "uri"]

IMAGE_MODES = ("none", "base64", "uri")
_MODALITY_LABELS = {
    Modality.PDF_PAGE: "PDF page",
    Modality.IMAGE: "Image",
    Modality.VIDEO_FRAME: "Video frame",
    Modality.TEXT: "Text",
}
_MIME = {"PNG": "image/png", "JPEG": "image/jpeg"}
_EXTENSION_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


def stand_in(modality: str, citation: str) -> str:
    """The ``page_content`` of an item with no text: what it is and where it is."""
    try:
        label = _MODALITY_LABELS[Modality(modality)]
    except ValueError:
        label = str(modality)
    return f"{label}: {citation}"


def check_image_mode(image: Any) -> None:
    """Raise :class:`ConfigError` unless ``image`` is one of :data:`IMAGE_MODES`."""
    if image not in IMAGE_MODES:
        raise ConfigError(f"image must be one of {', '.join(IMAGE_MODES)}; got {image!r}")


def _image_bytes(image: Any, format: str | None) -> tuple[bytes, str]:
    """Encode a stored page image in its own format (PNG unless it was stored as JPEG)."""
    fmt = format if format in _MIME else "PNG"
    buffer = io.BytesIO()
    if fmt == "JPEG":
        rgb = image if image.mode in ("RGB", "L") else image.convert("RGB")
        rgb.save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue(), _MIME[fmt]


def hit_to_document(
    hit: Hit,
    *,
    assets: Any = None,
    image: ImageMode = "none",
    include_stage_scores: bool = True,
) -> Document:
    """One retrieved :class:`~mmrag.types.Hit` as a LangChain ``Document``.

    ``assets`` (an :class:`~mmrag.store.assets.AssetStore`) is needed for ``image="base64"``
    (the stored page image, PNG or JPEG, base64-encoded in ``image_base64``) and ``image="uri"``
    (its URL in ``image_uri``); both set ``image_mime``. A hit whose image is not stored gets
    neither key (and a warning in the log). The item's own fields (its user metadata) are
    in ``user_metadata`` and, where they do not clash with the keys above, flat as well
    (``doc.metadata["dept"]``). A hit with region citations has them in ``regions``
    (``[{x0, y0, x1, y1, score}]``, PDF points for pages, pixels for images and frames).

    Example:
        >>> from mmrag.types import Hit, Item
        >>> item = Item(source="a.pdf", source_sha256="ab" * 32, modality="pdf_page", page=2,
        ...             text="Revenue grew 12%.")
        >>> doc = hit_to_document(Hit(id=item.id, score=0.8, item=item))
        >>> doc.page_content, doc.metadata["citation"], doc.metadata["page"]
        ('Revenue grew 12%.', 'a.pdf p.2', 2)
    """
    check_image_mode(image)
    item: Item = hit.item
    citation = hit.citation()
    text = (item.text or "").strip()
    metadata: dict[str, Any] = {
        "id": hit.id,
        "source": item.source,
        "modality": item.modality.value,
        "page": item.page,
        "page_label": item.page_label,
        "frame_index": item.frame_index,
        "timestamp_s": item.timestamp_s,
        "width": item.width,
        "height": item.height,
        "citation": citation,
        "score": float(hit.score),
    }
    if include_stage_scores:
        metadata["stage_scores"] = {k: float(v) for k, v in hit.stage_scores.items()}
    if hit.regions:  # the page boxes that carry the match: PDF points / image pixels
        metadata["regions"] = [region.to_dict() for region in hit.regions]
    if item.metadata:  # the user's own fields: flat (mmrag's keys win) and as one dict
        fields = dict(item.metadata)
        metadata["user_metadata"] = fields
        metadata.update({k: v for k, v in fields.items() if k not in metadata})
    if image != "none":
        if assets is None:
            raise ConfigError(f"image={image!r} needs the asset store (pass assets=...)")
        metadata.update(_image_metadata(hit.id, citation, assets, image))
    return Document(
        id=hit.id,
        page_content=text or stand_in(item.modality.value, citation),
        metadata=metadata,
    )


def _image_metadata(item_id: str, citation: str, assets: Any, image: ImageMode) -> dict[str, str]:
    if image == "uri":
        if not assets.exists(item_id):
            logger.warning("no page image stored for %s (item %s)", citation, item_id)
            return {}
        url = str(assets.url(item_id))
        extension = url.rsplit(".", 1)[-1].lower()
        return {"image_uri": url, "image_mime": _EXTENSION_MIME.get(extension, "image/png")}
    try:
        stored = assets.get(item_id)
    except AssetNotFoundError:
        logger.warning("no page image stored for %s (item %s)", citation, item_id)
        return {}
    data, mime = _image_bytes(stored, getattr(stored, "format", None))
    return {"image_base64": base64.b64encode(data).decode("ascii"), "image_mime": mime}
