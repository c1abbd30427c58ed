"""The layout of a collection: one named vector per view of a page.

A collection holds one named vector per view of a page (see DESIGN.md, "Store"):

==========  =====================================================  ==========================
name        what                                                   index
==========  =====================================================  ==========================
``dense``   single-vector embedders                                HNSW
``global``  mean of the page's tokens, a 1-vector multivector      HNSW, MaxSim
``rows`` …  other pooled views (multivectors)                      HNSW, MaxSim
``muvera``  MUVERA fixed-dimensional encoding (plain vector, dot)  HNSW
``full``    every document token of the page (or merged, see       none (m=0), on disk
            ``pooling.full_pool_factor``)
``text``    BM25 sparse vector of the page's text layer            sparse, IDF
==========  =====================================================  ==========================

Each dense vector is stored with a codec (:mod:`mmrag.store.codecs`: float32, float16,
TurboQuant 8 / 4 bit, or a quantized copy rescored with the originals), recorded in
``schema.codecs``.


Example:
    >>> from mmrag.store.schema import CollectionSchema
    >>> schema = CollectionSchema(embedder_id="colqwen2@v1", kind="multi", dim=128,
    ...                           views=("global", "rows"))
    >>> sorted(schema.vectors())
    ['full', 'global', 'rows']
    >>> [name for name, spec in schema.vectors().items() if spec.hnsw]
    ['global', 'rows']
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mmrag.errors import ConfigError
from mmrag.store.codecs import (
    LEGACY_CODECS,
    codec_spec,
    codecs_for,
    merged_codecs,
    same_codecs,
)
from mmrag.store.contract import (
    DISTINCT_EF_CONSTRUCT,
    DISTINCT_HNSW_M,
    MULTI_EF_CONSTRUCT,
    MULTI_HNSW_M,
    SCHEMA_VERSION,
    CollectionMismatchError,
)
from mmrag.store.records import SparseVector
from mmrag.store.tokens import MERGE_METHOD

if TYPE_CHECKING:
    from mmrag.config import PoolingConfig
    from mmrag.store.records import Point

__all__ = ["CollectionSchema", "VectorSpec"]

logger = logging.getLogger(__name__)

#: Pooling parameters that change each view's vectors (the rest are irrelevant to it).
_VIEW_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "tiles": ("tile_size",),
    "smooth_rows": ("window",),
    "hier": ("pool_factor",),
    "muvera": ("muvera",),
}


@dataclass(frozen=True)
class VectorSpec:
    """How one named vector is stored and indexed.

    ``hnsw_m`` / ``ef_construct`` override the engine's HNSW defaults (16 / 100) for this
    vector; ``None`` keeps them. ``codec`` is one of :data:`mmrag.store.codecs.CODECS`.
    """

    name: str
    dim: int
    multivector: bool = False
    distance: Literal["cosine", "dot"] = "cosine"
    hnsw: bool = True
    codec: str = "float32"
    on_disk: bool = False
    sparse: bool = False
    hnsw_m: int | None = None
    ef_construct: int | None = None

    @property
    def datatype(self) -> str:
        """How the originals are stored: ``float32``, ``float16``, ``turbo8`` or ``turbo4``."""
        return codec_spec(self.codec).storage


@dataclass(frozen=True)
class CollectionSchema:
    """What a collection stores, recorded with it and checked whenever it is opened.

    ``kind="single"`` stores one ``dense`` vector per item. ``kind="multi"`` stores ``full``
    (every visual token, exact MaxSim only) plus one named vector per pooled view. ``text=True``
    adds a BM25 sparse channel over the items' text layer (for hybrid RRF retrieval).

    Example:
        >>> from mmrag.config import PoolingConfig
        >>> from mmrag.store import CollectionSchema
        >>> s = CollectionSchema.for_embedder("colqwen2@v1", "multi", 128,
        ...                                   PoolingConfig(views=["global", "muvera"]))
        >>> s.vectors()["muvera"].dim, s.vectors()["muvera"].multivector
        (10240, False)
        >>> CollectionSchema.from_dict(s.to_dict()) == s
        True
        >>> s.codecs["full"] in ("turbo8", "turbo4", "float16")
        True
    """

    embedder_id: str
    kind: Literal["single", "multi"]
    dim: int
    views: tuple[str, ...] = ()
    pooling: Mapping[str, Any] = field(default_factory=dict)
    text: bool = False
    muvera_dim: int | None = None
    codecs: Mapping[str, str] = field(default_factory=dict)
    version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.embedder_id:
            raise ConfigError("a collection schema needs the embedder id")
        if self.kind not in ("single", "multi"):
            raise ConfigError(f"schema kind must be 'single' or 'multi', got {self.kind!r}")
        if self.dim < 1:
            raise ConfigError(f"schema dim must be >= 1, got {self.dim}")
        object.__setattr__(self, "views", tuple(self.views))
        if self.kind == "single" and self.views:
            raise ConfigError(
                f"pooled views {list(self.views)} apply to multi-vector embedders only; "
                f"{self.embedder_id} is single-vector (set pooling.views = [])"
            )
        reserved = {"full", "dense", "text"} & set(self.views)
        if reserved:
            raise ConfigError(f"{sorted(reserved)} are not pooled views; remove them from views")
        if "muvera" in self.views and not self.muvera_dim:
            m = dict(self.pooling.get("muvera") or {})
            k_sim, dim_proj, r_reps = m.get("k_sim", 5), m.get("dim_proj", 16), m.get("r_reps", 20)
            object.__setattr__(self, "muvera_dim", int(r_reps * 2**k_sim * dim_proj))
        if self.full_pool_factor < 1:
            raise ConfigError(f"full_pool_factor must be >= 1, got {self.full_pool_factor}")
        if self.token_index and "distinct" not in self.views:
            raise ConfigError(
                "pooling.token_index indexes the `distinct` view's vectors; add 'distinct' to "
                "pooling.views, or set token_index = false"
            )
        # Every dense vector's codec (configured ones validated, the rest the defaults).
        names = ["dense"] if self.kind == "single" else [*self.views, "full"]
        names += ["tokens"] if self.token_index else []
        object.__setattr__(self, "codecs", codecs_for(names, merged_codecs(self.codecs)))

    @property
    def full_pool_factor(self) -> int:
        """How many document tokens are merged into each stored ``full`` vector (1: none)."""
        return int(self.pooling.get("full_pool_factor", 1) or 1)

    @property
    def token_index(self) -> bool:
        """Whether the collection keeps a token index (:mod:`mmrag.store.token_index`)."""
        return bool(self.pooling.get("token_index", False))

    @classmethod
    def for_embedder(
        cls,
        embedder_id: str,
        kind: Literal["single", "multi"],
        dim: int,
        pooling: PoolingConfig | None = None,
        *,
        text: bool = False,
        codecs: Mapping[str, str] | None = None,
    ) -> CollectionSchema:
        """The schema for an embedder (its ``id``, ``kind``, ``dim``), pooling settings and
        codecs (vector name → codec, merged over :data:`~mmrag.store.codecs.DEFAULT_CODECS`:
        ``StoreConfig.codecs``)."""
        if kind == "single" or pooling is None:
            return cls(
                embedder_id=embedder_id, kind=kind, dim=dim, text=text, codecs=dict(codecs or {})
            )
        settings = pooling.model_dump(mode="json")
        relevant = _relevant_pooling(tuple(pooling.views), settings)
        if int(settings.get("full_pool_factor", 1) or 1) > 1:
            relevant["full_pool_factor"] = int(settings["full_pool_factor"])
            relevant["full_merge"] = MERGE_METHOD  # pages merged otherwise do not mix
        if settings.get("token_index") and "distinct" in pooling.views:  # it indexes `distinct`
            relevant["token_index"] = True
        return cls(
            embedder_id=embedder_id,
            kind=kind,
            dim=dim,
            views=tuple(pooling.views),
            pooling=relevant,
            text=text,
            codecs=dict(codecs or {}),
        )

    @classmethod
    def for_embedder_object(
        cls,
        embedder: Any,
        pooling: PoolingConfig | None = None,
        *,
        text: bool = False,
        codecs: Mapping[str, str] | None = None,
    ) -> CollectionSchema:
        """The schema for an :class:`~mmrag.embedders.base.Embedder` instance."""
        return cls.for_embedder(
            embedder.id, embedder.kind, embedder.dim, pooling, text=text, codecs=codecs
        )

    def with_codecs(self, codecs: Mapping[str, str] | None) -> CollectionSchema:
        """This schema with ``codecs`` (merged over the defaults) for its vectors."""
        return dataclasses.replace(self, codecs=dict(codecs or {}))

    def vectors(self) -> dict[str, VectorSpec]:
        """Every named vector of the collection, with how it is stored and indexed."""
        specs: dict[str, VectorSpec] = {}
        codecs = self.codecs
        if self.kind == "single":
            specs["dense"] = VectorSpec("dense", self.dim, codec=codecs["dense"])
        else:
            for view in self.views:
                if view == "muvera":
                    assert self.muvera_dim is not None
                    specs[view] = VectorSpec(
                        view, self.muvera_dim, distance="dot", codec=codecs[view]
                    )
                elif view == "global":
                    specs[view] = VectorSpec(view, self.dim, multivector=True, codec=codecs[view])
                else:
                    # Graph size: see MULTI_HNSW_M (build time vs recall of plans starting here).
                    dense_graph = view == "distinct"
                    specs[view] = VectorSpec(
                        view,
                        self.dim,
                        multivector=True,
                        hnsw_m=DISTINCT_HNSW_M if dense_graph else MULTI_HNSW_M,
                        ef_construct=DISTINCT_EF_CONSTRUCT if dense_graph else MULTI_EF_CONSTRUCT,
                        codec=codecs[view],
                    )
            specs["full"] = VectorSpec(
                "full", self.dim, multivector=True, hnsw=False, codec=codecs["full"], on_disk=True
            )
        if self.text:
            specs["text"] = VectorSpec("text", 0, sparse=True, hnsw=False)
        return specs

    @property
    def vector_names(self) -> tuple[str, ...]:
        """The named vectors a plan can use."""
        return tuple(self.vectors())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (stored with the collection)."""
        data = dataclasses.asdict(self)
        data["views"] = list(self.views)
        data["pooling"] = dict(self.pooling)
        data["codecs"] = dict(self.codecs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CollectionSchema:
        """Read back :meth:`to_dict`'s output."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["views"] = tuple(kwargs.get("views", ()))
        if "codecs" not in kwargs:  # written before codecs were recorded: what was used then
            names = ["dense"] if kwargs.get("kind") == "single" else [*kwargs["views"], "full"]
            kwargs["codecs"] = {n: LEGACY_CODECS.get(n, "float32") for n in names}
        return cls(**kwargs)

    def differences(self, other: CollectionSchema) -> list[str]:
        """Human-readable differences ``field: self vs other`` (empty when compatible)."""
        out = []
        fields = ("version", "embedder_id", "kind", "dim", "views", "pooling", "text", "codecs")
        for name in fields:
            mine, theirs = getattr(self, name), getattr(other, name)
            if name == "views":
                mine, theirs = list(mine), list(theirs)
            if name in ("pooling", "codecs"):
                mine, theirs = dict(mine), dict(theirs)
            if name == "codecs" and same_codecs(mine, theirs):
                continue
            if mine != theirs:
                out.append(f"{name}: {mine!r} vs {theirs!r}")
        return out

    def check_compatible(self, requested: CollectionSchema, where: str) -> None:
        """Raise :class:`CollectionMismatchError` unless ``requested`` matches this schema."""
        diffs = self.differences(requested)
        if not diffs and dict(self.codecs) != dict(requested.codecs):
            logger.info(
                "%s keeps the codecs it was built with: %s (requested %s)",
                where,
                dict(self.codecs),
                dict(requested.codecs),
            )
        if diffs:
            raise CollectionMismatchError(
                f"{where} was built with another embedder or pooling (or other codecs; "
                "stored vs requested): "
                + "; ".join(diffs)
                + ". Use a new collection name (store.collection), the embedder, pooling "
                "(pooling.full_pool_factor included) and codecs (store.codecs) it was built "
                "with, or rebuild it: `mmrag index PATHS --recreate` (in Python: "
                "Pipeline.recreate(), or open_store(..., recreate=True))."
            )

    def validate_point(self, point: Point) -> None:
        """Check a point's vectors against the schema; the error names the item and the fix."""
        specs = self.vectors()
        missing = [n for n, s in specs.items() if n not in point.vectors and not s.sparse]
        if missing:
            raise ConfigError(
                f"point {point.id} ({point.payload.get('source', '?')}) has no {missing} "
                f"vector(s); this collection stores {list(specs)} — compute the pooled views "
                "(mmrag.embedders.pooling.Pooler) before upserting"
            )
        for name, vector in point.vectors.items():
            spec = specs.get(name)
            if spec is None:
                raise ConfigError(
                    f"point {point.id}: vector {name!r} is not in this collection "
                    f"(it stores {list(specs)})"
                )
            if spec.sparse:
                if not isinstance(vector, SparseVector):
                    raise ConfigError(f"point {point.id}: {name!r} must be a SparseVector")
                continue
            array = np.asarray(vector)
            want_ndim = 2 if spec.multivector else 1
            if array.ndim != want_ndim or array.shape[-1] != spec.dim or array.shape[0] == 0:
                shape = f"(n, {spec.dim})" if spec.multivector else f"({spec.dim},)"
                raise ConfigError(
                    f"point {point.id}: vector {name!r} must have shape {shape}, got "
                    f"{array.shape}; the collection was created for {self.embedder_id}"
                )


def _relevant_pooling(views: tuple[str, ...], settings: Mapping[str, Any]) -> dict[str, Any]:
    """The pooling settings that change the stored views (so unrelated edits don't mismatch)."""
    out: dict[str, Any] = {}
    for view in views:
        for key in _VIEW_SETTINGS.get(view, ()):
            if key in settings:
                out[key] = settings[key]
    return out
