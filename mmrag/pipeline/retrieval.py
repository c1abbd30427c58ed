"""Multi-stage retrieval: a plan such as ``global@200 -> rows@50 -> full@10`` run as one query.

The store runs the whole plan as one Qdrant ``query_points`` with nested prefetch: the first
stage searches the collection (HNSW on a small pooled view), each later stage rescores only the
previous stage's candidates, and the last stage is usually exact MaxSim over every token of the
page (``full``). The filter applies at every stage.

Qdrant returns only the last stage's score. To record every stage's score of the final hits
(``Hit.stage_scores``), the retriever asks the store for exact scores of just those hits on
each earlier vector (one id-restricted search per vector, sent as one batch: a few dozen
points, so it is cheap). A fused stage's RRF score depends on ranks, not on the point alone, so
for an RRF stage that is not last, the plan up to that stage is run once more and the hits'
fused scores are read from it.

Example:
    >>> from mmrag.pipeline.retrieval import hybrid_plan
    >>> from mmrag.store.plan import parse_plan
    >>> str(hybrid_plan(parse_plan("global@200 -> rows@50 -> full@10")))
    '(global@200 + text@200) -> rows@50 -> full@10'
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError
from mmrag.store.contract import StoreError
from mmrag.store.plan import Plan, parse_plan
from mmrag.store.records import QueryVector, ScoredRecord, SearchFilter, SparseVector
from mmrag.store.token_index import TOKENS_STAGE
from mmrag.types import Embedding, Hit, Item

if TYPE_CHECKING:
    from mmrag.config import RetrievalConfig
    from mmrag.embedders.pooling import Pooler
    from mmrag.store.assets import AssetStore
    from mmrag.store.contract import VectorStore

__all__ = ["Retriever", "hybrid_plan", "resolve_plan", "stage_keys"]

logger = logging.getLogger(__name__)

QueryInput = Embedding | Mapping[str, QueryVector]


def hybrid_plan(plan: Plan) -> Plan:
    """``plan`` with its first stage fused (RRF) with the BM25 ``text`` channel.

    A plan that already reads ``text`` is returned unchanged. A first stage ``tokens@K`` (the
    token index, which cannot be fused) is left out: the text channel fuses with the stage after
    it, which then searches the whole collection, as it would without the token stage.

    Example:
        >>> from mmrag.store.plan import parse_plan
        >>> str(hybrid_plan(parse_plan("tokens@128 -> distinct@32 -> full@10")))
        '(distinct@32 + text@32) -> full@10'
    """
    if "text" in plan.vectors:
        return plan
    stages = plan.stages
    if stages[0].using == TOKENS_STAGE and len(stages) > 1:
        stages = stages[1:]
    first, rest = stages[0], (*stages[1:], *plan.rerank)
    members = first.fuse or (first,)
    fused = "(" + " + ".join([*map(str, members), f"text@{first.limit}"]) + ")"
    return parse_plan(" -> ".join([fused, *map(str, rest)]))


def resolve_plan(config: RetrievalConfig, kind: str, plan: str | Plan | None = None) -> Plan:
    """The retrieval plan in use: ``plan``, else ``config.plan``; with a single-vector
    embedder (``kind``) the (multi-vector) default plan searches ``dense`` instead. With
    ``config.hybrid`` the first stage is fused with the text channel (:func:`hybrid_plan`)."""
    if plan is None:
        plan = config.plan
        if kind == "single" and "plan" not in config.model_fields_set:
            plan = f"dense@{max(config.top_k, 10)}"
    parsed = parse_plan(plan) if isinstance(plan, str) else plan
    return hybrid_plan(parsed) if config.hybrid and "text" not in parsed.vectors else parsed


def stage_keys(plan: Plan) -> list[str]:
    """The ``Hit.stage_scores`` keys a plan records, in stage order.

    A plain stage is keyed by its vector name; a fused stage records each member by vector
    name, then the fused score as ``rrf`` (``rrf2``, ``rrf3`` … for later fused stages).

    Example:
        >>> from mmrag.store.plan import parse_plan
        >>> from mmrag.pipeline.retrieval import stage_keys
        >>> stage_keys(parse_plan("(global@100 + text@100) -> rows@20 -> full@5"))
        ['global', 'text', 'rrf', 'rows', 'full']
    """
    keys: list[str] = []
    fused = 0
    for stage in plan.stages:
        for member in stage.fuse:
            if member.using not in keys:
                keys.append(member.using)
        if stage.fuse:
            fused += 1
            keys.append("rrf" if fused == 1 else f"rrf{fused}")
        elif stage.using not in keys:
            keys.append(stage.using)
    return keys


class Retriever:
    """Runs a retrieval plan against a store and returns :class:`~mmrag.types.Hit` s.

    ``plan`` is a parsed :class:`~mmrag.store.plan.Plan` or its arrow syntax. Queries are
    :class:`~mmrag.types.Embedding` s from the collection's embedder (a multi-vector query is
    searched with its own token vectors at every MaxSim stage, and with its MUVERA encoding at
    a ``muvera`` stage), or a mapping of vector name to query vector. ``top_k`` cuts the final
    list (default: the plan's last limit). ``assets`` lets each hit's item load its page image.
    ``hnsw_ef`` sets the HNSW search width of the plan's HNSW stages (default: the engine's,
    i.e. the vector's ef_construct); a smaller one is faster, a larger one finds more.

    Example:
        >>> from mmrag.pipeline.retrieval import Retriever                     # doctest: +SKIP
        >>> retriever = Retriever(store, "global@200 -> rows@50 -> full@10")    # doctest: +SKIP
        >>> hits = retriever.search(query_embedding, text="revenue 2024",
        ...                         filter=SearchFilter.build(source="report.pdf"))
        ...                                                                    # doctest: +SKIP
        >>> hits[0].stage_scores                                               # doctest: +SKIP
        {'global': 11.2, 'rows': 14.8, 'full': 17.3}
    """

    def __init__(
        self,
        store: VectorStore,
        plan: Plan | str,
        *,
        top_k: int | None = None,
        pooler: Pooler | None = None,
        assets: AssetStore | None = None,
        record_stage_scores: bool = True,
        hnsw_ef: int | None = None,
    ) -> None:
        self.store = store
        # The store's stages only: rerank stages (``text_rerank@K``) are the pipeline's.
        self.plan = (parse_plan(plan) if isinstance(plan, str) else plan).store_plan
        if top_k is not None and top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        self.assets = assets
        self.record_stage_scores = record_stage_scores
        self.hnsw_ef = hnsw_ef
        self._pooler = pooler
        check = getattr(store, "check_plan", None)
        if check is not None:
            check(self.plan)

    @classmethod
    def from_config(
        cls,
        store: VectorStore,
        config: RetrievalConfig,
        *,
        pooler: Pooler | None = None,
        assets: AssetStore | None = None,
    ) -> Retriever:
        """A retriever for ``[retrieval]``: its plan (fused with text if ``hybrid``) and top_k."""
        plan = parse_plan(config.plan)
        if config.hybrid:
            plan = hybrid_plan(plan)
        return cls(store, plan, top_k=config.top_k, pooler=pooler, assets=assets)

    def __repr__(self) -> str:
        return f"Retriever({str(self.plan)!r}, store={self.store!r})"

    # -- query vectors ---------------------------------------------------------------------------

    @property
    def pooler(self) -> Pooler:
        """The pooler for query-side encodings (MUVERA), built from the collection's settings."""
        if self._pooler is None:
            from mmrag.config import PoolingConfig
            from mmrag.embedders.pooling import Pooler

            schema = self.store.schema
            settings: dict[str, Any] = {"views": list(schema.views), **dict(schema.pooling)}
            self._pooler = Pooler(PoolingConfig(**settings))
        return self._pooler

    def query_vectors(self, query: QueryInput, text: str | None = None) -> dict[str, QueryVector]:
        """The vector each stage of the plan searches with, by vector name."""
        if isinstance(query, Embedding):
            return self._from_embedding(query, text)
        vectors = dict(query)
        if "text" in self.plan.vectors and "text" not in vectors:
            vectors["text"] = self._text_vector(text)
        missing = [n for n in self.plan.vectors if n not in vectors]
        if missing:
            raise ConfigError(f"plan {self.plan} needs query vectors for {missing}")
        return vectors

    def _text_vector(self, text: str | None) -> SparseVector:
        if not text:
            raise ConfigError(
                f"plan {self.plan} uses the text channel, so the query needs its text "
                "(pass text=...)"
            )
        from mmrag.store.text import bm25_query

        return bm25_query(text)

    def _from_embedding(self, embedding: Embedding, text: str | None) -> dict[str, QueryVector]:
        vectors: dict[str, QueryVector] = {}
        for name in self.plan.vectors:
            if name == "text":
                vectors[name] = self._text_vector(text)
            elif name == "dense":
                if embedding.dense is None:
                    raise ConfigError(
                        "the 'dense' stage needs a single-vector query embedding; this query is "
                        "a multi-vector one (use a plan over pooled views and 'full')"
                    )
                vectors[name] = embedding.dense
            else:
                if embedding.multi is None:
                    raise ConfigError(
                        f"the {name!r} stage needs a multi-vector query embedding; this query "
                        "is a single vector (use a 'dense@K' plan)"
                    )
                tokens = embedding.multi  # every token the query has (an image query's too)
                if name == "muvera":
                    pooled = embedding.pooled.get("muvera")
                    vectors[name] = (
                        pooled if pooled is not None else self.pooler.query_vector(name, tokens)
                    )
                else:
                    vectors[name] = tokens
        return vectors

    # -- search ----------------------------------------------------------------------------------

    def search(
        self,
        query: QueryInput,
        *,
        text: str | None = None,
        filter: SearchFilter | None = None,
    ) -> list[Hit]:
        """The plan's hits for one query, best first, each with its score at every stage."""
        return self.search_batch([query], texts=[text], filter=filter)[0]

    def search_batch(
        self,
        queries: Sequence[QueryInput],
        *,
        texts: Sequence[str | None] | None = None,
        filter: SearchFilter | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for several queries, sent to the engine as one batch."""
        if texts is None:
            texts = [None] * len(queries)
        if len(texts) != len(queries):
            raise ConfigError(f"got {len(queries)} queries but {len(texts)} texts")
        batch = [self.query_vectors(q, t) for q, t in zip(queries, texts, strict=True)]
        results = self.store.query_batch(self.plan, batch, filter, hnsw_ef=self.hnsw_ef)
        out = []
        for vectors, records in zip(batch, results, strict=True):
            # Equal scores come back from the engine in no fixed order (its segments are
            # searched in parallel): break ties by id so the same query gives the same hits.
            records = sorted(records, key=lambda r: (-r.score, r.id))
            records = records[: self.top_k] if self.top_k else records
            scores = (
                self._stage_scores(vectors, records, filter) if self.record_stage_scores else {}
            )
            out.append([self._hit(r, scores.get(r.id)) for r in records])
        return out

    def _hit(self, record: ScoredRecord, stage_scores: Mapping[str, float] | None) -> Hit:
        loader = None
        if self.assets is not None:
            assets, point_id = self.assets, record.id
            loader = lambda: assets.get(point_id)  # noqa: E731
        try:
            item = Item.from_payload(record.payload, image_loader=loader)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"point {record.id} in {self.store.name!r} has no item payload ({exc}); write "
                "points with Point.from_item(...) or (item, embedding) pairs"
            ) from exc
        return Hit(id=record.id, score=record.score, item=item, stage_scores=stage_scores or {})

    def _stage_scores(
        self,
        vectors: Mapping[str, QueryVector],
        records: Sequence[ScoredRecord],
        filter: SearchFilter | None,
    ) -> dict[str, dict[str, float]]:
        """``{point id: {stage key: score}}`` for the final hits."""
        if not records:
            return {}
        ids = [r.id for r in records]
        stages = self.plan.stages
        last = stages[-1]
        final_key = stage_keys(self.plan)[-1]
        # Plain vector stages (fused members included): exact scores of these ids.
        names: list[str] = []
        for stage in stages:
            for s in stage.fuse or (stage,):
                if s.using not in names and not (s is last and not last.fuse):
                    names.append(s.using)
        exact = self.store.score(ids, {n: vectors[n] for n in names}) if names else {}
        # Fused stages before the last: their RRF scores come from the plan up to that stage.
        fused: dict[str, dict[str, float]] = {}
        fused_count = 0
        for index, stage in enumerate(stages):
            if not stage.fuse:
                continue
            fused_count += 1
            key = "rrf" if fused_count == 1 else f"rrf{fused_count}"
            if stage is last:
                continue
            partial = Plan(stages=stages[: index + 1])
            needed = {n: vectors[n] for n in partial.vectors}
            result = self.store.query(
                partial, needed, filter, with_payload=False, hnsw_ef=self.hnsw_ef
            )
            fused[key] = {r.id: r.score for r in result}
        out: dict[str, dict[str, float]] = {}
        keys = stage_keys(self.plan)
        for record in records:
            scores: dict[str, float] = {}
            for key in keys:
                if key == final_key:
                    scores[key] = record.score
                elif key in exact:
                    # No score: the point has nothing on that vector (e.g. no text), i.e. 0.
                    scores[key] = float(exact[key].get(record.id, 0.0))
                elif key in fused and record.id in fused[key]:
                    scores[key] = fused[key][record.id]
            out[record.id] = scores
        return out
