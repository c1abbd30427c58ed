"""Evaluation datasets in ViDoRe's Hugging Face layouts, written by the tests (no network), and
a tiny-model config to evaluate them with."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mmrag.config import PipelineConfig

datasets = pytest.importorskip("datasets")


class Vidore:
    """Writers of small datasets in ViDoRe's layouts (the ``vidore`` fixture)."""

    #: Page colours, one page each.
    COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200))
    #: v1 rows (question, page): p0 is asked about twice (same question), p4 by nobody.
    V1_ROWS = (
        ("What is red?", 0),
        ("What is green?", 1),
        ("What is blue?", 2),
        ("What is yellow?", 3),
        (None, 4),
        ("What is red?", 0),
    )

    @staticmethod
    def page_png(colour: tuple[int, int, int]) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), colour).save(buffer, "PNG")
        return buffer.getvalue()

    @staticmethod
    def page_jpeg_rotated(colour: tuple[int, int, int]) -> bytes:
        """A 64x48 JPEG stored sideways with EXIF orientation 6: upright it is 48x64."""
        buffer = io.BytesIO()
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.new("RGB", (64, 48), colour).save(buffer, "JPEG", exif=exif.tobytes())
        return buffer.getvalue()

    @classmethod
    def page_name(cls, page: int) -> str:
        return f"docs/report.pdf_page_{page}.png"

    @classmethod
    def v1_table(cls) -> Any:
        """ViDoRe v1: one row per question and page: ``query``, ``image`` (bytes),
        ``image_filename``, ``answer``. Page 3 is an EXIF-rotated JPEG."""
        images = [cls.page_png(cls.COLOURS[page]) for _, page in cls.V1_ROWS]
        images[3] = cls.page_jpeg_rotated(cls.COLOURS[3])
        features = datasets.Features(
            {
                "query": datasets.Value("string"),
                "image": datasets.Image(),
                "image_filename": datasets.Value("string"),
                "answer": datasets.Value("string"),
            }
        )
        return datasets.Dataset.from_dict(
            {
                "query": [query for query, _ in cls.V1_ROWS],
                "image": [{"bytes": data, "path": None} for data in images],
                "image_filename": [cls.page_name(page) for _, page in cls.V1_ROWS],
                "answer": ["a colour"] * len(cls.V1_ROWS),
            },
            features=features,
        )

    @classmethod
    def v2_tables(cls, broken_page: bool = False) -> dict[str, Any]:
        """ViDoRe v2 (BEIR): ``corpus`` (corpus-id, image), ``queries`` (query-id, query),
        and graded ``qrels`` (query-id, corpus-id, score) of the test split and a dev split."""
        pages = [cls.page_png(colour) for colour in cls.COLOURS]
        if broken_page:
            pages[4] = b"not an image at all"
        corpus = datasets.Dataset.from_dict(
            {
                "corpus-id": list(range(len(pages))),
                "image": [{"bytes": data, "path": None} for data in pages],
                "doc-id": ["esg_report"] * len(pages),
            },
            features=datasets.Features(
                {
                    "corpus-id": datasets.Value("int64"),
                    "image": datasets.Image(),
                    "doc-id": datasets.Value("string"),
                }
            ),
        )
        queries = datasets.Dataset.from_dict(
            {
                "query-id": [10, 11, 12],
                "query": ["Scope 1 emissions?", "Board diversity?", "Water use?"],
                "language": ["english"] * 3,
            }
        )
        qrels = datasets.Dataset.from_dict(
            {"query-id": [10, 10, 11, 12], "corpus-id": [0, 1, 2, 4], "score": [2, 1, 1, 1]}
        )
        dev = datasets.Dataset.from_dict({"query-id": [11], "corpus-id": [3], "score": [1]})
        return {"corpus": corpus, "queries": queries, "qrels": qrels, "qrels-dev": dev}

    @classmethod
    def write_v1_parquet(cls, root: Path) -> Path:
        """The Hub's file layout of a v1 dataset: ``data/test-00000-of-00001.parquet``."""
        (root / "data").mkdir(parents=True)
        cls.v1_table().to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
        return root

    @classmethod
    def write_v2_parquet(cls, root: Path, broken_page: bool = False) -> Path:
        """The Hub's file layout of a v2 dataset: ``<config>/<split>-00000-of-00001.parquet``."""
        tables = cls.v2_tables(broken_page)
        for config in ("corpus", "queries", "qrels"):
            (root / config).mkdir(parents=True)
            tables[config].to_parquet(str(root / config / "test-00000-of-00001.parquet"))
        tables["qrels-dev"].to_parquet(str(root / "qrels" / "dev-00000-of-00001.parquet"))
        return root


@pytest.fixture
def vidore() -> type[Vidore]:
    return Vidore


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`datasets` writes its Arrow cache under tmp_path, not the user's home."""
    cache = tmp_path / "hf-datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return cache


@pytest.fixture
def eval_config(tmp_path: Path, tiny_colmodernvbert: Path) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "embedder": {
                "type": "colmodernvbert",
                "init_parameters": {"model": str(tiny_colmodernvbert), "device": "cpu"},
            },
            "store": {"path": str(tmp_path / "index")},
        }
    )


@pytest.fixture
def eval_config_file(tmp_path: Path, eval_config: PipelineConfig) -> Path:
    path = tmp_path / "mmrag.toml"
    eval_config.save(path)
    return path
