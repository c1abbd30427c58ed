"""Evaluation datasets in the Hugging Face layouts ViDoRe publishes, read with ``datasets``.

Two layouts, with page images stored as bytes in the tables:

- **ViDoRe v1 (question answering)**, e.g. ``vidore/docvqa_test_subsampled``: one table, one
  row per question and page: ``query`` (empty for a page no question is about), ``image`` and
  ``image_filename`` (the page's id: rows naming the same file are the same page; without the
  column each row is its own page). A question is relevant (grade 1) to every page it is asked
  of; repeated questions count once (as ViDoRe's own BEIR copies of these sets do).
- **BEIR (ViDoRe v2)**, e.g. ``vidore/esg_reports_v2``: three tables (configs on the Hub)
  ``corpus`` (``corpus-id``, ``image``; or ``text``), ``queries`` (``query-id``, ``query``) and
  ``qrels`` (``query-id``, ``corpus-id``, ``score``: graded relevance).

:func:`load_hub` reads a dataset on the Hub (or from the ``datasets`` cache when
``HF_HUB_OFFLINE`` is set); :func:`load_folder` a local copy of one: parquet files as on the Hub
(``corpus/``, ``queries/``, ``qrels/`` folders for BEIR; any other parquet files for v1), where
the split's files are those named ``<split>.parquet`` or ``<split>-*.parquet``
(``test-00000-of-00001.parquet``) or kept in a folder named ``<split>``; or a folder written by
``save_to_disk`` (a ``DatasetDict`` of splits, or of ``corpus`` / ``queries`` / ``qrels``).
In the BEIR layout the qrels are per split; a corpus or queries table of a single split serves
every split (ViDoRe v2 ships only ``test``).

Tables are memory-mapped: a page's bytes are read when it is indexed, never all at once.

Example:
    >>> from mmrag.pipeline.evaluate.hub import load_hub                       # doctest: +SKIP
    >>> ds = load_hub("vidore/esg_reports_v2", split="test")                    # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.pipeline.evaluate.datasets import BeirDataset, CorpusEntry, load_beir

__all__ = ["BEIR_TABLES", "load_folder", "load_hub", "open_dataset"]

logger = logging.getLogger(__name__)

#: The three tables of the BEIR layout.
BEIR_TABLES = ("corpus", "queries", "qrels")
_CORPUS_ID = ("corpus-id", "_id", "id", "corpus_id", "docid")
_QUERY_ID = ("query-id", "_id", "id", "query_id", "qid")
_QUERY_TEXT = ("query", "text", "question")


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError(
            "reading Hugging Face datasets (hub ids, parquet, save_to_disk folders) needs the "
            "`datasets` package: pip install 'mmrag[eval]'"
        ) from None
    return datasets


class _Blob:
    """The bytes of one row's image, read from a memory-mapped table on demand."""

    __slots__ = ("column", "root", "row", "table")

    def __init__(self, table: Any, column: str, row: int, root: Path | None) -> None:
        self.table, self.column, self.row, self.root = table, column, row, root

    def __call__(self) -> bytes:
        value = self.table[self.row][self.column]
        if isinstance(value, Mapping):  # the Image feature undecoded: {"bytes", "path"}
            if value.get("bytes"):
                return bytes(value["bytes"])
            value = value.get("path")
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, str) and value:
            path = Path(value) if self.root is None else self.root / value
            try:
                return path.read_bytes()
            except OSError as error:
                raise ConfigError(
                    f"row {self.row}: image file {value!r} cannot be read ({error.strerror})"
                ) from None
        return b""  # no image: reported as an empty page


def _column(table: Any, names: Sequence[str], what: str, where: str) -> str:
    for name in names:
        if name in table.column_names:
            return name
    raise ConfigError(
        f"{where}: no {what} column (looked for {', '.join(map(repr, names))}; the table has "
        f"{table.column_names})"
    )


def _raw_images(table: Any, column: str) -> Any:
    """The table with ``column`` left as bytes (the ``Image`` feature decodes to PIL)."""
    datasets = _datasets()
    feature = table.features.get(column)
    if isinstance(feature, datasets.Image) and feature.decode:
        table = table.cast_column(column, datasets.Image(decode=False))
    return table.select_columns([column])


def _corpus(
    table: Any, ids: Sequence[Any], root: Path | None, where: str
) -> dict[str, CorpusEntry]:
    """Corpus entries for the rows of ``table`` (the first row of each id), image or text."""
    images = _raw_images(table, "image") if "image" in table.column_names else None
    texts = list(table["text"]) if "text" in table.column_names else None
    if images is None and texts is None:
        raise ConfigError(
            f"{where}: the corpus has neither an 'image' nor a 'text' column ({table.column_names})"
        )
    corpus: dict[str, CorpusEntry] = {}
    for row, raw in enumerate(ids):
        doc_id = str(raw)
        if doc_id in corpus:
            continue
        text = texts[row] if texts is not None else None
        blob = _Blob(images, "image", row, root) if images is not None else None
        corpus[doc_id] = CorpusEntry(doc_id, text=text, blob=blob)
    return corpus


def _from_qa(table: Any, name: str, root: Path | None, split: str) -> BeirDataset:
    """A ViDoRe v1 table: one row per question and page."""
    query_column = _column(table, _QUERY_TEXT, "query", name)
    if "image_filename" in table.column_names:
        page_ids = [str(v) for v in table["image_filename"]]
    else:
        page_ids = [str(row) for row in range(len(table))]
    corpus = _corpus(table, page_ids, root, name)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    query_id: dict[str, str] = {}
    for row, text in enumerate(table[query_column]):
        if text is None or not str(text).strip():
            continue  # a page no question is about
        qid = query_id.setdefault(str(text), f"q{row}")
        queries.setdefault(qid, str(text))
        qrels.setdefault(qid, {})[page_ids[row]] = 1
    return _checked(BeirDataset(name, root, split, corpus, queries, qrels))


def _from_beir(tables: Mapping[str, Any], name: str, root: Path | None, split: str) -> BeirDataset:
    """The BEIR layout: corpus, queries and qrels tables."""
    corpus_table = tables["corpus"]
    ids = corpus_table[_column(corpus_table, _CORPUS_ID, "corpus id", f"{name} corpus")]
    corpus = _corpus(corpus_table, list(ids), root, f"{name} corpus")
    query_table = tables["queries"]
    qid_column = _column(query_table, _QUERY_ID, "query id", f"{name} queries")
    text_column = _column(query_table, _QUERY_TEXT, "query text", f"{name} queries")
    queries = {
        str(qid): str(text)
        for qid, text in zip(query_table[qid_column], query_table[text_column], strict=True)
        if text is not None
    }
    qrel_table = tables["qrels"]
    columns = [
        _column(qrel_table, _QUERY_ID, "query id", f"{name} qrels"),
        _column(qrel_table, _CORPUS_ID, "corpus id", f"{name} qrels"),
        _column(qrel_table, ("score", "relevance", "label"), "score", f"{name} qrels"),
    ]
    qrels: dict[str, dict[str, int]] = {}
    unknown = 0
    for qid, doc_id, score in zip(*(qrel_table[c] for c in columns), strict=True):
        unknown += str(doc_id) not in corpus
        qrels.setdefault(str(qid), {})[str(doc_id)] = int(float(score))
    if unknown:
        logger.warning("%s: %d judgements name documents missing from the corpus", name, unknown)
    return _checked(BeirDataset(name, root, split, corpus, queries, qrels))


def _checked(dataset: BeirDataset) -> BeirDataset:
    if not dataset.corpus or not dataset.queries:
        raise ConfigError(f"{dataset.name} ({dataset.split}): the corpus or the queries are empty")
    return dataset


# -- local folders -------------------------------------------------------------------------------


def _split_files(folder: Path, split: str, *, any_split: bool = False) -> list[Path]:
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise ConfigError(
            f"{folder}: no corpus.jsonl, no parquet files and no save_to_disk dataset here; "
            "see the dataset layouts in `mmrag eval --help`"
        )
    chosen = [
        f
        for f in files
        if f.stem == split
        or f.stem.startswith(f"{split}-")
        or split in f.relative_to(folder).parts[:-1]
    ]
    found = sorted({f.stem.split("-")[0] for f in files})
    if not chosen and any_split and len(found) == 1:
        chosen = files  # a corpus or queries table of one split serves every split's qrels
    if not chosen:
        raise ConfigError(
            f"{folder}: no parquet files of split {split!r} (named {split}.parquet or "
            f"{split}-*.parquet, or in a folder {split}/); splits here: {found}"
        )
    return chosen


def _pick_split(tables: Any, split: str, where: Path | str, *, any_split: bool = False) -> Any:
    if split not in tables and any_split and len(tables) == 1:
        return next(iter(tables.values()))
    if split not in tables:
        raise ConfigError(f"{where}: no split {split!r}; splits here: {sorted(tables)}")
    return tables[split]


def _table(folder: Path, split: str, *, any_split: bool = False) -> Any:
    """One table of ``folder``: a save_to_disk dataset, or the split's parquet files.

    ``any_split``: a table with a single split serves any split asked for (the corpus and the
    queries of a BEIR dataset; its qrels are per split).
    """
    datasets = _datasets()
    if (folder / "dataset_dict.json").is_file():
        tables = datasets.load_from_disk(str(folder))
        return _pick_split(tables, split, folder, any_split=any_split)
    if (folder / "state.json").is_file():
        return datasets.load_from_disk(str(folder))
    files = [str(f) for f in _split_files(folder, split, any_split=any_split)]
    return datasets.load_dataset("parquet", data_files=files, split="train")


def load_folder(folder: str | Path, split: str = "test") -> BeirDataset:
    """A local copy of a dataset in either layout (see the module docs); errors name the fix.

    Example:
        >>> from mmrag.pipeline.evaluate.hub import load_folder               # doctest: +SKIP
        >>> ds = load_folder("esg_reports_v2/", split="test")                 # doctest: +SKIP
    """
    root = Path(folder).expanduser().resolve()
    datasets = _datasets()
    if (root / "dataset_dict.json").is_file():
        tables = datasets.load_from_disk(str(root))
        if set(BEIR_TABLES) <= set(tables):
            return _from_beir(tables, root.name, root, split)
        return _from_qa(_pick_split(tables, split, root), root.name, root, split)
    if all((root / name).is_dir() for name in BEIR_TABLES):
        tables = {
            name: _table(root / name, split, any_split=name != "qrels") for name in BEIR_TABLES
        }
        return _from_beir(tables, root.name, root, split)
    return _from_qa(_table(root, split), root.name, root, split)


# -- the Hub -------------------------------------------------------------------------------------


def _reach(repo_id: str) -> None:
    """One request to the Hub, no retry: a clear error now instead of retries later."""
    from mmrag.embedders.identity import HUB_TIMEOUT_S, hub_offline

    if hub_offline():
        return  # `datasets` reads its cache
    try:
        from huggingface_hub import HfApi

        HfApi().dataset_info(repo_id, timeout=HUB_TIMEOUT_S)
    except Exception as error:
        if type(error).__name__ in ("RepositoryNotFoundError", "GatedRepoError"):
            raise ConfigError(
                f"{repo_id}: no such folder here, and no dataset of that name on the Hugging "
                "Face Hub (or it is private or gated: log in with `hf auth login`)"
            ) from None
        lines = str(error).strip().splitlines()
        why = f"{type(error).__name__}: {lines[0] if lines else 'no detail'}"
        raise ConfigError(
            f"{repo_id}: no such folder here, and the Hugging Face Hub cannot be reached "
            f"({why}). Set HF_HUB_OFFLINE=1 to use a copy an earlier run cached, or download "
            f"it (`hf download {repo_id} --repo-type dataset --local-dir DIR` while online) "
            "and give the folder instead"
        ) from None


def _hub_table(repo_id: str, config: str, split: str) -> Any:
    """One config of a BEIR dataset on the Hub; the corpus and the queries of a single split
    serve any split asked for (the qrels are per split)."""
    datasets = _datasets()
    if config != "qrels":
        splits = datasets.get_dataset_split_names(repo_id, config)
        if split not in splits and len(splits) == 1:
            split = splits[0]
    return datasets.load_dataset(repo_id, config, split=split)


def load_hub(repo_id: str, split: str = "test") -> BeirDataset:
    """A dataset on the Hugging Face Hub in either layout (see the module docs).

    The BEIR layout is recognised by its ``corpus``, ``queries`` and ``qrels`` configs.

    Example:
        >>> from mmrag.pipeline.evaluate.hub import load_hub                   # doctest: +SKIP
        >>> ds = load_hub("vidore/docvqa_test_subsampled")                     # doctest: +SKIP
    """
    datasets = _datasets()
    _reach(repo_id)
    try:
        configs = datasets.get_dataset_config_names(repo_id)
        if set(BEIR_TABLES) <= set(configs):
            tables = {c: _hub_table(repo_id, c, split) for c in BEIR_TABLES}
            return _from_beir(tables, repo_id, None, split)
        return _from_qa(datasets.load_dataset(repo_id, split=split), repo_id, None, split)
    except ConnectionError as error:  # offline, and not in the cache
        raise ConfigError(
            f"{repo_id}: no such folder here, and HF_HUB_OFFLINE is set but the datasets cache "
            f"has no copy ({error}); run once online, or give a local copy of the dataset"
        ) from None
    except ValueError as error:  # an unknown split or config: the message lists the choices
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{repo_id}: {error}") from None


# -- any source ----------------------------------------------------------------------------------


#: A Hugging Face dataset id: ``owner/name``.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def open_dataset(source: str | os.PathLike[str], split: str = "test") -> BeirDataset:
    """The ``split`` of an evaluation dataset, from any of the layouts ``mmrag eval`` reads.

    ``source`` is a BEIR folder (``corpus.jsonl``: see :func:`load_beir`), a Hugging Face
    dataset id (``vidore/esg_reports_v2``), or a local copy of one: a folder of parquet files as
    on the Hub, or one written by ``save_to_disk`` (see :mod:`mmrag.pipeline.evaluate.hub`).

    Example:
        >>> from mmrag.pipeline.evaluate import open_dataset                   # doctest: +SKIP
        >>> ds = open_dataset("vidore/docvqa_test_subsampled")                 # doctest: +SKIP
        >>> len(ds.corpus), len(ds.judged_queries)                             # doctest: +SKIP
        (500, 451)
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / "corpus.jsonl").is_file():
            return load_beir(path, split)
        return load_folder(path, split)
    if path.exists():
        raise ConfigError(
            f"{path}: not a folder; give a dataset folder or a Hugging Face dataset id"
        )
    if _HUB_ID.fullmatch(text) and not text.startswith(("./", "../")):
        return load_hub(text, split)
    raise ConfigError(
        f"{text}: no such folder, and not a Hugging Face dataset id (owner/name, e.g. "
        "vidore/esg_reports_v2)"
    )
