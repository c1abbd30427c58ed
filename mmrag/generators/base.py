"""The generator contract and what every generator shares: the grounded prompt and citations.

A generator gets the question and the hits chosen as context and returns an
:class:`~mmrag.types.Answer`. The context is laid out the same way for every backend: numbered
sources, each a header line (``[1] report.pdf p.3``), the page or frame image, and optionally
the page's text layer; then the question and the instruction to cite sources as ``[n]``.
:func:`context_parts` builds that as neutral parts; each backend turns them into its own message
format (transformers chat template, LangChain content blocks).

Citations: the hits the answer refers to with ``[n]`` markers, in order of first mention; when
the answer cites nothing, every hit that was shown (so a caller always sees the evidence).

Example:
    >>> from mmrag.generators.base import cited_hits
    >>> from mmrag.types import Hit, Item
    >>> items = [Item(source="r.pdf", source_sha256="ab" * 32, modality="pdf_page", page=p)
    ...          for p in (1, 2, 3)]
    >>> hits = [Hit(id=str(i), score=1.0, item=item) for i, item in enumerate(items)]
    >>> [h.citation() for h in cited_hits("Revenue grew 12% [3], see also [1][3].", hits)]
    ['r.pdf p.3', 'r.pdf p.1']
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.types import Answer, Hit

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "ContextPart",
    "Generator",
    "PromptSettings",
    "cited_hits",
    "context_parts",
]

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions about the user's documents using only the numbered sources below "
    "(page images, video frames and their text). Cite the sources that support each statement "
    "by number in square brackets, for example [1] or [2][3]. If the sources do not contain the "
    "answer, say that you cannot find it."
)
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


@runtime_checkable
class Generator(Protocol):
    """Answers a question from retrieved hits."""

    def generate(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        on_token: Callable[[str], None] | None = None,
    ) -> Answer:
        """An answer citing ``hits``; ``on_token`` receives the text as it is generated."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., "init_parameters": {...}}``."""
        ...


@dataclass(frozen=True)
class ContextPart:
    """One piece of the user turn: some text, or an image."""

    kind: Literal["text", "image"]
    text: str = ""
    image: Image.Image | None = None


@dataclass(frozen=True)
class PromptSettings:
    """How the context is shown to the model.

    ``max_images``: at most this many hits are shown (the best first); ``image_max_side``: page
    images are scaled down to this longest side; ``include_text``: add each page's text layer,
    cut at ``max_text_chars``.
    """

    max_images: int = 4
    image_max_side: int | None = 1024
    include_text: bool = True
    max_text_chars: int = 1500
    system_prompt: str | None = None

    @property
    def system(self) -> str:
        """The system prompt in use."""
        return self.system_prompt or DEFAULT_SYSTEM_PROMPT


def _load(hit: Hit, max_side: int | None) -> Image.Image | None:
    from mmrag.imaging import fit_size

    try:
        image = hit.item.load_image()
    except Exception as error:  # a missing page image: the text still goes in
        logger.warning("no image for %s in the answer context: %s", hit.citation(), error)
        return None
    image = image.convert("RGB") if image.mode != "RGB" else image
    size = fit_size(image.width, image.height, max_side)
    return image if size == image.size else image.resize(size)


def context_parts(
    question: str, hits: Sequence[Hit], settings: PromptSettings
) -> list[ContextPart]:
    """The user turn: numbered sources (header, image, text layer), then the question."""
    parts = [ContextPart("text", "Sources:\n")]
    for number, hit in enumerate(hits[: settings.max_images], start=1):
        parts.append(ContextPart("text", f"[{number}] {hit.citation()}\n"))
        image = _load(hit, settings.image_max_side)
        if image is not None:
            parts.append(ContextPart("image", image=image))
        text = (hit.item.text or "").strip()
        if settings.include_text and text:
            if len(text) > settings.max_text_chars:
                text = text[: settings.max_text_chars].rstrip() + " …"
            parts.append(ContextPart("text", f"\nText of [{number}]:\n{text}\n"))
        parts.append(ContextPart("text", "\n"))
    parts.append(
        ContextPart(
            "text",
            f"Question: {question}\nAnswer from the sources above and cite them like [1].",
        )
    )
    return parts


def cited_hits(text: str, hits: Sequence[Hit]) -> list[Hit]:
    """The hits ``text`` cites with ``[n]`` markers (1-based, first mention first); all ``hits``
    when it cites none of them."""
    order: list[int] = []
    for match in _MARKER.finditer(text):
        for number in match.group(1).split(","):
            index = int(number) - 1
            if 0 <= index < len(hits) and index not in order:
                order.append(index)
    return [hits[i] for i in order] if order else list(hits)
