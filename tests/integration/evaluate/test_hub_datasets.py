"""Hugging Face datasets in ViDoRe's layouts become evaluation datasets: v1 (one table of
question-page rows) and v2 (corpus / queries / qrels), from parquet files as on the Hub or from
``save_to_disk`` folders; page images stored as bytes are read like image files."""

from __future__ import annotations

import doctest
import hashlib
import importlib
import sys

import pytest

from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.pipeline.evaluate import open_dataset

pytestmark = pytest.mark.integration

datasets = pytest.importorskip("datasets")


def test_vidore_v1_rows_become_pages_queries_and_judgements(tmp_path, vidore):
    root = vidore.write_v1_parquet(tmp_path / "docvqa_test_subsampled")
    ds = open_dataset(root)
    assert (ds.name, ds.root, ds.split) == ("docvqa_test_subsampled", root.resolve(), "test")
    assert list(ds.corpus) == [vidore.page_name(p) for p in range(5)]  # p0 twice: one page
    # The repeated question counts once; the page nobody asks about has no query.
    assert sorted(ds.queries.values()) == [
        "What is blue?",
        "What is green?",
        "What is red?",
        "What is yellow?",
    ]
    by_text = {text: qid for qid, text in ds.queries.items()}
    assert ds.qrels[by_text["What is red?"]] == {vidore.page_name(0): 1}
    assert ds.qrels[by_text["What is yellow?"]] == {vidore.page_name(3): 1}
    assert len(ds.judged_queries) == 4


def test_page_bytes_are_read_by_the_image_reader_with_exif_and_rgb(tmp_path, vidore):
    ds = open_dataset(vidore.write_v1_parquet(tmp_path / "v1"))
    entry = ds.corpus[vidore.page_name(3)]  # a JPEG stored sideways, EXIF orientation 6
    item = entry.to_item("e@1", spool=tmp_path / "spool")
    data = vidore.page_jpeg_rotated(vidore.COLOURS[3])
    assert item.source == f"corpus:{vidore.page_name(3)}"
    assert item.source_sha256 == hashlib.sha256(data).hexdigest()
    assert (item.width, item.height) == (48, 64)  # upright
    image = item.load_image()
    assert (image.mode, image.size) == ("RGB", (48, 64))
    assert item.metadata["beir_id"] == vidore.page_name(3)
    assert (tmp_path / "spool" / item.source_sha256).is_file()
    assert entry.to_item("e@1", spool=tmp_path / "spool").id == item.id  # a stable point id
    with pytest.raises(ConfigError, match="spool"):
        entry.to_item("e@1")


def test_vidore_v2_tables_with_graded_qrels_per_split(tmp_path, vidore):
    root = vidore.write_v2_parquet(tmp_path / "esg_reports_v2")
    ds = open_dataset(root)
    assert list(ds.corpus) == ["0", "1", "2", "3", "4"]
    assert ds.queries == {"10": "Scope 1 emissions?", "11": "Board diversity?", "12": "Water use?"}
    assert ds.qrels == {"10": {"0": 2, "1": 1}, "11": {"2": 1}, "12": {"4": 1}}
    dev = open_dataset(root, split="dev")  # the corpus and queries of one split serve both
    assert (dev.split, dev.qrels, len(dev.corpus)) == ("dev", {"11": {"3": 1}}, 5)
    assert dev.judged_queries == ["11"]
    with pytest.raises(ConfigError, match=r"split 'train'.*splits here: \['dev', 'test'\]"):
        open_dataset(root, split="train")


def test_save_to_disk_folders_in_either_layout(tmp_path, vidore):
    datasets.DatasetDict({"test": vidore.v1_table()}).save_to_disk(str(tmp_path / "v1"))
    v1 = open_dataset(tmp_path / "v1")
    assert len(v1.corpus) == 5 and len(v1.judged_queries) == 4
    tables = vidore.v2_tables()
    datasets.DatasetDict({k: tables[k] for k in ("corpus", "queries", "qrels")}).save_to_disk(
        str(tmp_path / "v2")
    )
    v2 = open_dataset(tmp_path / "v2")
    assert v2.qrels["10"] == {"0": 2, "1": 1}
    image = v2.corpus["2"].to_item("e@1", spool=tmp_path / "spool").load_image()
    assert image.getpixel((0, 0)) == vidore.COLOURS[2]


@pytest.mark.parametrize(
    ("layout", "source", "split", "message"),
    [
        ("empty", "ds", "test", "no corpus.jsonl, no parquet files"),
        ("v1", "ds", "dev", r"no parquet files of split 'dev'.*splits here: \['test'\]"),
        (None, "./not/here", "test", "no such folder"),
        (None, "nobody/no_such_set", "test", "HF_HUB_OFFLINE is set"),  # tests run offline
    ],
)
def test_errors_name_the_input_and_the_fix(tmp_path, vidore, layout, source, split, message):
    if layout == "empty":
        (tmp_path / source).mkdir()
    elif layout == "v1":
        vidore.write_v1_parquet(tmp_path / source)
    if layout is not None:
        source = str(tmp_path / source)
    with pytest.raises(ConfigError, match=message):
        open_dataset(source, split=split)


def test_a_table_without_the_expected_columns_names_them(tmp_path, vidore):
    root = vidore.write_v2_parquet(tmp_path / "v2")
    for path in (root / "queries").iterdir():
        path.unlink()
    datasets.Dataset.from_dict({"qid": ["10"], "question_text": ["?"]}).to_parquet(
        str(root / "queries" / "test.parquet")
    )
    with pytest.raises(ConfigError, match=r"no query text column.*'qid', 'question_text'"):
        open_dataset(root)


def test_without_the_datasets_package_the_error_names_the_extra(tmp_path, vidore, monkeypatch):
    root = vidore.write_v1_parquet(tmp_path / "v1")
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'mmrag\[eval\]'"):
        open_dataset(root)


@pytest.mark.parametrize("module", ["mmrag.pipeline.evaluate.datasets"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
