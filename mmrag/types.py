"""The typed values that flow between stages: Item, Embedding, Hit, Answer, IndexReport.

Every arrow in the data flow of DESIGN.md carries one of these. They are frozen dataclasses with
no heavy imports (NumPy only), so ``import mmrag`` stays fast.

Example:
    >>> from mmrag.types import Item, Modality
    >>> page = Item(source="report.pdf", source_sha256="ab" * 32,
    ...             modality=Modality.PDF_PAGE, page=3)
    >>> page.locator
    'page=3'
    >>> page.point_id("colqwen2@v1") == page.point_id("colqwen2@v1")
    True
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mmrag.fields import check_metadata, parse_assignments, parse_value
from mmrag.ids import ITEM_NAMESPACE, canonical_source, content_id, item_id

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "ITEM_NAMESPACE",
    "Answer",
    "Embedding",
    "Failure",
    "Hit",
    "IndexReport",
    "Item",
    "Modality",
    "Region",
    "canonical_source",
    "check_metadata",
    "content_id",
    "item_id",
    "parse_assignments",
    "parse_value",
]


class Modality(str, Enum):
    """What kind of visual unit an :class:`Item` is."""

    PDF_PAGE = "pdf_page"
    IMAGE = "image"
    VIDEO_FRAME = "video_frame"
    TEXT = "text"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Item:
    """One visual unit of a source: a PDF page, an image (or one frame of it), a video frame.

    ``page`` is 1-based, as PDF viewers show it; ``frame_index`` is 0-based. The pixels are not
    held: ``image_loader`` renders or decodes them on demand (:meth:`load_image`), so a stream of
    Items from a 2,000-page PDF never keeps the pages in memory.

    ``source`` is canonical (:func:`canonical_source`) when the item comes from ingest.
    ``metadata`` holds the user's own fields (department, tags, a date …: filterable, see
    :class:`~mmrag.store.records.SearchFilter`); ``details`` what the reader found (page count,
    render DPI, PDF title, video fps …); ``tenant`` the owner on a multi-tenant server.

    Example:
        >>> from mmrag.types import Item, Modality
        >>> frame = Item(source="talk.mp4", source_sha256="cd" * 32,
        ...              modality=Modality.VIDEO_FRAME, frame_index=30, timestamp_s=12.5)
        >>> frame.citation()
        'talk.mp4 @ 0:12.5'
    """

    source: str
    source_sha256: str
    modality: Modality
    page: int | None = None
    page_label: str | None = None
    frame_index: int | None = None
    timestamp_s: float | None = None
    width: int | None = None
    height: int | None = None
    text: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    embedder_id: str = ""
    image_loader: Callable[[], Image.Image] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.modality, Modality):
            object.__setattr__(self, "modality", Modality(self.modality))
        if self.page is not None and self.page < 1:
            raise ValueError(f"{self.source}: page numbers are 1-based, got {self.page}")
        if self.frame_index is not None and self.frame_index < 0:
            raise ValueError(f"{self.source}: frame_index must be >= 0, got {self.frame_index}")

    @property
    def locator(self) -> str:
        """Where in the source this item is, e.g. ``page=3`` or ``frame=30``."""
        parts = []
        if self.page is not None:
            parts.append(f"page={self.page}")
        if self.frame_index is not None:
            parts.append(f"frame={self.frame_index}")
        return ";".join(parts) or "whole"

    @property
    def id(self) -> str:
        """The point id of this item for its ``embedder_id`` (see :func:`item_id`)."""
        return self.point_id(self.embedder_id)

    def point_id(self, embedder_id: str) -> str:
        """The point id this item gets in an index built by ``embedder_id``."""
        return item_id(self.source, self.source_sha256, self.locator, embedder_id, self.tenant)

    @property
    def content_id(self) -> str:
        """The id of this item's content (shared by byte-identical copies; see
        :func:`content_id`)."""
        return content_id(self.source_sha256, self.locator, self.embedder_id)

    def with_embedder(self, embedder_id: str) -> Item:
        """A copy of this item bound to ``embedder_id`` (so :attr:`id` is its point id)."""
        return dataclasses.replace(self, embedder_id=embedder_id)

    def load_image(self) -> Image.Image:
        """Render or decode the pixels now, as an RGB PIL image."""
        if self.image_loader is None:
            raise ValueError(f"{self.source} ({self.locator}): this item has no image to load")
        return self.image_loader()

    def citation(self) -> str:
        """A short human-readable reference: ``report.pdf p.3`` or ``talk.mp4 @ 0:12.5``."""
        if self.modality is Modality.VIDEO_FRAME and self.timestamp_s is not None:
            minutes, seconds = divmod(self.timestamp_s, 60.0)
            return f"{self.source} @ {int(minutes)}:{seconds:04.1f}"
        if self.page is not None:
            label = f" (label {self.page_label})" if self.page_label not in (None, "") else ""
            return f"{self.source} p.{self.page}{label}"
        if self.frame_index is not None:
            return f"{self.source} frame {self.frame_index}"
        return self.source

    def to_payload(self) -> dict[str, Any]:
        """The JSON-safe payload stored with the point (no pixels; ``None`` fields left out)."""
        payload: dict[str, Any] = {
            "source": self.source,
            "source_sha256": self.source_sha256,
            "modality": self.modality.value,
            "page": self.page,
            "page_label": self.page_label,
            "frame_index": self.frame_index,
            "timestamp_s": self.timestamp_s,
            "width": self.width,
            "height": self.height,
            "text": self.text,
            "embedder_id": self.embedder_id or None,
            "metadata": dict(self.metadata) if self.metadata else None,
            "details": dict(self.details) if self.details else None,
            "tenant": self.tenant,
            "content_id": self.content_id if self.embedder_id else None,
        }
        return {k: v for k, v in payload.items() if v is not None}

    @classmethod
    def from_payload(
        cls,
        payload: Mapping[str, Any],
        image_loader: Callable[[], Image.Image] | None = None,
    ) -> Item:
        """Rebuild an Item from a stored payload (the inverse of :meth:`to_payload`)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"image_loader"}
        kwargs = {k: v for k, v in payload.items() if k in names}
        kwargs.setdefault("metadata", {})
        kwargs.setdefault("details", {})
        kwargs["embedder_id"] = kwargs.get("embedder_id") or ""
        return cls(**kwargs, image_loader=image_loader)


@dataclass(frozen=True, eq=False)
class Embedding:
    """What an embedder returns for one item or query.

    Exactly one of ``dense`` (shape ``(d,)``) and ``multi`` (shape ``(n, d)``) is set. For
    multi-vector documents, ``mask`` marks the visual tokens among them (ColPali-family
    ``document_tokens``: every token is stored by default, or the visual ones only) and ``grid``
    is the patch grid ``(rows, cols)`` they lie on, row-major. ``pooled`` holds named
    training-free views (``global``, ``rows``, ``muvera`` …) computed from ``multi``.

    Example:
        >>> import numpy as np
        >>> from mmrag.types import Embedding
        >>> e = Embedding(multi=np.ones((6, 4), np.float32), grid=(2, 3))
        >>> e.kind, e.dim, e.num_vectors
        ('multi', 4, 6)
    """

    dense: np.ndarray | None = None
    multi: np.ndarray | None = None
    mask: np.ndarray | None = None
    grid: tuple[int, int] | None = None
    pooled: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.dense is None) == (self.multi is None):
            raise ValueError("an Embedding has exactly one of `dense` (d,) and `multi` (n, d)")
        allowed = (np.float32, np.float16)
        array = self.dense if self.dense is not None else self.multi
        assert array is not None
        if array.dtype not in allowed:
            raise ValueError(f"embedding dtype must be float32 or float16, got {array.dtype}")
        if self.dense is not None and self.dense.ndim != 1:
            raise ValueError(f"`dense` must have shape (d,), got {self.dense.shape}")
        if self.multi is not None:
            if self.multi.ndim != 2:
                raise ValueError(f"`multi` must have shape (n, d), got {self.multi.shape}")
            if self.mask is not None and self.mask.shape != (self.multi.shape[0],):
                raise ValueError(
                    f"`mask` must have shape ({self.multi.shape[0]},), got {self.mask.shape}"
                )
            if self.grid is not None:
                rows, cols = self.grid
                n = int(self.mask.sum()) if self.mask is not None else self.multi.shape[0]
                if rows * cols != n:
                    raise ValueError(
                        f"grid {rows}x{cols} does not match the {n} visual-token vectors"
                    )

    @property
    def kind(self) -> str:
        """``"single"`` for a dense vector, ``"multi"`` for a multi-vector embedding."""
        return "single" if self.dense is not None else "multi"

    @property
    def dim(self) -> int:
        """The dimension of each vector."""
        array = self.dense if self.dense is not None else self.multi
        assert array is not None
        return int(array.shape[-1])

    @property
    def num_vectors(self) -> int:
        """1 for a dense embedding, else the number of token vectors (before the mask)."""
        return 1 if self.multi is None else int(self.multi.shape[0])

    def visual(self) -> np.ndarray:
        """The visual-token rows of ``multi`` (on ``grid``): what pooling and regions use."""
        if self.multi is None:
            raise ValueError("a single-vector embedding has no token vectors")
        return self.multi if self.mask is None else self.multi[self.mask.astype(bool)]


@dataclass(frozen=True)
class Region:
    """A box on a page or frame that carries a hit's match, with its share of the score.

    Coordinates are the page's own: PDF points for PDF pages (origin top-left of the page, as
    PyMuPDF reports them), pixels of the item's image for images and video frames. ``score`` is
    the part of the hit's MaxSim score its query tokens found in the box (see
    :mod:`mmrag.pipeline.regions`). ``kind`` says what found it: ``"patches"`` (the embedder's
    patch vectors) or ``"words"`` (the page's words holding the query's terms, read by OCR or
    from a PDF's text layer; ``score`` is then the share of the query's terms in the box, see
    :mod:`mmrag.pipeline.word_regions`).

    Example:
        >>> from mmrag.types import Region
        >>> Region(x0=10, y0=20, x1=110, y1=60, score=3.5).to_dict()
        {'x0': 10.0, 'y0': 20.0, 'x1': 110.0, 'y1': 60.0, 'score': 3.5, 'kind': 'patches'}
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float
    kind: Literal["patches", "words"] = "patches"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        box: dict[str, Any] = {k: float(getattr(self, k)) for k in ("x0", "y0", "x1", "y1")}
        return {**box, "score": float(self.score), "kind": self.kind}


@dataclass(frozen=True)
class Hit:
    """One retrieved item with its final score and the score it had at each stage.

    Example:
        >>> from mmrag.types import Hit, Item, Modality
        >>> item = Item(source="a.pdf", source_sha256="ef" * 32, modality="pdf_page", page=2)
        >>> hit = Hit(id=item.id, score=0.8, item=item, stage_scores={"global": 0.5, "full": 0.8})
        >>> hit.citation()
        'a.pdf p.2'
    """

    id: str
    score: float
    item: Item
    stage_scores: Mapping[str, float] = field(default_factory=dict)
    #: the page regions that carry the match, best first (multi-vector embedders with a patch
    #: grid; empty when not computed)
    regions: tuple[Region, ...] = ()

    def citation(self) -> str:
        """The item's human-readable reference (page or video second)."""
        return self.item.citation()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view (for ``--json`` output and the HTTP API)."""
        return {
            "id": self.id,
            "score": float(self.score),
            "citation": self.citation(),
            "stage_scores": {k: float(v) for k, v in self.stage_scores.items()},
            "item": self.item.to_payload(),
            "regions": [region.to_dict() for region in self.regions],
        }


@dataclass(frozen=True)
class Answer:
    """A generated answer with the hits it cites, token usage and per-stage timings (seconds).

    ``sources`` are the hits the generator was shown, numbered from 1 in the prompt; the answer
    cites them as ``[n]``, and ``citations`` are the ones it cited (all sources when it cited
    none). ``notes`` say what the caller should know about how the answer was made: fewer pages
    shown than ``k`` asked for (the generator's ``max_images``), or nothing retrieved (then
    no answer is generated and ``text`` says so).

    Example:
        >>> from mmrag.types import Answer
        >>> Answer(text="42", timings={"retrieve": 0.01}).to_dict()["text"]
        '42'
    """

    text: str
    citations: list[Hit] = field(default_factory=list)
    usage: Mapping[str, int] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    #: the hits shown to the generator, in order: ``[n]`` in ``text`` is ``sources[n - 1]``
    sources: list[Hit] = field(default_factory=list)
    #: what the caller should know about how the answer was made (plain sentences)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "text": self.text,
            "citations": [hit.to_dict() for hit in self.citations],
            "sources": [hit.to_dict() for hit in self.sources],
            "usage": dict(self.usage),
            "timings": {k: float(v) for k, v in self.timings.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Failure:
    """One source that could not be indexed, and why."""

    source: str
    reason: str
    error_type: str = "Error"

    @classmethod
    def from_exception(cls, source: str, error: BaseException) -> Failure:
        """Record ``error`` for ``source`` (the reason is the error's own message)."""
        reason = getattr(error, "reason", None) or str(error) or type(error).__name__
        return cls(source=str(source), reason=str(reason), error_type=type(error).__name__)


@dataclass
class IndexReport:
    """The outcome of an indexing job: counts of items indexed / skipped, and every failure.

    ``unsupported`` lists the files found in folders or globs that are of a type mmrag does not
    read (a ``.zip``, a ``.docx`` where LibreOffice is not installed …): skipped and counted,
    not failures (``ingest.fail_unsupported`` makes them failures). Mutable while the job runs;
    :meth:`merge` combines the reports of parallel workers.

    Example:
        >>> from mmrag.types import IndexReport
        >>> report = IndexReport()
        >>> report.indexed += 3
        >>> report.add_failure("bad.pdf", ValueError("the file is empty"))
        >>> report.ok, report.summary()
        (False, '3 indexed, 0 skipped (already present), 1 failed')
    """

    indexed: int = 0
    skipped: int = 0
    failed: list[Failure] = field(default_factory=list)
    sources: int = 0
    duration_s: float = 0.0
    #: Of ``indexed``: items written with the stored vectors of identical content (a copy of
    #: a file at another path, or new metadata on a stored item), not embedded again.
    reused: int = 0
    #: Files skipped for their type (found in a folder or glob; not failures), with the reason.
    unsupported: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    def add_failure(self, source: str, error: BaseException) -> None:
        """Record that ``source`` failed with ``error``."""
        self.failed.append(Failure.from_exception(source, error))

    def merge(self, other: IndexReport) -> IndexReport:
        """Add ``other``'s counts and failures to this report; returns ``self``."""
        self.indexed += other.indexed
        self.skipped += other.skipped
        self.reused += other.reused
        self.failed.extend(other.failed)
        self.unsupported.extend(other.unsupported)
        self.sources += other.sources
        self.duration_s = max(self.duration_s, other.duration_s)
        return self

    def add_unsupported(self, source: str, error: BaseException) -> None:
        """Record that ``source`` was skipped for its type (``error`` says what it is)."""
        self.unsupported.append(Failure.from_exception(source, error))

    def summary(self, *, unsupported: bool = True) -> str:
        """One line: ``N indexed, N skipped (already present), N failed`` (then ``, N files
        skipped (unsupported type)`` when there are any, unless ``unsupported=False``)."""
        reused = f" ({self.reused} reused from identical content)" if self.reused else ""
        count = len(self.unsupported) if unsupported else 0
        other = f", {count} file{'s' * (count != 1)} skipped (unsupported type)" if count else ""
        return (
            f"{self.indexed} indexed{reused}, {self.skipped} skipped (already present), "
            f"{len(self.failed)} failed{other}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe view."""
        return {
            "indexed": self.indexed,
            "skipped": self.skipped,
            "reused": self.reused,
            "failed": [dataclasses.asdict(f) for f in self.failed],
            "unsupported": [dataclasses.asdict(f) for f in self.unsupported],
            "sources": self.sources,
            "duration_s": self.duration_s,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent)
