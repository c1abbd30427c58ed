"""Evaluation datasets: the BEIR folder layout, and (through :mod:`.hub`) Hugging Face datasets
in ViDoRe's layouts.

A BEIR folder holds ``corpus.jsonl`` (one page per line: ``_id`` and an ``image`` path, or a
``pdf`` path and a 1-based ``page``; optional ``text``), ``queries.jsonl`` (``_id``, ``text``)
and ``qrels/<split>.tsv`` (``query-id  corpus-id  score``, graded relevance). Paths are relative
to the dataset folder. :func:`~mmrag.pipeline.evaluate.hub.open_dataset` takes such a folder,
a Hugging Face dataset id (``vidore/esg_reports_v2``) or a local copy of one.

Example:
    >>> from mmrag.pipeline.evaluate.datasets import load_beir                 # doctest: +SKIP
    >>> ds = load_beir("vidore_docvqa_beir", split="test")                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmrag.errors import ConfigError, IngestError
from mmrag.types import Item, Modality

__all__ = ["BEIR_ID_KEY", "BeirDataset", "CorpusEntry", "load_beir"]

logger = logging.getLogger(__name__)

#: Payload metadata key holding a page's corpus id.
BEIR_ID_KEY = "beir_id"


# -- datasets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusEntry:
    """One corpus document: a page image (a file, or bytes from a dataset table), a PDF page,
    or (text corpora) text only.

    ``blob`` returns the image's bytes on demand (a row of a memory-mapped table), so a corpus
    of thousands of pages is never held in memory.

    Example:
        >>> from mmrag.pipeline.evaluate.datasets import CorpusEntry
        >>> CorpusEntry("d7", text="a text-only page").to_item("e@1").source
        'corpus:d7'
    """

    id: str
    image: Path | None = None
    pdf: Path | None = None
    page: int | None = None
    text: str | None = None
    title: str | None = None
    blob: Callable[[], bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        """Where the document comes from, as reports name it: its file, else ``corpus:<id>``."""
        path = self.image if self.image is not None else self.pdf
        return str(path) if path is not None else f"corpus:{self.id}"

    def to_item(
        self, embedder_id: str = "", *, dpi: int = 144, spool: str | os.PathLike[str] | None = None
    ) -> Item:
        """The :class:`~mmrag.types.Item` to embed, read by the ingest stage (same hashing,
        rendering, EXIF and colour handling as any indexed file); its pixels load lazily.

        Image bytes (``blob``) are written to the ``spool`` folder, named by their SHA-256, and
        read from there by the same image reader; the Item's source is ``corpus:<id>``. The
        spool file must stay until the Item's pixels are loaded.
        """
        from mmrag.pipeline.ingest import IngestConfig, iter_image_frames
        from mmrag.pipeline.ingest.source import iter_source

        metadata = {BEIR_ID_KEY: self.id}
        path = self.image if self.image is not None else self.pdf
        source = None
        if path is None and self.blob is not None:
            path, source = self._spool(spool), f"corpus:{self.id}"
        if path is None:
            text = self.text or ""
            return Item(
                source=f"corpus:{self.id}",
                source_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                modality=Modality.TEXT,
                text=text,
                metadata=metadata,
                embedder_id=embedder_id,
            )
        wanted = self.page or 1 if self.pdf is not None else None
        config = IngestConfig(dpi=dpi, workers=0, prefetch=0, skip_blank_pages=False)
        read = iter_source if source is None else iter_image_frames  # bytes: an image only
        try:
            for item in read(path, config):
                if wanted is None or item.page == wanted:
                    return dataclasses.replace(
                        item,
                        source=source or item.source,
                        text=self.text if self.text is not None else item.text,
                        metadata={**item.metadata, **metadata},
                        embedder_id=embedder_id,
                    )
        except IngestError as error:
            if source is None:
                raise
            raise IngestError(source, error.reason) from None  # name the row, not the spool
        raise ConfigError(f"{path}: page {wanted} does not exist")

    def _spool(self, spool: str | os.PathLike[str] | None) -> Path:
        if spool is None:
            raise ConfigError(
                f"corpus document {self.id!r} holds its image as bytes; give to_item a spool "
                "folder to write it to (spool=...)"
            )
        assert self.blob is not None
        data = self.blob()
        if not data:
            raise IngestError(f"corpus:{self.id}", "the image is empty (0 bytes)")
        path = Path(spool) / hashlib.sha256(data).hexdigest()
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return path


@dataclass(frozen=True)
class BeirDataset:
    """A retrieval dataset: corpus, queries and graded relevance judgements of one split.

    Example:
        >>> from mmrag.pipeline.evaluate.datasets import BeirDataset, CorpusEntry
        >>> ds = BeirDataset("toy", None, "test", {"d": CorpusEntry("d", text="t")},
        ...                  {"q": "what?", "r": "unjudged"}, {"q": {"d": 1}})
        >>> ds.judged_queries
        ['q']
    """

    name: str
    root: Path | None  # the folder; None for a dataset on the Hugging Face Hub
    split: str
    corpus: Mapping[str, CorpusEntry]
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]

    @property
    def judged_queries(self) -> list[str]:
        """Query ids with text and at least one relevant document, in file order."""
        return [
            q
            for q in self.queries
            if q in self.qrels and any(g > 0 for g in self.qrels[q].values())
        ]


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{number}: expected a JSON object per line")
            yield number, row


def _first(row: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def _corpus_entry(root: Path, where: str, row: Mapping[str, Any]) -> CorpusEntry:
    doc_id = _first(row, "_id", "corpus-id", "id")
    if doc_id is None:
        raise ConfigError(f"{where}: a corpus line needs an '_id'")
    image = _first(row, "image", "image_path", "file")
    pdf = _first(row, "pdf", "pdf_path")
    page = _first(row, "page", "page_number")
    text = _first(row, "text")
    if image is None and pdf is None and text is None:
        raise ConfigError(
            f"{where}: corpus document {doc_id!r} has no 'image' path, no 'pdf' + 'page' and no "
            "'text'; give one of them"
        )
    resolved = {}
    for key, value in (("image", image), ("pdf", pdf)):
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigError(
                f"{where}: {key!r} must be a path relative to the dataset folder, got "
                f"{type(value).__name__} (for images stored as bytes, use a parquet dataset: "
                "see `mmrag eval --help`)"
            )
        path = (root / value).resolve()
        if not path.is_file():
            raise ConfigError(f"{where}: {key} file {value!r} not found under {root}")
        resolved[key] = path
    if page is not None and (not isinstance(page, int) or page < 1):
        raise ConfigError(f"{where}: 'page' is 1-based, got {page!r}")
    return CorpusEntry(
        id=str(doc_id),
        image=resolved.get("image"),
        pdf=resolved.get("pdf"),
        page=page,
        text=text,
        title=_first(row, "title"),
    )


def load_beir(directory: str | Path, split: str = "test") -> BeirDataset:
    """Read a BEIR-layout dataset folder; errors name the file, the line and the fix.

    Example:
        >>> from mmrag.pipeline.evaluate import load_beir     # doctest: +SKIP
        >>> ds = load_beir("vidore_docvqa_beir")               # doctest: +SKIP
        >>> len(ds.corpus), len(ds.judged_queries)             # doctest: +SKIP
        (500, 451)
    """
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder; a BEIR dataset is a folder with corpus.jsonl")
    corpus: dict[str, CorpusEntry] = {}
    for number, row in _read_jsonl(root / "corpus.jsonl"):
        entry = _corpus_entry(root, f"{root / 'corpus.jsonl'}:{number}", row)
        if entry.id in corpus:
            raise ConfigError(f"{root / 'corpus.jsonl'}:{number}: duplicate _id {entry.id!r}")
        corpus[entry.id] = entry
    queries: dict[str, str] = {}
    for number, row in _read_jsonl(root / "queries.jsonl"):
        qid, text = _first(row, "_id", "query-id", "id"), _first(row, "text", "query")
        if qid is None or text is None:
            raise ConfigError(
                f"{root / 'queries.jsonl'}:{number}: a query line needs '_id' and 'text'"
            )
        queries[str(qid)] = str(text)
    qrels = _read_qrels(root / "qrels" / f"{split}.tsv", corpus)
    if not corpus or not queries:
        raise ConfigError(f"{root}: the corpus or the queries are empty")
    return BeirDataset(
        name=root.name, root=root, split=split, corpus=corpus, queries=queries, qrels=qrels
    )


def _read_qrels(path: Path, corpus: Mapping[str, CorpusEntry]) -> dict[str, dict[str, int]]:
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.tsv"))
        raise ConfigError(
            f"{path}: no such qrels file" + (f"; splits here: {available}" if available else "")
        )
    qrels: dict[str, dict[str, int]] = {}
    unknown = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.strip().split()
        if not parts:
            continue
        if number == 1 and parts[0].lower() in ("query-id", "query_id", "qid", "queryid"):
            continue  # header: query-id corpus-id score
        if len(parts) == 4:  # TREC: qid iteration docid relevance
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3:
            raise ConfigError(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score'")
        qid, doc_id, score = parts
        try:
            grade = int(float(score))
        except ValueError:
            raise ConfigError(f"{path}:{number}: score {score!r} is not a number") from None
        if doc_id not in corpus:
            unknown += 1
        qrels.setdefault(qid, {})[doc_id] = grade
    if unknown:
        logger.warning("%s: %d judgements name documents missing from the corpus", path, unknown)
    return qrels
