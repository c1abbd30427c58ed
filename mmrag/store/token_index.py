"""Token-level candidate search: each page's ``distinct`` vectors, one by one, in an HNSW graph.

A plan that starts with ``distinct@32`` (the previous default) searches an HNSW graph whose
nodes are whole pages, compared by MaxSim. Pages that share a template look alike to such a
graph whatever their content, so it navigates worse as the collection grows: on
``benchmarks/scale.py``'s page-like pages ``distinct@32 -> full@10`` kept the exact top-1 for
0.99 of queries at 10^4 pages and 0.89 at 3 x 10^4, where ``tokens@128 -> distinct@32 ->
full@10`` kept it for 1.00, in 21 ms against 60 ms.

With ``[pooling] token_index = true`` (the default) a collection also keeps a *token index*:

- every page's ``distinct`` vectors (its 32 most distinct token groups,
  :func:`mmrag.embedders.pooling.distinct_pool`) as single vectors, in an HNSW graph of their own;
- in a companion collection: the folder :data:`EMBEDDED_FOLDER` inside the embedded collection's
  folder, or the collection ``<name>__tokens`` on a server;
- each token vector's id is its page's id with the token's number in it (:func:`token_id`), so a
  search finds pages without reading payloads.

A plan that starts with ``tokens@K`` searches it once per query token (the :data:`NEIGHBOURS`
nearest vectors each), adds up each page's best similarity per query token (a query token that
did not reach a page adds nothing to it), and hands the ``K`` best pages to the next stage, which
scores them exactly: ``tokens@128 -> distinct@32 -> full@10``. This is PLAID's and ColBERTv2's
candidate generation, over training-free centroids. On the same 10^4 pages the token stage kept
the exact top-1 among its candidates for every query, in 3–9 ms.

- Writes keep the two in step, so a crash never hides a page: a page's tokens are written before
  the page and deleted after it. At worst, tokens of a page that does not exist remain, and no
  query returns them (the next stage only scores stored pages).
- A collection whose token index is missing or empty rebuilds it from the stored ``distinct``
  vectors when it is opened.
- The token index does not copy the pages' payloads (only the tenant). A query filtered on more
  than its tenant asks the token stage for more candidates, ``K / share`` where ``share`` is the
  part of the tenant's pages its filter keeps (:func:`oversampling`), and the next stage keeps
  those the filter matches. A filter keeping less than :data:`MIN_SHARE` of the pages skips
  the token stage, and so does a filtered query whose candidates hold too few of its pages:
  the rest of the plan scores the filtered pages exactly when they are at most
  :data:`EXACT_PAGES`, else with the engine's filtered HNSW search. An unfiltered query whose
  token search reached fewer than ``K`` pages (a small collection) scores every page.

Example:
    >>> import uuid
    >>> from mmrag.store.records import ScoredRecord
    >>> from mmrag.store.token_index import aggregate, token_id
    >>> a, b = str(uuid.uuid5(uuid.NAMESPACE_URL, "a")), str(uuid.uuid5(uuid.NAMESPACE_URL, "b"))
    >>> def hit(score, page, index):
    ...     return ScoredRecord(token_id(page, index), score, {})
    >>> hits = [  # the nearest token vectors of two query tokens
    ...     [hit(0.9, a, 0), hit(0.8, a, 1), hit(0.7, b, 0)],
    ...     [hit(0.9, b, 3), hit(0.1, a, 0)],
    ... ]
    >>> aggregate(hits, 2) == [b, a]    # a: 0.9 + 0.1, b: 0.7 + 0.9
    True
"""

from __future__ import annotations

import dataclasses
import logging
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mmrag.errors import ConfigError
from mmrag.store._engine import EngineQuery
from mmrag.store.contract import TENANT_FIELD
from mmrag.store.plan import Plan, Stage, plan_tree
from mmrag.store.records import Point, QueryVector, ScoredRecord, SearchFilter
from mmrag.store.schema import CollectionSchema

if TYPE_CHECKING:
    from mmrag.store._base import BaseStore

__all__ = [
    "EMBEDDED_FOLDER",
    "EXACT_PAGES",
    "MIN_SHARE",
    "NEIGHBOURS",
    "SERVER_SUFFIX",
    "TOKENS_STAGE",
    "aggregate",
    "check_token_plan",
    "page_token_ids",
    "token_points",
    "token_schema",
]

#: ``[pooling] token_index``, in the configuration's reference.
TOKEN_INDEX_HELP = (
    "Also index each page's `distinct` vectors one by one, for the default plan's token-level "
    "candidate search (`tokens@128 -> distinct@32 -> full@10`; see mmrag.store.token_index). "
    "Kept where `distinct` is a view; false: plans start with a pooled view."
)
#: The plan stage that searches the token index.
TOKENS_STAGE = "tokens"
#: The view whose vectors the token index holds.
TOKEN_VIEW = "distinct"
#: The token index of an embedded collection: a collection in this folder inside its folder.
EMBEDDED_FOLDER = "tokens"
#: The token index of collection ``NAME`` on a server: collection ``NAME__tokens``.
SERVER_SUFFIX = "__tokens"
#: Nearest token vectors each query token retrieves (a prototype on scale.py's 10^4 pages: with
#: 16 the 32 best pages held every query's exact top-1; their share of the exact top 10 was
#: 0.59 with 16, 0.66 with 32, 0.73 with 64).
NEIGHBOURS = 64
#: The smallest share of a tenant's pages a filter may keep for its queries to use the token
#: stage (asking for up to ``1 / MIN_SHARE`` times more candidates, and keeping those the filter
#: matches); a more selective filter leaves the search to the engine's filtered search.
MIN_SHARE = 1 / 8
#: Filtered pages the rest of a plan scores exactly when the token stage cannot serve the
#: filter (``benchmarks/filtered.py`` at 10^5 pages, 2 cores: 10^4 pages in 86 ms p50, and the
#: exact top-1 for every query, against 0.52 with the filtered HNSW search); more are left to
#: the engine's filtered HNSW search.
EXACT_PAGES = 20_000

logger = logging.getLogger(__name__)

#: Token vectors a page has at most: the ``distinct`` view's size
#: (:data:`mmrag.embedders.pooling.DISTINCT_VECTORS`).
PAGE_TOKENS = 32

_KEEP = ~(0xF << 76 | 0x3 << 62) & (1 << 128) - 1  # every bit of a UUID but version, variant
# A hex digit of a UUID's variant position, with the RFC 4122 variant bits (10) put back.
_VARIANT = {f"{d:x}": f"{d & 0x3 | 0x8:x}" for d in range(16)}


def token_schema(schema: CollectionSchema) -> CollectionSchema:
    """The schema of ``schema``'s token index: one single vector per token, HNSW."""
    return CollectionSchema(
        embedder_id=f"{schema.embedder_id}#tokens",
        kind="single",
        dim=schema.dim,
        codecs={"dense": schema.codecs.get(TOKENS_STAGE, "float16")},
    )


def token_id(page_id: str, index: int) -> str:
    """The id of token vector ``index`` of page ``page_id``: the page's id (a version-5 UUID,
    as every mmrag point id is) with its 6 version and variant bits replaced by ``index``, so
    a search finds the page from the token's id alone (reading payloads made it 5x slower).

    Example:
        >>> from mmrag.store.token_index import page_of, token_id
        >>> page = "9b6a1d1e-8c57-5d9a-a1f3-46b1f1b2a6f0"
        >>> token_id(page, 17)
        '9b6a1d1e-8c57-1d9a-61f3-46b1f1b2a6f0'
        >>> page_of(token_id(page, 17)) == page
        True
    """
    try:
        value = uuid.UUID(page_id)
    except ValueError:
        value = None
    if value is None or value.version != 5:
        raise ConfigError(
            f"point {page_id!r}: the token index needs mmrag's point ids (version-5 UUIDs, "
            "mmrag.ids.item_id); write points built by Point.from_item, or turn "
            "pooling.token_index off"
        )
    return str(uuid.UUID(int=(value.int & _KEEP) | (index & 0xF) << 76 | (index >> 4) << 62))


def page_of(token: str) -> str:
    """The page id of a token vector's id in canonical form (:func:`token_id`'s inverse).

    String surgery, not :class:`uuid.UUID`: a query reads a thousand of them (5 ms otherwise).
    """
    token = token.lower()
    return f"{token[:14]}5{token[15:19]}{_VARIANT[token[19]]}{token[20:]}"


def page_token_ids(page_ids: Iterable[str], start: int = 0) -> list[str]:
    """The ids of the token vectors ``start`` .. :data:`PAGE_TOKENS` - 1 of each page (none for
    an id that is not a version-5 UUID: such a point never had token vectors)."""
    out: list[str] = []
    for page in page_ids:
        try:
            out.extend(token_id(page, j) for j in range(start, PAGE_TOKENS))
        except ConfigError:
            continue
    return out


def token_points(points: Sequence[Point]) -> tuple[list[Point], list[str]]:
    """The token points of ``points`` (those with a ``distinct`` vector), and the ids of token
    points they no longer have (a page written again with fewer distinct groups)."""
    out: list[Point] = []
    stale: list[str] = []
    for point in points:
        vectors = point.vectors.get(TOKEN_VIEW)
        if vectors is None:
            continue
        rows = np.asarray(vectors, dtype=np.float32)  # (k, d)
        if len(rows) > PAGE_TOKENS:
            raise ConfigError(
                f"point {point.id}: its {TOKEN_VIEW!r} view has {len(rows)} vectors; the token "
                f"index holds at most {PAGE_TOKENS} per page (the view's own size)"
            )
        tenant = point.payload.get(TENANT_FIELD)  # the page's id is in the token's id
        payload = {TENANT_FIELD: tenant} if tenant is not None else {}
        ids = [token_id(point.id, j) for j in range(PAGE_TOKENS)]  # refuses other ids
        out.extend(Point(ids[j], {"dense": row}, payload) for j, row in enumerate(rows))
        stale.extend(ids[len(rows) :])
    return out, stale


def write_tokens(tokens: BaseStore, points: Sequence[Point]) -> None:
    """Write the token points of ``points`` into the token index ``tokens``."""
    fresh, stale = token_points(points)
    if stale:
        tokens.delete(stale)
    if fresh:
        tokens.upsert(fresh, batch_size=1024)


def heal(store: BaseStore, tokens: BaseStore) -> None:
    """Rebuild ``store``'s token index ``tokens`` when it is empty and the store is not (it
    was deleted, or the collection was written by a version that kept none)."""
    if tokens.count() == 0 and store.count() > 0:
        logger.warning("%s: rebuilding its token index from the stored pages", store)
        pages = rebuild(store, tokens)
        tokens.optimize()
        logger.info("%s: token index rebuilt from %d pages", store, pages)


def rebuild(store: BaseStore, tokens: BaseStore, batch_size: int = 64) -> int:
    """Write the token points of every page of ``store`` into ``tokens``; returns the pages."""
    pages, offset = 0, None
    while True:
        records, offset = store.scroll(limit=batch_size, offset=offset, with_vectors=True)
        points = [Point(r.id, r.vectors, r.payload) for r in records if TOKEN_VIEW in r.vectors]
        write_tokens(tokens, points)
        pages += len(points)
        if offset is None:
            return pages


def check_token_plan(plan: Plan, schema: CollectionSchema, where: str) -> None:
    """Raise :class:`ConfigError` unless ``plan``'s use of ``tokens`` is one this store runs:
    first, not fused, with a stage after it, on a collection that keeps a token index."""
    fused = [m.using for s in plan.stages for m in s.fuse]
    later = [s.using for s in plan.stages[1:]]
    if TOKENS_STAGE in fused or TOKENS_STAGE in later:
        raise ConfigError(
            f"plan {plan}: 'tokens' can only be the first stage, and not fused with '+'"
        )
    if plan.stages[0].using != TOKENS_STAGE:
        return
    if not schema.token_index:
        raise ConfigError(
            f"plan {plan} starts with the token index, but {where} keeps none; set "
            "pooling.token_index = true (with 'distinct' in pooling.views) and re-index into a "
            "new collection, or change the plan (e.g. 'distinct@32 -> full@10')"
        )
    if len(plan.stages) < 2:
        raise ConfigError(
            f"plan {plan}: the token stage only finds candidates; add a stage that scores them, "
            "e.g. 'tokens@128 -> distinct@32 -> full@10'"
        )


def searches_tokens(filter: SearchFilter | None) -> bool:
    """Whether ``filter`` restricts a query to no more than its tenant's pages."""
    return filter is None or dataclasses.replace(filter, tenant=None).is_empty


def oversampling(
    store: BaseStore, filter: SearchFilter | None, limit: int
) -> tuple[int | None, int | None]:
    """How many times ``limit`` candidates a query with ``filter`` asks of the token stage, and
    how many pages ``filter`` matches (``None``: not counted).

    The first is 1 for no filter but the tenant's, ``ceil(1 / share)`` for a filter that keeps
    a ``share`` of at least :data:`MIN_SHARE` of the tenant's pages, and ``None`` (skip the token
    stage) for a more selective filter, or when the tenant has no more pages than the candidates
    asked."""
    if searches_tokens(filter):
        return 1, None
    assert filter is not None
    tenant = SearchFilter(tenant=filter.tenant) if filter.tenant is not None else None
    total, matching = store.count(tenant), store.count(filter)
    if matching == 0 or matching < MIN_SHARE * total:
        return None, matching
    scale = math.ceil(total / matching)
    return (scale if limit * scale < total else None), matching


def _canonical(point_id: str) -> str:
    """``point_id`` as the engine returns it (a UUID in lower-case hyphenated form)."""
    try:
        return str(uuid.UUID(point_id))
    except ValueError:
        return point_id


def requests(
    store: BaseStore,
    tokens: BaseStore | None,
    plan: Plan,
    batch: Sequence[Mapping[str, QueryVector]],
    filter: SearchFilter | None,
    *,
    with_payload: bool,
    hnsw_ef: int | None,
) -> list[EngineQuery]:
    """The engine queries of a plan that starts with ``tokens@K``: the rest of the plan over
    each query's ``K`` candidates.

    A query filtered on more than its tenant asks for ``K`` times :func:`oversampling`
    candidates (from as many times more nearest token vectors), and the rest of the plan keeps
    those its filter matches. The rest of the plan runs over every (filtered) page instead,
    returning what a plan without the token stage would, when an unfiltered token search
    reached fewer than the pages it asked for (a small collection), when fewer searchable
    candidates than the next stage's limit (or half of ``K``) match the filter, or when
    :func:`oversampling` skips the token stage (a selective filter); the filtered pages are
    then scored exactly when they are at most :data:`EXACT_PAGES`."""
    root = plan_tree(Plan(stages=plan.stages[1:]))

    scale, matching = oversampling(store, filter, plan.stages[0].limit)
    # The filter's own pages, when the token stage cannot serve it: exactly when they are few.
    exact = matching is not None and matching <= EXACT_PAGES

    def query(vectors: Mapping[str, QueryVector], where: SearchFilter | None) -> EngineQuery:
        return EngineQuery(
            root,
            vectors,
            where,
            with_payload=with_payload,
            exact=exact and where is filter,
            hnsw_ef=hnsw_ef,
        )

    if scale is None:
        return [query(vectors, filter) for vectors in batch]
    assert tokens is not None, "a collection with a token index opens it"
    tenant = filter.tenant if filter is not None else None
    stage = Stage(TOKENS_STAGE, plan.stages[0].limit * scale)
    found = candidates(tokens, stage, batch, tenant, hnsw_ef, NEIGHBOURS * scale)
    # Fewer filtered candidates than this: the token search missed the filter's pages.
    least = max(plan.stages[1].limit, plan.stages[0].limit // 2)
    out = []
    for vectors, ids in zip(batch, found, strict=True):
        where: SearchFilter | None = SearchFilter(ids=tuple(ids), tenant=tenant)
        if filter is not None and not searches_tokens(filter):
            # Fewer pages reached than asked is no reason to leave the token stage here: the
            # filter was broad enough, so the nearest tokens ran out, not the pages.
            kept = {_canonical(i) for i in filter.ids}
            narrowed = tuple(i for i in ids if i in kept) if kept else tuple(ids)
            where = dataclasses.replace(filter, ids=narrowed)
            if not narrowed or store.count(where, searchable=True) < least:
                where = filter
        elif len(ids) < stage.limit:  # the token search reached every page: a small collection
            where = filter
        out.append(query(vectors, where))
    return out


def candidates(
    tokens: BaseStore,
    stage: Stage,
    batch: Sequence[Mapping[str, QueryVector]],
    tenant: str | None,
    hnsw_ef: int | None,
    neighbours: int = NEIGHBOURS,
) -> list[list[str]]:
    """The ``stage.limit`` candidate page ids of each query of ``batch`` (one engine call), from
    each query token's ``neighbours`` nearest token vectors."""
    search = Plan(stages=(Stage("dense", neighbours),))
    requests: list[Mapping[str, QueryVector]] = []
    spans: list[int] = []
    for vectors in batch:
        query = np.asarray(vectors[TOKENS_STAGE], dtype=np.float32)
        rows = query.reshape(-1, query.shape[-1])  # (t, d): every query token
        requests.extend({"dense": row} for row in rows)
        spans.append(len(rows))
    where = SearchFilter(tenant=tenant) if tenant is not None else None
    results = tokens.query_batch(search, requests, where, with_payload=False, hnsw_ef=hnsw_ef)
    out, start = [], 0
    for span in spans:
        out.append(aggregate(results[start : start + span], stage.limit))
        start += span
    return out


def aggregate(hits_per_token: Sequence[Sequence[ScoredRecord]], limit: int) -> list[str]:
    """The ``limit`` pages with the highest sum, over query tokens, of the best similarity of
    each page's token vectors among that query token's hits (ties by page id)."""
    scores: dict[str, float] = {}
    for hits in hits_per_token:
        best: dict[str, float] = {}
        for hit in hits:
            page = page_of(hit.id)
            if hit.score > best.get(page, -np.inf):
                best[page] = hit.score
        for page, score in best.items():
            scores[page] = scores.get(page, 0.0) + score
    return sorted(scores, key=lambda page: (-scores[page], page))[:limit]
