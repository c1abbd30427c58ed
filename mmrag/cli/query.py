"""The commands that query the index: ``mmrag search`` (ranked hits with their stage scores),
``mmrag ask`` (an answer with its numbered sources) and ``mmrag eval`` (retrieval plans scored
on a BEIR-layout dataset)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mmrag.cli._common import ConfigOption, check_plan, fail, guard, load_config, open_pipeline

__all__ = ["FilterOption", "ask", "build_filter", "evaluate", "print_sources", "search"]

PlanOption = Annotated[
    str | None, typer.Option("--plan", help="Retrieval plan, e.g. 'global@200 -> full@10'.")
]
SourceOption = Annotated[
    list[str] | None, typer.Option("--source", help="Only these sources (repeatable).")
]
ModalityOption = Annotated[
    list[str] | None,
    typer.Option("--modality", help="Only pdf_page / image / video_frame (repeatable)."),
]
FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        "-f",
        help="Only items whose metadata match: key=value, key>=N, key<=N (repeatable; a "
        "repeated key=value matches any of its values).",
    ),
]


def build_filter(
    source: list[str] | None, modality: list[str] | None, filters: list[str] | None
) -> Any:
    """The :class:`~mmrag.store.records.SearchFilter` of the ``--source``, ``--modality``
    and ``--filter`` options (exit status 2 with the parser's message when malformed)."""
    from mmrag.errors import ConfigError
    from mmrag.store.records import SearchFilter

    try:
        base = SearchFilter.build(source=source or None, modality=modality or None)
        return SearchFilter.parse(filters or [], base=base)
    except ConfigError as exc:
        fail(str(exc))


def search(
    query: Annotated[str, typer.Argument(help="The text query.")],
    config: ConfigOption = None,
    k: Annotated[int, typer.Option("--k", "-k", help="Number of hits.")] = 5,
    plan: PlanOption = None,
    source: SourceOption = None,
    modality: ModalityOption = None,
    filters: FilterOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """Search the index and print the ranked pages / frames with their stage scores."""
    cfg = load_config(config)
    check_plan(plan)
    where = build_filter(source, modality, filters)
    with open_pipeline(cfg) as pipe:
        hits = guard(lambda: pipe.search(query, k=k, plan=plan, filter=where))
    if as_json:
        typer.echo(json.dumps([hit.to_dict() for hit in hits], indent=2))
        return
    if not hits:
        typer.echo("no hits")
    for rank, hit in enumerate(hits, 1):
        stages = ", ".join(f"{name} {score:.3f}" for name, score in hit.stage_scores.items())
        typer.echo(f"{rank:2d}. {hit.score:8.3f}  {hit.citation()}  [{stages}]")


def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    config: ConfigOption = None,
    k: Annotated[
        int | None,
        typer.Option("--k", "-k", help="Pages / frames shown to the generator (default: config)."),
    ] = None,
    plan: PlanOption = None,
    source: SourceOption = None,
    modality: ModalityOption = None,
    filters: FilterOption = None,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Print the answer as it is generated.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Retrieve, rerank and generate an answer with citations to page and video second."""
    cfg = load_config(config)
    check_plan(plan)
    where = build_filter(source, modality, filters)
    streaming = stream and not as_json

    def on_token(piece: str) -> None:
        typer.echo(piece, nl=False)

    with open_pipeline(cfg) as pipe:
        result = guard(
            lambda: pipe.ask(
                question, k=k, plan=plan, filter=where, on_token=on_token if streaming else None
            )
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    typer.echo("" if streaming else result.text)
    print_sources(result)


def print_sources(result: Any) -> None:
    """The numbered sources of an Answer (cited ones starred), then the stage timings."""
    cited = {hit.id for hit in result.citations}
    typer.echo("\nSources (* cited):")
    if not result.sources:
        typer.echo("  none: the index has no matching pages")
    for number, hit in enumerate(result.sources, 1):
        stages = ", ".join(f"{name} {score:.3f}" for name, score in hit.stage_scores.items())
        mark = "*" if hit.id in cited else " "
        typer.echo(f" {mark}[{number}] {hit.citation()}  score {hit.score:.3f}  [{stages}]")
    timings = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.timings.items())
    typer.echo(f"Timings: {timings}")


def evaluate(
    dataset: Annotated[
        Path, typer.Argument(help="A BEIR-layout dataset (corpus, queries, qrels).")
    ],
    config: ConfigOption = None,
    plans: Annotated[
        list[str] | None, typer.Option("--plan", help="A plan to compare (repeatable).")
    ] = None,
    ks: Annotated[list[int] | None, typer.Option("--k", help="Cut-offs (repeatable).")] = None,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", help="Evaluate only the first N queries.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate retrieval plans side by side: NDCG@k, Recall@k, MRR@10, latency, QPS."""
    cfg = load_config(config)
    with open_pipeline(cfg) as pipe:
        report = guard(
            lambda: pipe.evaluate(dataset, plans=plans, ks=ks or (5, 10), max_queries=max_queries)
        )
    typer.echo(report.to_json() if as_json else report.table())
