"""What a backend translates into its engine's types: one query, and a filter's conditions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmrag.store.contract import METADATA_FIELD, TENANT_FIELD
from mmrag.store.plan import QueryNode
from mmrag.store.records import QueryVector, SearchFilter

__all__ = ["EngineQuery", "filter_matches", "filter_ranges"]


def filter_matches(filter: SearchFilter) -> list[tuple[str, tuple[Any, ...]]]:
    """The payload keys a filter matches and the values (any of) each may take, in the
    payload's own key names; the backends translate them to their engine's conditions."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    for key, values in (
        ("source", filter.sources),
        ("modality", filter.modalities),
        ("content_id", filter.content_ids),
    ):
        if values:
            out.append((key, tuple(values)))
    if filter.tenant is not None:
        out.append((TENANT_FIELD, (filter.tenant,)))
    for key, value in filter.metadata.items():
        values = value if isinstance(value, tuple) else (value,)
        out.append((f"{METADATA_FIELD}.{key}", values))
    return out


def filter_ranges(filter: SearchFilter) -> list[tuple[str, tuple[float | None, float | None]]]:
    """The inclusive numeric ranges of a filter (the page range, user ranges), by payload key."""
    out: list[tuple[str, tuple[float | None, float | None]]] = []
    if filter.page_range is not None:
        out.append(("page", filter.page_range))
    out.extend((f"{METADATA_FIELD}.{key}", bounds) for key, bounds in filter.ranges.items())
    return out


@dataclass(frozen=True)
class EngineQuery:
    """One engine query: the plan tree, the query vector of each name, the filter, options.

    ``exact`` forces exact search at every stage; ``hnsw_ef`` sets the HNSW candidate list of
    every HNSW stage (at least the stage's limit); ``None`` keeps the engine's default.
    """

    root: QueryNode
    vectors: Mapping[str, QueryVector]
    filter: SearchFilter | None = None
    with_payload: bool = True
    exact: bool = False
    hnsw_ef: int | None = None
