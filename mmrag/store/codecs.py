"""How each stored vector is encoded: float32, float16, compact TurboQuant storage, or a
quantized copy beside the originals (searched first, then rescored with the originals).

Every named vector of a collection (``dense``, ``full`` and each pooled view) has a codec,
chosen in the config (``[store] codecs = {full = "turbo4"}``; names not configured take
:data:`DEFAULT_CODECS`) and recorded with the collection:

=============  ===========================  ======================  ===========================
codec          stored on disk (per value)   searched with           what it costs / keeps
=============  ===========================  ======================  ===========================
``float32``    float32 (4 B)                the originals           exact; the reference
``float16``    float16 (2 B)                the originals           half the disk, ~exact
``turbo8``     TurboQuant 8-bit (1 B)       the stored codes        a quarter of the disk
``turbo4``     TurboQuant 4-bit (0.5 B)     the stored codes        an eighth of the disk
``uint8``      float16 + int8 copy in RAM   int8, rescored          disk of float16 + a quarter
``binary``     float16 + 1-bit copy in RAM  1-bit, rescored         disk of float16 + 1/32
``binary1.5``  float16 + 1.5-bit copy       1.5-bit, rescored       disk of float16 + 3/64
``binary2``    float16 + 2-bit copy         2-bit, rescored         disk of float16 + 1/16
=============  ===========================  ======================  ===========================

``turbo8`` / ``turbo4`` are storage datatypes of Qdrant's engine (TurboQuant: a random
rotation, then scalar codes): the originals are not kept, so they are the codecs that shrink
the disk (with pooling, ``pooling.full_pool_factor``). ``uint8`` and the binary codecs are
Qdrant quantization configs: the originals stay on disk (as float16) and every search
rescores its oversampled quantized candidates with them, so they trade RAM for speed, never
disk. Qdrant's engine only uses a quantized copy on optimized segments; qdrant-client's local
mode ignores quantization (always exact on the originals).

Measured here (``benchmarks/scale.py``'s page-like synthetic ColPali pages, 1,024 x 128
tokens; ``full@10`` scanned by brute force; agreement with exact float32 MaxSim over every
token; hard queries: query noise 2.0, 500-1,000 pages, 100-200 queries):

=============  ==================  ===========  ============
codec          ``full`` on disk    top-1        recall@10
=============  ==================  ===========  ============
float32        512 KB / page       1.00         1.00
float16        256 KB              1.00         1.00
turbo8         129 KB              0.99-1.00    0.99
turbo4         66 KB               0.94-0.975   0.88-0.90
uint8          256 KB + 128 KB RAM 1.00         1.00
binary         256 KB + 16 KB RAM  0.92         0.73
binary1.5      256 KB + 24 KB RAM  0.88         0.70
binary2        256 KB + 32 KB RAM  0.97         0.75
=============  ==================  ===========  ============

``full_pool_factor`` (:func:`mmrag.store.tokens.merge_tokens`: background and repeated
templates merged, content regions kept whole) is what brings a page under 64 KB. On hard queries
(scale.py, noise 2.0, 2,000 pages, 200 queries, ``distinct@32 -> full@10``):

==========================  ============  ==========  ===========  ==========================
``full``                    on disk/page  top-1       recall@10    ``full@10`` alone: top-1
==========================  ============  ==========  ===========  ==========================
turbo8, every token         129 KB        1.00        0.847        1.00
turbo8, factor 3 (default)  44 KB         0.99        0.837        0.99
turbo4, factor 2            33 KB         0.97        0.80         0.97
==========================  ============  ==========  ===========  ==========================

Merging the whole page at once (the previous merge, without groups) kept 0.90 top-1 and about
0.55 recall@10 at factor 2. turbo8's engine scores equal MaxSim over the vectors it returns (to
1e-7; turbo4's differ by ~1e-3), so rerankers and region citations that read the stored vectors
agree with the search; that, and the top-1 above, makes it the default for ``full``.

Example:
    >>> from mmrag.store.codecs import CODECS, codec_of, merged_codecs
    >>> "turbo4" in CODECS and "binary" in CODECS
    True
    >>> merged_codecs({"full": "float16"})["full"], codec_of("rows", {})
    ('float16', 'float16')
    >>> codec_spec("binary").quantization, codec_spec("turbo4").storage
    ('binary1', 'turbo4')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mmrag.errors import ConfigError

__all__ = [
    "CODECS",
    "CODECS_HELP",
    "DEFAULT_CODECS",
    "FULL_POOL_HELP",
    "LEGACY_CODECS",
    "PREVIOUS_DEFAULTS",
    "Codec",
    "SearchOptions",
    "codec_of",
    "codec_spec",
    "codecs_for",
    "merged_codecs",
    "same_codecs",
    "search_options",
    "search_params",
]


@dataclass(frozen=True)
class Codec:
    """One codec: how the originals are stored, and the quantized copy searched first.

    ``storage``: ``float32`` | ``float16`` | ``turbo8`` | ``turbo4`` (the originals on disk).
    ``quantization``: ``None`` | ``int8`` | ``binary1`` | ``binary1.5`` | ``binary2`` (a
    compact copy kept in RAM, searched with ``oversampling`` x the limit, then rescored).
    ``bytes_per_value``: what the stored originals take per vector component.

    Example:
        >>> from mmrag.store.codecs import codec_spec
        >>> codec_spec("float16").bytes_per_value
        2.0
    """

    name: str
    storage: str
    quantization: str | None = None
    oversampling: float = 1.0

    @property
    def bytes_per_value(self) -> float:
        """Disk bytes per vector component of the stored originals."""
        return {"float32": 4.0, "float16": 2.0, "turbo8": 1.0, "turbo4": 0.5}[self.storage]

    @property
    def rescored(self) -> bool:
        """Whether searches rescore quantized candidates with the originals."""
        return self.quantization is not None


_CODECS: Mapping[str, Codec] = {
    c.name: c
    for c in (
        Codec("float32", "float32"),
        Codec("float16", "float16"),
        Codec("turbo8", "turbo8"),
        Codec("turbo4", "turbo4"),
        Codec("uint8", "float16", "int8", oversampling=2.0),
        Codec("binary", "float16", "binary1", oversampling=4.0),
        Codec("binary1.5", "float16", "binary1.5", oversampling=3.0),
        Codec("binary2", "float16", "binary2", oversampling=3.0),
    )
}

#: The codec names accepted in ``[store] codecs``.
CODECS: tuple[str, ...] = tuple(_CODECS)

#: The codec of each vector name not configured (pooled views not listed take ``float16``).
#: ``full`` is ``turbo8``: exact float32 MaxSim's top-1 kept on every measured query set at a
#: quarter of float32's disk; ``turbo4`` halves that again at 0.94-0.975 top-1 on hard queries
#: (see the module docstring and ``benchmarks/scale.py``); with ``pooling.full_pool_factor = 3``
#: (the default) it stores a third of the tokens. ``distinct`` is ``float16``: the default plan
#: scores the token index's candidates on it exactly, and a selective filter's fallback searches
#: its HNSW graph on the originals. ``uint8`` (the previous default: an int8 copy in RAM, 4 KB
#: per page, beside the float16 originals, 8 KB) adds 4 KB of disk and RAM per page for a
#: faster first stage, which the token index made the rare path; it is what brought 10^5 pages
#: to 67 KB each. ``turbo8`` (4 KB, no originals) kept the same top-1 at 2,000 and 10,000 pages
#: as a first stage but not beyond: on scale.py's 30,000 pages (50 queries, no token index)
#: ``distinct@32 -> full@10`` kept the exact top-1 for 0.74 of the queries with ``turbo8``,
#: against 0.96 with ``uint8``.
DEFAULT_CODECS: Mapping[str, str] = {
    "dense": "float32",
    "full": "turbo8",
    "global": "float16",
    "rows": "float16",
    "cols": "float16",
    "tiles": "float16",
    "smooth_rows": "float16",
    "hier": "float16",
    "distinct": "float16",
    "muvera": "float16",
    "tokens": "turbo8",  # the token index (mmrag.store.token_index)
}

#: Codecs an earlier version chose by default: a collection recorded with one of them opens
#: under today's default for that name (its stored codec is kept), so changing a default never
#: locks an index out; any other difference is a mismatch.
PREVIOUS_DEFAULTS: Mapping[str, tuple[str, ...]] = {"distinct": ("uint8",)}

#: What collections written before codecs were recorded used: ``full`` float16, the rest
#: float32.
LEGACY_CODECS: Mapping[str, str] = {"full": "float16"}

_VIEW_DEFAULT = "float16"

#: The help of ``[store] codecs`` (``mmrag.config.StoreConfig.codecs``).
CODECS_HELP = (
    "Codec of each stored vector (full, dense, global, rows …): "
    + ", ".join(_CODECS)
    + "; names not set take mmrag.store.codecs.DEFAULT_CODECS. Recorded with the collection."
)

#: The help of ``[pooling] full_pool_factor`` (``mmrag.config.PoolingConfig``).
FULL_POOL_HELP = (
    "Store `full` with about 1/N of the page's tokens: background and repeated templates are "
    "merged, content regions kept (2-3 shrink the disk and the exact stage; 1 = every token)."
)


def same_codecs(stored: Mapping[str, str], requested: Mapping[str, str]) -> bool:
    """Whether a collection recorded with ``stored`` codecs opens for ``requested`` ones:
    equal, except that a codec in :data:`PREVIOUS_DEFAULTS` opens under today's default.

    Example:
        >>> from mmrag.store.codecs import same_codecs
        >>> same_codecs({"distinct": "uint8"}, {"distinct": "float16"})
        True
        >>> same_codecs({"distinct": "uint8"}, {"distinct": "turbo8"})
        False
    """
    if stored.keys() != requested.keys():
        return False
    return all(
        want == have
        or (want == DEFAULT_CODECS.get(name) and have in PREVIOUS_DEFAULTS.get(name, ()))
        for name, have in stored.items()
        for want in (requested[name],)
    )


def codec_spec(name: str) -> Codec:
    """The :class:`Codec` called ``name``; an unknown name is a :class:`ConfigError` listing
    the allowed ones."""
    try:
        return _CODECS[name]
    except KeyError:
        raise ConfigError(
            f"unknown codec {name!r}; allowed: {', '.join(CODECS)} "
            '(set them in [store] codecs, e.g. codecs = {full = "turbo8"})'
        ) from None


def merged_codecs(configured: Mapping[str, str] | None) -> dict[str, str]:
    """``configured`` (vector name → codec, validated) over :data:`DEFAULT_CODECS`."""
    merged = dict(DEFAULT_CODECS)
    for vector, name in (configured or {}).items():
        if not isinstance(name, str):
            raise ConfigError(f"codec of {vector!r} must be a string; allowed: {', '.join(CODECS)}")
        if vector == "text":
            raise ConfigError("the 'text' channel is a sparse vector; it takes no codec")
        codec_spec(name)
        merged[str(vector)] = name
    return merged


def codec_of(vector: str, codecs: Mapping[str, str] | None) -> str:
    """The codec of ``vector`` under ``codecs`` (then :data:`DEFAULT_CODECS`, then float16)."""
    if codecs and vector in codecs:
        return codecs[vector]
    return DEFAULT_CODECS.get(vector, _VIEW_DEFAULT)


def codecs_for(vectors: Iterable[str], codecs: Mapping[str, str] | None) -> dict[str, str]:
    """The codec of each of ``vectors`` (what a collection records)."""
    return {name: codec_of(name, codecs) for name in vectors}


@dataclass(frozen=True)
class SearchOptions:
    """How one plan stage searches, whatever the engine (each backend translates them).

    ``exact``: every point, scored with the originals (``ignore_quantization`` for a vector
    with a quantized copy); ``oversampling``: search the quantized copy that many times over
    the limit, then rescore with the originals; ``hnsw_ef``: the HNSW candidate list.
    """

    exact: bool = False
    ignore_quantization: bool = False
    oversampling: float | None = None
    hnsw_ef: int | None = None


def search_options(
    codec: str | None, *, exact: bool, hnsw_ef: int | None, limit: int, uses_hnsw: bool
) -> SearchOptions | None:
    """The search options of a stage over a vector stored with ``codec`` (``None``: sparse),
    keeping ``limit`` candidates; ``None`` when the engine's defaults suffice.

    Example:
        >>> from mmrag.store.codecs import search_options
        >>> search_options("uint8", exact=False, hnsw_ef=8, limit=32, uses_hnsw=True)
        SearchOptions(exact=False, ignore_quantization=False, oversampling=2.0, hnsw_ef=32)
        >>> search_options("float16", exact=False, hnsw_ef=None, limit=32, uses_hnsw=True)
    """
    spec = codec_spec(codec) if codec is not None else None
    rescored = spec is not None and spec.rescored
    if exact:
        return SearchOptions(exact=True, ignore_quantization=rescored)
    oversampling = spec.oversampling if spec is not None and rescored else None
    ef = max(hnsw_ef, limit) if hnsw_ef is not None and uses_hnsw else None
    if oversampling is None and ef is None:
        return None
    return SearchOptions(oversampling=oversampling, hnsw_ef=ef)


def search_params(options: SearchOptions, engine: Any) -> Any:
    """``options`` as the engine's ``SearchParams``: ``engine`` is ``qdrant_edge`` or
    ``qdrant_client.models``, whose ``SearchParams`` / ``QuantizationSearchParams`` take the
    same arguments (each backend calls this; neither is imported here).

    Example:
        >>> from types import SimpleNamespace
        >>> from mmrag.store.codecs import SearchOptions, search_params
        >>> engine = SimpleNamespace(SearchParams=dict, QuantizationSearchParams=dict)
        >>> search_params(SearchOptions(oversampling=2.0, hnsw_ef=64), engine)
        {'hnsw_ef': 64, 'quantization': {'rescore': True, 'oversampling': 2.0}}
    """
    quantization = None
    if options.ignore_quantization:  # exact: scored with the originals
        quantization = engine.QuantizationSearchParams(ignore=True)
    elif options.oversampling is not None:  # quantized candidates, rescored
        quantization = engine.QuantizationSearchParams(
            rescore=True, oversampling=options.oversampling
        )
    if options.exact:
        return engine.SearchParams(exact=True, quantization=quantization)
    return engine.SearchParams(hnsw_ef=options.hnsw_ef, quantization=quantization)
