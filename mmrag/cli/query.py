"""The commands that query the index: ``mmrag search`` (ranked hits with their stage scores),
``mmrag ask`` (an answer with its numbered sources) and ``mmrag eval`` (retrieval plans scored
on a BEIR folder or a Hugging Face dataset in ViDoRe's layouts)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from mmrag.cli._common import (
    ConfigOption,
    check_plan,
    fail,
    guard,
    load_config,
    load_step,
    open_pipeline,
)

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
    explain: Annotated[
        str | None,
        typer.Option(
            "--explain",
            metavar="OUT_DIR",
            help="Write each hit's page with its similarity heat map and region boxes "
            "(one PNG per hit) into OUT_DIR.",
        ),
    ] = None,
) -> None:
    """Search the index and print the ranked pages / frames with their stage scores (and the
    page regions that carry each match, for multi-vector embedders with a patch grid)."""
    cfg = load_config(config)
    check_plan(plan)
    where = build_filter(source, modality, filters)
    pictures: list[Any] = []
    from mmrag.pipeline.rag import rerank_roles

    with open_pipeline(cfg) as pipe:
        guard(lambda: pipe.store)  # a locked or damaged store fails before a model loads
        load_step(pipe, "embedder", *guard(lambda: rerank_roles(pipe, plan)))
        regions = True if explain else None
        hits = guard(lambda: pipe.search(query, k=k, plan=plan, filter=where, regions=regions))
        if explain:
            pictures = guard(lambda: _explain(pipe, query, hits, explain))
    if as_json:
        typer.echo(json.dumps([hit.to_dict() for hit in hits], indent=2))
    else:
        if not hits:
            typer.echo("no hits")
        for rank, hit in enumerate(hits, 1):
            stages = ", ".join(f"{name} {score:.3f}" for name, score in hit.stage_scores.items())
            typer.echo(f"{rank:2d}. {hit.score:8.3f}  {hit.citation()}  [{stages}]")
            patches = [r for r in hit.regions if r.kind == "patches"][:3]
            for region in patches + [r for r in hit.regions if r.kind == "words"][:2]:
                unit = "pt" if hit.item.modality.value == "pdf_page" else "px"
                label = "region" if region.kind == "patches" else "words "
                typer.echo(
                    f"      {label} ({region.x0:.0f}, {region.y0:.0f}) - "
                    f"({region.x1:.0f}, {region.y1:.0f}) {unit}  score {region.score:.3f}"
                )
    for path in pictures:
        typer.echo(f"explained: {path}", err=as_json)


def _explain(pipe: Any, query: str, hits: list[Any], out_dir: str) -> list[Any]:
    """The ``--explain`` pictures of ``hits`` (see :mod:`mmrag.pipeline.explain`)."""
    from mmrag.embedders.base import Query
    from mmrag.pipeline.explain import explain_hits

    (embedding,) = pipe.embedder.embed_queries([Query.coerce(query)])
    return explain_hits(pipe.store, pipe.assets, embedding, hits, out_dir)


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

    from mmrag.pipeline.rag import rerank_roles

    with open_pipeline(cfg) as pipe:
        guard(lambda: pipe.store)  # a locked or damaged store fails before a model loads
        # The generator loads only if pages are found.
        load_step(pipe, "embedder", *guard(lambda: rerank_roles(pipe, plan)))
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
    for note in getattr(result, "notes", ()):
        typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)


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
        str,
        typer.Argument(
            help="A dataset folder (BEIR, parquet or save_to_disk) or a Hugging Face dataset id "
            "such as vidore/esg_reports_v2.",
            metavar="DATASET",
            show_default=False,
        ),
    ],
    config: ConfigOption = None,
    split: Annotated[
        str, typer.Option("--split", help="The split: qrels/<split>.tsv, or the hub's split.")
    ] = "test",
    plans: Annotated[
        list[str] | None, typer.Option("--plan", help="A plan to compare (repeatable).")
    ] = None,
    ks: Annotated[list[int] | None, typer.Option("--k", help="Cut-offs (repeatable).")] = None,
    max_queries: Annotated[
        int | None, typer.Option("--max-queries", help="Evaluate only the first N queries.")
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar while indexing.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    codecs: Annotated[
        bool,
        typer.Option(
            "--codecs",
            help="Print the codec table instead: every storage codec, full pooling and "
            "document-token choice, on the dataset or on a folder of unlabelled pages.",
        ),
    ] = False,
    codec: Annotated[
        list[str] | None,
        typer.Option("--codec", help="With --codecs: only these codecs (repeatable)."),
    ] = None,
    pool_factor: Annotated[
        list[int] | None,
        typer.Option(
            "--full-pool-factor", help="With --codecs: only these full_pool_factor values."
        ),
    ] = None,
    document_tokens: Annotated[
        list[str] | None,
        typer.Option(
            "--document-tokens", help="With --codecs: only 'all' or 'visual' (repeatable)."
        ),
    ] = None,
    queries: Annotated[
        int,
        typer.Option(
            "--queries", help="With --codecs on unlabelled pages: queries sampled from them."
        ),
    ] = 32,
) -> None:
    """Evaluate retrieval plans side by side: NDCG@k, Recall@k, MRR@10, latency, QPS.

    The corpus is indexed into its own collection (<collection>-eval-<dataset>; pages already
    there are skipped), then every plan runs every judged query. Metrics are averaged over the
    queries with a relevant page; relevance is graded (NDCG uses the grades, as pytrec_eval).

    With --codecs, the codec table instead: the pages are embedded once and written into one
    temporary embedded store per setting (each codec, full_pool_factor 1/2/3, and for
    ColPali-family embedders all or visual document tokens); each row gives NDCG@k (labelled
    data), Recall@k and top-1 agreement against exact float32 MaxSim, KB per page on disk and
    in RAM, p50 and QPS of the configured plan. DATASET may then also be a folder of your own
    unlabelled pages (PDFs, images): queries are sampled from them (text-layer snippets, else
    crops of the page image) and quality is agreement with exact float32 MaxSim.

    \b
    Dataset layouts:
    1. BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
       corpus.jsonl   {"_id": "p1", "image": "pages/p1.png"}  or  {"_id": "p2",
                      "pdf": "docs/a.pdf", "page": 3}; optional "text" (paths relative
                      to the folder)
       queries.jsonl  {"_id": "q1", "text": "What was the 2024 revenue?"}
       qrels/test.tsv query-id <TAB> corpus-id <TAB> score (header optional; 0 = not
                      relevant, higher = more relevant)
    2. Hugging Face, ViDoRe v2 / BEIR (e.g. vidore/esg_reports_v2): tables corpus
       (corpus-id, image), queries (query-id, query), qrels (query-id, corpus-id, score)
    3. Hugging Face, ViDoRe v1 (e.g. vidore/docvqa_test_subsampled): one table with
       query, image, image_filename; a query is relevant to each page it is asked of
    Layouts 2 and 3 come from the Hub by id (or its cache, with HF_HUB_OFFLINE=1) or
    from a local copy: parquet files as on the Hub (corpus/, queries/, qrels/ folders
    for layout 2), the split's files named <split>-*.parquet or in a folder <split>/;
    or a folder written by save_to_disk. Images are stored as bytes and read like
    image files (EXIF orientation, RGB). Needs the datasets package:
    pip install 'mmrag\\[eval]'.
    """
    from mmrag.pipeline.evaluate import open_dataset

    if codecs or codec or pool_factor or document_tokens:
        options = {
            "codecs": codec,
            "pool_factors": pool_factor,
            "document_tokens": document_tokens,
            "ks": ks or (5, 10),
            "split": split,
            "max_queries": max_queries,
            "queries": queries,
        }
        _codec_table(dataset, load_config(config), options, progress=progress, as_json=as_json)
        return
    data = guard(lambda: open_dataset(dataset, split))
    cfg = load_config(config)
    bar = _progress_bar(len(data.corpus), enabled=progress)
    try:
        with open_pipeline(cfg) as pipe:
            report = guard(
                lambda: pipe.evaluate(
                    data,
                    plans=plans,
                    ks=ks or (5, 10),
                    max_queries=max_queries,
                    on_progress=bar.update,
                )
            )
    finally:
        bar.close()
    typer.echo(report.to_json() if as_json else report.table())


def _codec_table(
    dataset: str, cfg: Any, options: dict[str, Any], *, progress: bool, as_json: bool
) -> None:
    """``mmrag eval --codecs``: the codec table of the pipeline's embedder on ``dataset``."""
    from mmrag.pipeline.evaluate.codec_table import codec_table_for

    bar = _progress_bar(None, enabled=progress, desc="embedding corpus")
    try:
        with open_pipeline(cfg) as pipe:
            load_step(pipe, "embedder")
            report = guard(
                lambda: codec_table_for(pipe, dataset, on_progress=bar.update, **options)
            )
    finally:
        bar.close()
    typer.echo(report.to_json() if as_json else report.table())


def _progress_bar(total: int | None, *, enabled: bool, desc: str = "indexing corpus") -> Any:
    """A tqdm bar on stderr for the corpus pages (indexed, skipped or failed)."""
    import sys

    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=" pages",
        desc=desc,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=not enabled,
    )
