"""Evaluate retrieval plans side by side on a retrieval dataset (BEIR folders, and ViDoRe's
Hugging Face datasets).

Modules: ``datasets`` (the BEIR folder layout), ``hub`` (Hugging Face datasets in ViDoRe's
layouts, on the Hub or copied locally; :func:`open_dataset` reads any of them), ``metrics``,
``report``, ``harness`` (indexing through the indexing job, then the plans), and the codec table
(``codec_table``, ``codec_corpus``, ``codec_report``): :func:`codec_table` measures every storage
codec, ``full`` pooling and document-token choice on the same embeddings, against exact float32
MaxSim, on a labelled dataset or a folder of unlabelled pages.

A BEIR folder holds ``corpus.jsonl`` (one page per line: ``_id`` and an ``image`` path, or a
``pdf`` path and a 1-based ``page``; optional ``text``), ``queries.jsonl`` (``_id``, ``text``)
and ``qrels/<split>.tsv`` (``query-id  corpus-id  score``, graded relevance). Paths are relative
to the dataset folder. For the Hugging Face layouts see :mod:`mmrag.pipeline.evaluate.hub`.

:func:`evaluate` indexes the corpus with an embedder into a store (skipping pages already
there), embeds the queries once, then runs each plan over every query, one at a time, and
reports NDCG@k and Recall@k (as pytrec_eval / BEIR compute them: linear gains, log2 discount),
MRR@10, and the search latency p50 / p95 and QPS of each plan (query embedding excluded: it is
the same for every plan). :meth:`EvalReport.table` prints plans as rows and metrics as columns;
:meth:`EvalReport.to_json` gives the same as JSON.

Example:
    >>> from mmrag.pipeline.evaluate import ndcg_at_k, recall_at_k, mrr_at_k
    >>> qrels = {"d1": 2, "d2": 1}
    >>> round(ndcg_at_k(["d2", "x", "d1"], qrels, 3), 4)
    0.7602
    >>> recall_at_k(["d2", "x", "d1"], qrels, 2), mrr_at_k(["x", "d1"], qrels, 10)
    (0.5, 0.5)
"""

from mmrag.pipeline.evaluate.codec_report import CodecReport, CodecRow, CodecSetting
from mmrag.pipeline.evaluate.codec_table import codec_table, codec_table_for
from mmrag.pipeline.evaluate.datasets import BEIR_ID_KEY, BeirDataset, CorpusEntry, load_beir
from mmrag.pipeline.evaluate.harness import evaluate, index_corpus, run_plan
from mmrag.pipeline.evaluate.hub import load_folder, load_hub, open_dataset
from mmrag.pipeline.evaluate.metrics import (
    evaluate_run,
    latency_stats,
    metric_names,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)
from mmrag.pipeline.evaluate.report import EvalReport, PlanResult

__all__ = [
    "BEIR_ID_KEY",
    "BeirDataset",
    "CodecReport",
    "CodecRow",
    "CodecSetting",
    "CorpusEntry",
    "EvalReport",
    "PlanResult",
    "codec_table",
    "codec_table_for",
    "evaluate",
    "evaluate_run",
    "index_corpus",
    "latency_stats",
    "load_beir",
    "load_folder",
    "load_hub",
    "metric_names",
    "mrr_at_k",
    "ndcg_at_k",
    "open_dataset",
    "recall_at_k",
    "run_plan",
]
