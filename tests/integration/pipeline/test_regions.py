"""Region citations on every multi-vector family with a patch grid (the tiny models).

A random tiny model does not read, so the region is planted by construction: the query's tokens
are the page's own stored patch vectors of a chosen block of cells. The block must come back as
the top box, in the page's own coordinates (pixels for images, PDF points for PDF pages), after
the whole path: ingest → embed → store (with ``details["grid"]``) → retrieve → regions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmrag.config import PipelineConfig
from mmrag.pipeline.pipeline import Pipeline
from mmrag.pipeline.regions import attach_regions, page_transform
from mmrag.pipeline.retrieval import Retriever
from mmrag.types import Embedding, Hit

pytestmark = pytest.mark.integration

FAMILIES = ("colpali", "colqwen2", "colmodernvbert")


def _noise_page(path: Path, size: tuple[int, int] = (112, 112), seed: int = 0) -> Path:
    """A page of random colour blocks: every patch differs from every other."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(size[1] // 4, size[0] // 4, 3), dtype=np.uint8)
    Image.fromarray(blocks).resize(size, Image.NEAREST).save(path)
    return path


def _pipeline(family: str, model: Path, tmp_path: Path, full_pool_factor: int = 3) -> Pipeline:
    """A pipeline over ``tmp_path / "index"``; ``full_pool_factor`` 1 stores every token (the
    planted tests query with the stored vectors of chosen cells), the default 3 merges."""
    config = PipelineConfig.from_dict(
        {
            "embedder": {"type": family, "init_parameters": {"model": str(model), "device": "cpu"}},
            "ingest": {"dpi": 144},
            "store": {"path": str(tmp_path / "index")},
            "pooling": {"full_pool_factor": full_pool_factor},
        }
    )
    return Pipeline(config)


def _planted_hit(pipe: Pipeline) -> tuple[Hit, tuple[int, int, int, int], tuple[int, int]]:
    """Search with the stored patch vectors of a planted block; returns the top hit, the block
    (row0, col0, row1, col1) and the grid."""
    (record,) = pipe.store.retrieve([next(pipe.store.iter_records()).id], with_vectors=True)
    rows, cols = record.payload["details"]["grid"]
    full = np.asarray(record.vectors["full"], dtype=np.float32)
    assert full.shape[0] >= rows * cols  # the patches first, then the prompt's tokens ("all")
    block = (1, cols // 2, min(rows, 3), cols)  # two rows on the right half
    cells = [r * cols + c for r in range(block[0], block[2]) for c in range(block[1], block[3])]
    query = Embedding(multi=full[cells])
    hits = Retriever(pipe.store, pipe.plan(), assets=pipe.assets).search(query)
    hits = attach_regions(pipe.store, query, hits)
    assert hits[0].id == record.id
    return hits[0], block, (rows, cols)


@pytest.mark.parametrize("family", FAMILIES)
def test_planted_region_is_the_top_box_on_an_image(family, request, tmp_path):
    model = request.getfixturevalue(f"tiny_{family}")
    page = _noise_page(tmp_path / "page.png")
    with _pipeline(family, model, tmp_path, full_pool_factor=1) as pipe:
        assert pipe.index([page]).ok
        hit, (r0, c0, r1, c1), (rows, cols) = _planted_hit(pipe)
        width, height = hit.item.width, hit.item.height
        top = hit.regions[0]
        expected = (c0 * width / cols, r0 * height / rows, c1 * width / cols, r1 * height / rows)
        assert (top.x0, top.y0, top.x1, top.y1) == pytest.approx(expected, abs=0.01)
        assert top.score == pytest.approx(hit.score, rel=1e-3)  # the block carries it all
        assert hit.to_dict()["regions"][0]["x1"] == pytest.approx(expected[2], abs=0.01)


def test_planted_region_on_a_pdf_page_is_in_points(tiny_colpali, tmp_path):
    import pymupdf

    image = _noise_page(tmp_path / "noise.png", size=(200, 100))
    pdf = tmp_path / "page.pdf"
    doc = pymupdf.open()
    page = doc.new_page(width=200, height=100)  # points
    page.insert_image(page.rect, filename=str(image))
    doc.save(pdf)
    doc.close()
    with _pipeline("colpali", tiny_colpali, tmp_path, full_pool_factor=1) as pipe:
        assert pipe.index([pdf]).ok
        hit, (r0, c0, r1, c1), (rows, cols) = _planted_hit(pipe)
        assert hit.item.details["render_dpi"] == pytest.approx(144)
        assert (hit.item.width, hit.item.height) == (400, 200)  # pixels at 144 dpi
        top = hit.regions[0]
        expected = (c0 * 200 / cols, r0 * 100 / rows, c1 * 200 / cols, r1 * 100 / rows)
        assert (top.x0, top.y0, top.x1, top.y1) == pytest.approx(expected, abs=0.01)
        assert page_transform(hit.item) == (0.5, 0.0, 0.0)


def test_search_attaches_regions_within_the_page(tiny_colmodernvbert, tmp_path):
    page = _noise_page(tmp_path / "page.png")
    crop = Image.open(page).crop((56, 0, 112, 56))
    with _pipeline("colmodernvbert", tiny_colmodernvbert, tmp_path) as pipe:
        assert pipe.index([page]).ok
        for query in ("revenue", crop):  # a text query and an image query
            (hit,) = pipe.search(query, k=5)
            assert hit.regions, "a multi-vector hit with a grid has regions"
            for region in hit.regions:
                assert 0 <= region.x0 < region.x1 <= hit.item.width
                assert 0 <= region.y0 < region.y1 <= hit.item.height
            scores = [r.score for r in hit.regions]
            assert scores == sorted(scores, reverse=True)
        (plain,) = pipe.search("revenue", k=5, regions=False)
        assert plain.regions == ()


def test_cli_search_json_has_regions_and_explain_writes_pictures(tiny_colpali, tmp_path):
    import json

    from typer.testing import CliRunner

    from mmrag.cli import app

    page = _noise_page(tmp_path / "page.png")
    config = tmp_path / "mmrag.toml"
    with _pipeline("colpali", tiny_colpali, tmp_path) as pipe:
        pipe.config.save(config)
        assert pipe.index([page]).ok
    out = tmp_path / "explained"
    runner = CliRunner()
    args = ["search", "revenue", "-c", str(config), "--json", "--explain", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (hit,) = json.loads(result.stdout)
    assert hit["regions"] and set(hit["regions"][0]) == {"x0", "y0", "x1", "y1", "score", "kind"}
    (picture,) = sorted(out.glob("*.png"))
    assert f"explained: {picture}" in result.stderr
    with Image.open(picture) as image:
        assert image.size == (hit["item"]["width"], hit["item"]["height"])
    result = runner.invoke(app, ["search", "revenue", "-c", str(config)])
    assert "region (" in result.stdout


def test_regions_reach_the_http_api_and_langchain_documents(tiny_colqwen2, tmp_path):
    from fastapi.testclient import TestClient

    from mmrag.integrations.langchain.documents import hit_to_document
    from mmrag.integrations.server import create_app

    page = _noise_page(tmp_path / "page.png")
    with _pipeline("colqwen2", tiny_colqwen2, tmp_path) as pipe:
        assert pipe.index([page]).ok
        (hit,) = pipe.search("revenue", k=3)
        assert hit.regions
        document = hit_to_document(hit)
        assert document.metadata["regions"] == [r.to_dict() for r in hit.regions]
        config = pipe.config
    with TestClient(create_app(config)) as client:
        body = client.get("/api/v1/search", params={"q": "revenue", "k": 3}).json()
        (served,) = body["hits"]
        assert served["regions"] == [r.to_dict() for r in hit.regions]
        off = client.get("/api/v1/search", params={"q": "revenue", "regions": False}).json()
        assert off["hits"][0]["regions"] == []


def _content_page(rng: np.random.Generator, grid: tuple[int, int], block: tuple[int, ...]):
    """``(rows * cols, 32)`` tokens: near-identical paper background, distinct content tokens
    in ``block`` (row0, col0, row1, col1)."""
    rows, cols = grid
    paper = rng.standard_normal(32)
    tokens = paper + 0.05 * rng.standard_normal((rows, cols, 32))
    r0, c0, r1, c1 = block
    tokens[r0:r1, c0:c1] = 3 * rng.standard_normal((r1 - r0, c1 - c0, 32))
    tokens = tokens.reshape(rows * cols, 32)
    return (tokens / np.linalg.norm(tokens, axis=1, keepdims=True)).astype(np.float32)


def test_merged_pages_keep_their_region_citations(tmp_path):
    from mmrag.config import PoolingConfig
    from mmrag.embedders.pooling import Pooler
    from mmrag.store.contract import FULL_MERGE_FIELD
    from mmrag.store.embedded import EmbeddedStore
    from mmrag.store.records import Point
    from mmrag.store.schema import CollectionSchema
    from mmrag.types import Item

    grid, block = (8, 12), (2, 3, 4, 9)  # a 2 x 6 content block in a mostly blank page
    rng = np.random.default_rng(0)
    pooling = PoolingConfig(views=["global", "distinct"], full_pool_factor=2)
    schema = CollectionSchema.for_embedder("toy-merged@1", "multi", 32, pooling)
    pooler = Pooler(pooling)
    points, pages = [], []
    for i in range(3):
        tokens = _content_page(rng, grid, block)
        pages.append(tokens)
        item = Item(
            source=f"/docs/{i}.png",
            source_sha256=f"{i:064x}",
            modality="image",
            width=120,
            height=80,
        )
        views = pooler.document_views(tokens, grid)
        points.append(
            Point.for_collection(item, Embedding(multi=tokens, grid=grid, pooled=views), schema)
        )
    r0, c0, r1, c1 = block
    cells = [r * grid[1] + c for r in range(r0, r1) for c in range(c0, c1)]
    query = Embedding(multi=pages[1][cells])  # the block's own tokens
    with EmbeddedStore(tmp_path, "merged", schema) as store:
        store.upsert(points)
        (record,) = store.retrieve([points[1].id], with_vectors=True)
        assert len(record.vectors["full"]) == grid[0] * grid[1] // 2  # half the tokens stored
        assert FULL_MERGE_FIELD in record.payload
        hits = Retriever(store, "distinct@3 -> full@3").search(query)
        assert hits[0].id == points[1].id
        (hit, *_) = attach_regions(store, query, hits)
    top = hit.regions[0]  # the content block, in pixels (10 x 10 per cell)
    assert (top.x0, top.y0, top.x1, top.y1) == pytest.approx((c0 * 10, r0 * 10, c1 * 10, r1 * 10))
    assert "mmrag_full_merge" not in hit.to_dict()["item"]  # the map stays out of the results
