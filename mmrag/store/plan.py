"""The retrieval-plan syntax: ``global@200 -> rows@50 -> full@10``.

A plan is a list of stages, each a named vector of the collection and how many candidates that
stage keeps. The first stage searches the whole collection; each later stage rescores only the
previous stage's candidates (a nested Qdrant prefetch). ``+`` joins stages fused with RRF, e.g.
``(dense@50 + text@50) -> full@10``.

After the store's stages come, optionally, **rerank stages** run by the pipeline in Python, each
reordering the previous stage's candidates and keeping its ``K``: ``text_rerank@K`` (a text
cross-encoder over the page text, ``[text_reranker]``) and ``rerank@K`` (the ``[reranker]``, e.g.
an MLLM), in any order: ``global@200 -> rows@50 -> full@20 -> text_rerank@10 -> rerank@5``.
The store never sees them (:attr:`Plan.stages`); they are :attr:`Plan.rerank`.

Example:
    >>> from mmrag.store.plan import parse_plan
    >>> plan = parse_plan("global@200 -> rows@50 -> full@10")
    >>> [(s.using, s.limit) for s in plan.stages]
    [('global', 200), ('rows', 50), ('full', 10)]
    >>> str(plan)
    'global@200 -> rows@50 -> full@10'
    >>> plan = parse_plan("full@20 -> text_rerank@5")
    >>> [str(s) for s in plan.stages], [str(s) for s in plan.rerank], plan.limit
    (['full@20'], ['text_rerank@5'], 5)
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from mmrag.errors import ConfigError

__all__ = ["RERANK_STAGES", "VECTOR_NAMES", "Plan", "Stage", "parse_plan"]

#: Named vectors a collection can hold (see DESIGN.md "Store"), and ``tokens``: its token index
#: (:mod:`mmrag.store.token_index`).
VECTOR_NAMES: tuple[str, ...] = (
    "dense",
    "global",
    "rows",
    "cols",
    "tiles",
    "smooth_rows",
    "hier",
    "distinct",
    "muvera",
    "full",
    "text",
    "tokens",
)

#: Stages the pipeline runs after the store's: a text cross-encoder, the configured reranker.
RERANK_STAGES: tuple[str, ...] = ("text_rerank", "rerank")

_STAGE = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*@\s*(\d+)\s*$")


@dataclass(frozen=True)
class Stage:
    """One stage: search ``using`` (a vector name), keep ``limit`` candidates.

    A stage with ``fuse`` set is an RRF fusion of those stages, each searched independently.
    """

    using: str
    limit: int
    fuse: tuple[Stage, ...] = ()

    def __str__(self) -> str:
        if self.fuse:
            return "(" + " + ".join(str(s) for s in self.fuse) + ")"
        return f"{self.using}@{self.limit}"


@dataclass(frozen=True)
class Plan:
    """A parsed retrieval plan; ``str(plan)`` gives back the canonical arrow syntax.

    ``stages`` run in the store (one nested-prefetch query); ``rerank`` are the rerank stages
    the pipeline runs on the store's candidates afterwards (see the module docstring).
    """

    stages: tuple[Stage, ...]
    rerank: tuple[Stage, ...] = ()

    @property
    def limit(self) -> int:
        """How many hits the plan returns (the last stage's limit, rerank stages included)."""
        return (self.rerank or self.stages)[-1].limit

    @property
    def search_limit(self) -> int:
        """How many candidates the store's part of the plan returns."""
        return self.stages[-1].limit

    @property
    def store_plan(self) -> Plan:
        """The plan without its rerank stages (what the store runs)."""
        return Plan(stages=self.stages) if self.rerank else self

    @property
    def vectors(self) -> tuple[str, ...]:
        """Every vector name the plan reads, in order of first use."""
        names: list[str] = []
        for stage in self.stages:
            for s in stage.fuse or (stage,):
                if s.using not in names:
                    names.append(s.using)
        return tuple(names)

    def __str__(self) -> str:
        return " -> ".join(str(s) for s in (*self.stages, *self.rerank))


def _parse_stage(text: str, plan: str) -> Stage:
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        parts = [_parse_stage(p, plan) for p in text[1:-1].split("+")]
        if len(parts) < 2:
            raise ConfigError(f"plan {plan!r}: a fused stage needs two or more parts joined by '+'")
        return Stage(using="rrf", limit=max(p.limit for p in parts), fuse=tuple(parts))
    match = _STAGE.match(text)
    if not match:
        raise ConfigError(
            f"plan {plan!r}: cannot read stage {text!r}; write stages as NAME@K joined by '->', "
            "e.g. 'global@200 -> rows@50 -> full@10'"
        )
    using, limit = match.group(1), int(match.group(2))
    if using not in VECTOR_NAMES and using not in RERANK_STAGES:
        raise ConfigError(
            f"plan {plan!r}: unknown stage {using!r}; allowed: vectors "
            f"{', '.join(VECTOR_NAMES)}, then rerank stages {', '.join(RERANK_STAGES)}"
        )
    if limit < 1:
        raise ConfigError(f"plan {plan!r}: stage {text!r} must keep at least 1 candidate")
    return Stage(using=using, limit=limit)


def parse_plan(text: str) -> Plan:
    """Parse the arrow syntax; raises :class:`~mmrag.errors.ConfigError` naming the problem."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            "a retrieval plan cannot be empty; e.g. 'global@200 -> rows@50 -> full@10'"
        )
    stages = tuple(_parse_stage(part, text) for part in text.split("->"))
    for stage in stages:
        if any(m.using in RERANK_STAGES for m in stage.fuse):
            raise ConfigError(f"plan {text!r}: a rerank stage cannot be fused with '+'")
    first_rerank = next((i for i, s in enumerate(stages) if s.using in RERANK_STAGES), len(stages))
    search, rerank = stages[:first_rerank], stages[first_rerank:]
    if not search:
        raise ConfigError(
            f"plan {text!r}: a plan starts with a search stage (a vector, e.g. 'full@20'); "
            "rerank stages reorder its candidates"
        )
    misplaced = [str(s) for s in rerank if s.using not in RERANK_STAGES]
    if misplaced:
        raise ConfigError(
            f"plan {text!r}: search stage(s) {', '.join(misplaced)} after a rerank stage; "
            "the store's stages come first, then the rerank stages"
        )
    for before, after in itertools.pairwise(stages):
        if after.limit > before.limit:
            raise ConfigError(
                f"plan {text!r}: stage {after} keeps more candidates than the stage before it "
                f"({before}); each stage can only narrow the candidates down"
            )
    return Plan(stages=search, rerank=rerank)


# -- plans as engine queries (nested prefetch) -----------------------------------------------


@dataclass(frozen=True)
class QueryNode:
    """One node of a nested-prefetch query: search ``using`` (or fuse ``children`` with RRF)
    over the candidates of ``children`` (none: the whole collection), keeping ``limit``."""

    using: str | None
    limit: int
    children: tuple[QueryNode, ...] = ()

    @property
    def is_fusion(self) -> bool:
        """True for an RRF fusion of the children."""
        return self.using is None


def plan_tree(plan: Plan) -> QueryNode:
    """The nested-prefetch tree of a plan: the last stage at the root, the first at the leaves.

    Each stage rescoring the previous stage's candidates is a node whose child is the previous
    stage. A fused stage ``(a@50 + b@50)`` is an RRF node whose children are ``a`` and ``b``,
    each over the previous stage's candidates.

    Example:
        >>> from mmrag.store.plan import parse_plan
        >>> from mmrag.store.plan import plan_tree
        >>> root = plan_tree(parse_plan("global@200 -> rows@50 -> full@10"))
        >>> root.using, root.children[0].using, root.children[0].children[0].limit
        ('full', 'rows', 200)
    """
    node: QueryNode | None = None
    for stage in plan.stages:
        node = _stage_node(stage, node)
    assert node is not None
    return node


def _stage_node(stage: Stage, below: QueryNode | None) -> QueryNode:
    children = () if below is None else (below,)
    if stage.fuse:
        members = tuple(_stage_node(member, below) for member in stage.fuse)
        return QueryNode(using=None, limit=stage.limit, children=members)
    return QueryNode(using=stage.using, limit=stage.limit, children=children)
