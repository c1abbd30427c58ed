"""Retrieval-augmented answering: retrieve (plan) → rerank → generate, timed per stage.

:class:`~mmrag.pipeline.pipeline.Pipeline` calls these; they are the one code path of
``Pipeline.search`` / ``Pipeline.ask``, ``mmrag search`` / ``mmrag ask`` and the HTTP API.

With a reranker configured, retrieval returns the plan's last-stage candidates (e.g. 10 for
``… -> full@10``) and the reranker keeps the best ``k``; without one, retrieval returns ``k``.

Example:
    >>> from mmrag.pipeline.pipeline import Pipeline                       # doctest: +SKIP
    >>> rag = Pipeline.from_config("mmrag.toml")                           # doctest: +SKIP
    >>> answer = rag.ask("How much did revenue grow in 2024?")             # doctest: +SKIP
    >>> print(answer.text)                                                 # doctest: +SKIP
    Revenue grew 12% [1].
    >>> [hit.citation() for hit in answer.citations]                       # doctest: +SKIP
    ['acme_solar_annual_report_2024.pdf p.2 (label 1)']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmrag.errors import ConfigError
from mmrag.pipeline.regions import REGIONS_MAX_K, attach_regions
from mmrag.pipeline.startup import load_models
from mmrag.pipeline.word_regions import attach_word_regions
from mmrag.store.plan import Plan
from mmrag.types import Answer, Hit

if TYPE_CHECKING:
    from mmrag.embedders.base import QueryLike
    from mmrag.pipeline.pipeline import Pipeline
    from mmrag.store.records import SearchFilter

__all__ = ["NOTHING_RETRIEVED", "Retrieved", "answer", "rerank_roles", "retrieve"]


def _load(seconds: float) -> dict[str, float]:
    """``{"load": seconds}`` when a model loaded during the call, else nothing."""
    return {"load": seconds} if seconds > 0 else {}


@dataclass
class Retrieved:
    """Hits for a query and the seconds each stage took (``retrieve``, ``rerank``; ``load``
    when a model loaded during the call, kept out of the others)."""

    hits: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)


#: The pipeline component that runs each rerank stage of a plan.
_ROLE_OF = {"rerank": "reranker", "text_rerank": "text_reranker"}


def rerank_roles(pipeline: Pipeline, plan: str | Plan | None = None) -> list[str]:
    """The pipeline's reranking components (``reranker``, ``text_reranker``) a search with
    ``plan`` (default: the config's) runs: its rerank stages' (``text_rerank@K`` ,
    ``rerank@K``), else the ``[reranker]`` when one is configured.

    A plan's ``rerank@K`` stage without a ``[reranker]`` raises
    :class:`~mmrag.errors.ConfigError`.
    """
    resolved = pipeline.plan(plan) if not isinstance(plan, Plan) else plan
    if not resolved.rerank:
        return ["reranker"] if pipeline.reranker is not None else []
    used = {stage.using for stage in resolved.rerank}
    if "rerank" in used and pipeline.reranker is None:
        raise ConfigError(
            f"plan {resolved} has a 'rerank' stage but no reranker is configured; add a "
            "[reranker] section (e.g. type = \"monoqwen\") or use 'text_rerank@K'"
        )
    return [role for stage, role in _ROLE_OF.items() if stage in used]


def retrieve(
    pipeline: Pipeline,
    query: QueryLike,
    *,
    k: int | None = None,
    plan: str | None = None,
    filter: SearchFilter | None = None,
    rerank: bool = True,
    regions: bool | None = None,
) -> Retrieved:
    """Embed the query, run the retrieval plan, then its rerank stages (``text_rerank@K``,
    ``rerank@K``) or, when it has none, the pipeline's reranker (if any). ``rerank=False``
    skips every rerank stage.

    ``regions`` sets each final hit's region citations (:mod:`mmrag.pipeline.regions`:
    multi-vector embedders with a patch grid; then :mod:`mmrag.pipeline.word_regions`: the
    page's words holding the query's terms); ``None``: when ``k`` is at most
    :data:`~mmrag.pipeline.regions.REGIONS_MAX_K`. They are timed as ``regions``.
    """
    from mmrag.embedders.base import Query
    from mmrag.pipeline.retrieval import Retriever
    from mmrag.rerankers.base import RerankContext

    k = k or pipeline.config.retrieval.top_k
    if filter is not None:
        filter = filter.canonical()
    resolved = pipeline.plan(plan)
    roles = rerank_roles(pipeline, resolved) if rerank else []
    # (role, how many it keeps): the plan's rerank stages, else the [reranker] keeping k.
    stages = [(_ROLE_OF[s.using], s.limit) for s in resolved.rerank] or [(r, k) for r in roles]
    stages = stages if rerank else []
    coerced = Query.coerce(query)
    store = pipeline.store  # opened first: a locked or damaged store fails before a model loads
    loaded = load_models(pipeline, ["embedder", *roles])
    start = time.perf_counter()
    (embedding,) = pipeline.embedder.embed_queries([coerced])
    retriever = Retriever(
        store,
        resolved,
        top_k=None if stages else k,
        pooler=pipeline.pooler,
        assets=pipeline.assets,
        hnsw_ef=pipeline.config.retrieval.hnsw_ef,
    )
    hits = retriever.search(embedding, text=coerced.text, filter=filter)
    timings = {**_load(sum(loaded.values())), "retrieve": time.perf_counter() - start}
    if stages:
        start = time.perf_counter()
        context = RerankContext(query_embedding=embedding, store=pipeline.store)
        for role, keep in stages:
            component = getattr(pipeline, role)
            hits = component.rerank(coerced, hits, top_n=keep, context=context)
        timings["rerank"] = time.perf_counter() - start
    hits = hits[:k]
    if regions or (regions is None and k <= REGIONS_MAX_K):
        start = time.perf_counter()
        hits = attach_word_regions(coerced.text, attach_regions(store, embedding, hits))
        timings["regions"] = time.perf_counter() - start
    return Retrieved(hits=hits, timings=timings)


def answer(
    pipeline: Pipeline,
    question: str,
    *,
    k: int | None = None,
    plan: str | None = None,
    filter: SearchFilter | None = None,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Answer ``question`` from the index: retrieve → rerank → generate, with citations.

    ``Answer.timings`` has ``retrieve``, ``rerank`` (0 without a reranker), ``generate`` and
    ``total`` in seconds, and ``load`` when models had to load during this call (not counted
    in the stages; ``total`` includes it).

    When nothing is retrieved (an empty index, a filter nothing matches) the generator is not
    run: the answer's text says so (and goes to ``on_token``), with no sources. ``k`` (default:
    ``retrieval.top_k``, at most the generator's ``max_images``) pages are retrieved; a ``k``
    over ``max_images`` retrieves ``k`` but the generator is shown the best ``max_images``, and
    ``Answer.notes`` says so.
    """
    if not question or not question.strip():
        raise ConfigError("the question is empty")
    generator = pipeline.generator
    if generator is None:
        raise ConfigError(
            "no generator is configured: add a [generator] section, e.g. type = "
            '"transformers", init_parameters = { model = "HuggingFaceTB/SmolVLM-256M-Instruct" }'
        )
    limit = getattr(getattr(generator, "settings", None), "max_images", None)
    notes = []
    if k is None and isinstance(limit, int):
        k = min(pipeline.config.retrieval.top_k, limit)
    elif k is not None and isinstance(limit, int) and k > limit:
        notes.append(
            f"k={k} pages were retrieved, but the generator is shown at most {limit} "
            f"(generator.init_parameters.max_images = {limit}): the answer is from the best "
            f"{limit}. Raise max_images to show it more."
        )
    start = time.perf_counter()
    retrieved = retrieve(pipeline, question, k=k, plan=plan, filter=filter)
    if not retrieved.hits:
        return _nothing_retrieved(retrieved, start, filter, on_token)
    loaded = load_models(pipeline, ["generator"])  # only once there is something to answer from
    generated_at = time.perf_counter()
    result = generator.generate(question, retrieved.hits, on_token=on_token)
    end = time.perf_counter()
    timings = {
        **_load(retrieved.timings.get("load", 0.0) + sum(loaded.values())),
        "retrieve": retrieved.timings["retrieve"],
        "rerank": retrieved.timings.get("rerank", 0.0),
        "generate": end - generated_at,
        "total": end - start,
    }
    return Answer(
        text=result.text,
        citations=result.citations,
        usage=result.usage,
        timings=timings,
        sources=result.sources,
        notes=[*result.notes, *notes],
    )


#: ``Answer.text`` when no page or frame was retrieved (the generator is not run).
NOTHING_RETRIEVED = (
    "No indexed page or frame matched, so there is nothing to answer from: no answer was generated."
)


def _nothing_retrieved(
    retrieved: Retrieved,
    start: float,
    filter: SearchFilter | None,
    on_token: Callable[[str], None] | None,
) -> Answer:
    if filter is not None and not filter.is_empty:
        note = "Nothing matches the filter (sources, modality, metadata or tenant) in the index."
    else:
        note = "The index is empty: index some files first (e.g. `mmrag index PATH`)."
    if on_token is not None:
        on_token(NOTHING_RETRIEVED)
    timings = {
        **_load(retrieved.timings.get("load", 0.0)),
        "retrieve": retrieved.timings["retrieve"],
        "rerank": retrieved.timings.get("rerank", 0.0),
        "generate": 0.0,
        "total": time.perf_counter() - start,
    }
    return Answer(text=NOTHING_RETRIEVED, timings=timings, notes=[note])
