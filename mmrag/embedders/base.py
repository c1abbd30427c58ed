"""The embedder contract every family implements.

An embedder turns Items (pages, images, frames) and queries (text, an image, or both) into
:class:`~mmrag.types.Embedding` values. ``kind`` says whether they are single vectors or
multi-vectors; ``id`` names the model's weights (by content for a local folder, by commit for a
Hugging Face id; :mod:`mmrag.embedders.identity`) and the settings, and is recorded by every index
built with it (opening an index with another embedder is an error, never silent garbage).

Example:
    >>> from mmrag.embedders.base import Query
    >>> Query.coerce("what grew in 2024?").text
    'what grew in 2024?'
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from mmrag.hf import HFComponent

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.embedders.families.spec import FamilySpec
    from mmrag.types import Embedding, Item

__all__ = ["Embedder", "ModelEmbedder", "Query", "QueryLike", "prefetch"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Query:
    """A query: text, an image, or both.

    Example:
        >>> from mmrag.embedders.base import Query
        >>> Query(text="revenue chart").has_image
        False
    """

    text: str | None = None
    image: Image.Image | None = None

    def __post_init__(self) -> None:
        if self.text is None and self.image is None:
            raise ValueError("a query needs text, an image, or both")

    @property
    def has_image(self) -> bool:
        """True when the query carries an image."""
        return self.image is not None

    @classmethod
    def coerce(cls, value: QueryLike) -> Query:
        """Accept a ``Query``, a string, or a PIL image."""
        if isinstance(value, Query):
            return value
        if isinstance(value, str):
            return cls(text=value)
        if hasattr(value, "convert") and hasattr(value, "size"):  # a PIL image
            return cls(image=value)
        raise TypeError(f"a query is text, a PIL image or a Query; got {type(value).__name__}")


QueryLike = Any  # str | PIL.Image.Image | Query (kept loose so PIL is not imported here)


@runtime_checkable
class Embedder(Protocol):
    """What every embedder provides (see DESIGN.md, "Embedders")."""

    @property
    def id(self) -> str:
        """Model weights + settings; recorded by indexes built with this embedder."""
        ...

    @property
    def kind(self) -> Literal["single", "multi"]:
        """``single``: one vector per item; ``multi``: one vector per token/patch."""
        ...

    @property
    def dim(self) -> int:
        """The dimension of each vector."""
        ...

    def embed_documents(self, items: Iterable[Item]) -> list[Embedding]:
        """Embed pages / images / frames, in order."""
        ...

    def embed_queries(self, queries: Sequence[QueryLike]) -> list[Embedding]:
        """Embed queries (text, image or both), in order."""
        ...


def prefetch(inputs: Iterable[T], load: Callable[[T], R], ahead: int) -> Iterator[R]:
    """``load(x)`` for each input, in order, computed in one background thread up to ``ahead``
    inputs before they are consumed (bounded memory). An error is raised at its input's turn.

    The producer thread both advances ``inputs`` and calls ``load``, so a source that is not
    thread-safe (an ingest stream rendering PDF pages with PyMuPDF) is only ever used from one
    thread; the consumer only receives results.

    Example:
        >>> from mmrag.embedders.base import prefetch
        >>> list(prefetch(range(5), lambda x: x * x, ahead=2))
        [0, 1, 4, 9, 16]
    """
    import queue
    import threading

    if ahead < 1:
        raise ValueError(f"ahead must be >= 1, got {ahead}")
    results: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=ahead)
    stop = threading.Event()
    done = (True, _END)

    def put(entry: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                results.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for value in inputs:
                try:
                    entry: tuple[bool, Any] = (True, load(value))
                except BaseException as error:  # re-raised in the consumer, at its turn
                    entry = (False, error)
                if not put(entry) or not entry[0]:
                    return
        except BaseException as error:  # the input iterator itself failed
            put((False, error))
            return
        put(done)

    thread = threading.Thread(target=produce, name="mmrag-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = results.get()
            if value is _END:
                return
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        thread.join()


_END = object()


class ModelEmbedder(HFComponent):
    """Shared machinery of the model-backed embedders (one subclass per family).

    Constructors are cheap and take plain, serialisable parameters; the model loads on first use
    (or an explicit :meth:`load`). A family's class sets ``spec`` to its
    :class:`~mmrag.embedders.families.spec.FamilySpec`, which gives it ``family`` and ``kind``.
    Subclasses implement ``_load()``, ``_embed_images(images)`` and
    ``_embed_queries(queries)``, and may add settings to :meth:`id_settings`.

    Example:
        >>> from mmrag.embedders.colpali import ColQwen2Embedder   # doctest: +SKIP
        >>> embedder = ColQwen2Embedder("vidore/colqwen2-v1.0-hf", device="auto")  # doctest: +SKIP
        >>> embedder.to_dict()["type"]                             # doctest: +SKIP
        'colqwen2'
    """

    #: The family's single definition (:mod:`mmrag.embedders.families`); a subclass that sets
    #: it gets ``family`` and ``kind`` from it.
    spec: ClassVar[FamilySpec | None] = None
    family: str = ""
    kind: Literal["single", "multi"] = "single"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("spec")
        if spec is not None:
            cls.family = spec.name
            cls.kind = spec.kind

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        trust_remote_code: bool = False,
        local_files_only: bool | None = None,
    ) -> None:
        super().__init__(
            model,
            revision=revision,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            local_files_only=local_files_only,
        )
        self.batch_size = batch_size
        self._batcher: Any = None
        self._fingerprint: str | None = None

    # -- identity and serialisation ----------------------------------------------------------------

    def init_parameters(self) -> dict[str, Any]:
        """The constructor arguments, for ``{type, init_parameters}`` serialisation."""
        return {**super().init_parameters(), "batch_size": self.batch_size}

    @property
    def type_name(self) -> str:  # type: ignore[override]
        """The registry name: the family."""
        return self.family

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEmbedder:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data.get("init_parameters", {}))

    def id_settings(self) -> dict[str, Any]:
        """Settings that change the vectors (prompts, image budgets …); part of :attr:`id`."""
        return {}

    def model_fingerprint(self) -> str:
        """The model part of :attr:`id`, computed once per instance and without loading the model.

        ``local@<16 hex>`` for a local folder (its content: moving or copying it keeps the id),
        ``org/name@<40-hex commit>`` for a Hugging Face id (the commit the weights load from);
        see :mod:`mmrag.embedders.identity`.

        Example:
            >>> from mmrag.embedders.colpali import ColPaliEmbedder
            >>> ColPaliEmbedder("org/name", revision="c" * 40).model_fingerprint()[-8:]
            'cccccccc'
        """
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> str:
        from mmrag.embedders.identity import model_fingerprint

        return model_fingerprint(self.model, self.revision, local_files_only=self.local_files_only)

    def _load_revision(self) -> str | None:
        """The revision to load ``self.model`` at: the commit :attr:`id` names for a Hub id."""
        from mmrag.embedders.identity import commit_of, is_local_model

        if is_local_model(self.model):
            return self.revision
        return commit_of(self.model_fingerprint()) or self.revision

    @property
    def id(self) -> str:
        """``family:fingerprint`` (:meth:`model_fingerprint`) plus a short hash of
        :meth:`id_settings` when there are any. Never loads the model.

        Example:
            >>> from mmrag.embedders.colpali import ColPaliEmbedder
            >>> ColPaliEmbedder("org/name", revision="0" * 40, document_tokens="visual").id
            'colpali:org/name@0000000000000000000000000000000000000000'
        """
        import hashlib
        import json

        base = f"{self.family}:{self.model_fingerprint()}"
        settings = self.id_settings()
        if not settings:
            return base
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return f"{base}#{digest}"

    # -- loading ----------------------------------------------------------------------------------

    def load(self) -> ModelEmbedder:
        """Load the model and processor now (otherwise this happens on first use).

        Weights that can be had neither locally, nor from the cache, nor from the Hub raise
        :class:`~mmrag.errors.ModelNotAvailableError` at once (no retry loop)."""
        if not self.is_loaded:
            from mmrag.embedders.checkpoint import loading
            from mmrag.embedders.identity import commit_of

            fingerprint = self.model_fingerprint()  # a Hub id pins its commit here
            commit = commit_of(fingerprint)
            repo = fingerprint.rpartition("@")[0].removeprefix("hf-hub:") if commit else self.model
            with loading(
                repo, commit, what=f"the {self.family} embedder model", check=bool(commit)
            ):
                super().load()
        return self

    def _from_pretrained_kwargs(self) -> dict[str, Any]:
        return self._hub_kwargs(self._load_revision())

    # -- embedding --------------------------------------------------------------------------------

    @abstractmethod
    def _embed_images(self, images: Sequence[Image.Image]) -> list[Embedding]:
        """One batch of document images → one Embedding each (called under inference_mode)."""

    @abstractmethod
    def _embed_queries(self, queries: Sequence[Query]) -> list[Embedding]:
        """One batch of queries → one Embedding each (called under inference_mode)."""

    def _run(self, fn: Any, inputs: Iterable[Any]) -> Iterator[Embedding]:
        import torch

        from mmrag.embedders.batching import AdaptiveBatcher

        self.load()
        if self._batcher is None:
            self._batcher = AdaptiveBatcher(self.batch_size)

        def run_batch(batch: Sequence[Any]) -> list[Embedding]:
            with torch.inference_mode():
                return fn(batch)

        yield from self._batcher.iter_run(run_batch, inputs)

    def iter_embed_documents(self, items: Iterable[Item]) -> Iterator[Embedding]:
        """Embed items lazily, a batch at a time (each page image is loaded once, then freed).

        Page images are decoded in a background thread up to two batches ahead, so decoding
        overlaps the model's forward pass instead of adding to it.
        """
        images = prefetch(items, lambda item: item.load_image(), ahead=2 * self.batch_size)
        return self._run(self._embed_images, images)

    def embed_documents(self, items: Iterable[Item]) -> list[Embedding]:
        """Embed pages / images / frames, in order."""
        return list(self.iter_embed_documents(items))

    def embed_images(self, images: Iterable[Image.Image]) -> list[Embedding]:
        """Embed PIL images as documents (same path as :meth:`embed_documents`)."""
        return list(self._run(self._embed_images, images))

    def embed_queries(self, queries: Sequence[QueryLike]) -> list[Embedding]:
        """Embed queries (text, image or both), in order."""
        return list(self._run(self._embed_queries, [Query.coerce(q) for q in queries]))
