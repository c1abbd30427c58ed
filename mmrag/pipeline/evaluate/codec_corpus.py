"""The pages and queries of the codec table (:mod:`.codec_table`): a labelled dataset in any
layout :func:`~mmrag.pipeline.evaluate.hub.open_dataset` reads, or a folder of the user's own
unlabelled pages, whose queries are then sampled from the pages themselves
(:func:`sample_queries`).

Example:
    >>> from mmrag.pipeline.evaluate.codec_corpus import open_corpus            # doctest: +SKIP
    >>> corpus = open_corpus("scans/", "test", spool="/tmp/spool", ingest=None)  # doctest: +SKIP
    >>> corpus.labelled                                                          # doctest: +SKIP
    False
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mmrag.errors import ConfigError, MmragError
from mmrag.pipeline.evaluate.datasets import BEIR_ID_KEY, BeirDataset
from mmrag.types import Item

if TYPE_CHECKING:
    from PIL import Image

    from mmrag.pipeline.ingest import IngestConfig

__all__ = ["Corpus", "open_corpus", "sample_queries"]


@dataclasses.dataclass
class Corpus:
    """The pages to measure (corpus id, Item), and the judged queries with their relevance
    (empty for unlabelled pages); ``failed`` lists the pages that could not be read.

    Example:
        >>> from mmrag.pipeline.evaluate.codec_corpus import Corpus
        >>> Corpus("toy", [], {}, {}, []).labelled
        False
    """

    name: str
    items: list[tuple[str, Item]]  # (corpus id, item)
    queries: dict[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    failed: list[dict[str, str]]

    @property
    def labelled(self) -> bool:
        """Whether the queries come with relevance judgements."""
        return bool(self.queries)


def _is_dataset_folder(path: Path) -> bool:
    if (path / "corpus.jsonl").is_file() or (path / "dataset_dict.json").is_file():
        return True
    return any(path.rglob("*.parquet")) or any(path.rglob("*.arrow"))


def open_corpus(
    source: str | os.PathLike[str] | BeirDataset,
    split: str,
    spool: str,
    ingest: IngestConfig | None,
) -> Corpus:
    """The corpus of ``source`` (a dataset, or a folder of unlabelled pages); a page image
    stored as bytes is spooled into ``spool`` (which must outlive the Items' loading).
    """
    from mmrag.pipeline.evaluate.hub import open_dataset

    path = None if isinstance(source, BeirDataset) else Path(os.fspath(source)).expanduser()
    if path is not None and path.is_dir() and not _is_dataset_folder(path):
        return _unlabelled_pages(path, ingest)
    dataset = source if isinstance(source, BeirDataset) else open_dataset(source, split)
    items, failed = [], []
    for doc_id, entry in dataset.corpus.items():
        try:
            items.append((doc_id, entry.to_item(spool=spool)))
        except MmragError as error:
            failed.append({"source": entry.label, "reason": str(error)})
    judged = dataset.judged_queries
    return Corpus(
        dataset.name, items, {q: dataset.queries[q] for q in judged}, dataset.qrels, failed
    )


def _unlabelled_pages(folder: Path, ingest: IngestConfig | None) -> Corpus:
    """Every page, image and frame under ``folder`` (as ``mmrag index`` reads them)."""
    from mmrag.pipeline.ingest import IngestConfig, iter_items
    from mmrag.types import IndexReport

    report = IndexReport()
    items = []
    for item in iter_items([folder], ingest or IngestConfig(), report=report):
        relative = os.path.relpath(item.source, folder)
        doc_id = relative + (f"#p{item.page}" if item.page else "")
        if item.frame_index is not None:
            doc_id += f"#f{item.frame_index}"
        metadata = {**item.metadata, BEIR_ID_KEY: doc_id}
        items.append((doc_id, dataclasses.replace(item, metadata=metadata)))
    failed = [{"source": f.source, "reason": f.reason} for f in report.failed]
    if not items:
        raise ConfigError(f"{folder}: no pages, images or frames to evaluate on")
    return Corpus(folder.name, items, {}, {}, failed)


def sample_queries(
    items: Sequence[Item], count: int, *, seed: int = 0, words: int = 8
) -> list[str | Image.Image]:
    """``count`` queries drawn from the pages themselves (seeded): a window of ``words`` words
    of a page's text layer, else a crop of the page image (a third of its width and height,
    embedded as an image query). Used when the pages come without queries.

    Example:
        >>> from mmrag.types import Item, Modality
        >>> page = Item(source="a.pdf", source_sha256="0" * 64, modality=Modality.PDF_PAGE,
        ...             page=1, text="net revenue grew twelve percent in the solar segment")
        >>> sample_queries([page], 1, words=3)
        ['in the solar']
    """
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(items), size=min(count, len(items)), replace=False)
    out: list[str | Image.Image] = []
    for index in sorted(int(i) for i in picked):
        item = items[index]
        text = (item.text or "").split()
        if len(text) >= words:
            start = int(rng.integers(0, len(text) - words + 1))
            out.append(" ".join(text[start : start + words]))
            continue
        image = item.load_image()
        w, h = image.size
        cw, ch = max(1, w // 3), max(1, h // 3)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        out.append(image.crop((x, y, x + cw, y + ch)))
    return out
