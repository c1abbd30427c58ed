"""The evaluation harness end to end: a BEIR folder of page images, a toy embedder, the store."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from mmrag.config import PoolingConfig
from mmrag.errors import ConfigError
from mmrag.pipeline.evaluate import evaluate, evaluate_run, load_beir
from mmrag.scoring import maxsim
from mmrag.store.embedded import EmbeddedStore
from mmrag.store.schema import CollectionSchema
from mmrag.store.server import ServerStore
from mmrag.types import Embedding, Item

pytestmark = pytest.mark.integration

TOPICS = 6
DIM = 16


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class ColorEmbedder:
    """A deterministic multi-vector 'model': a page's colour picks its topic; a query names one.

    Documents are 4 x 4 patch grids near their topic vector; queries ``"topic k ..."`` are four
    tokens near topic k's vector.
    """

    id = "toy-colors@1"
    kind = "multi"
    dim = DIM

    def __init__(self) -> None:
        self.topics = unit(np.random.default_rng(0).standard_normal((TOPICS, DIM)))

    def embed_documents(self, items: Sequence[Item]) -> list[Embedding]:
        out = []
        for item in items:
            red, green, _ = item.load_image().getpixel((0, 0))
            topic = red // 40
            seed = red * 256 + green  # the page's colour, not its id (ids follow the temp path)
            noise = np.random.default_rng(seed).standard_normal((16, DIM))
            out.append(Embedding(multi=unit(self.topics[topic] + 0.3 * noise), grid=(4, 4)))
        return out

    def embed_queries(self, queries: Sequence[str]) -> list[Embedding]:
        out = []
        for text in queries:
            topic = int(text.split()[1])
            noise = np.random.default_rng(len(text) + topic).standard_normal((4, DIM))
            out.append(Embedding(multi=unit(self.topics[topic] + 0.4 * noise)))
        return out


def make_dataset(root, broken: bool = False):
    (root / "pages").mkdir(parents=True)
    corpus, qrels = [], ["query-id\tcorpus-id\tscore"]
    for i in range(TOPICS * 2):
        topic, copy = divmod(i, 2)
        name = f"pages/p{i}.png"
        Image.new("RGB", (8, 8), (topic * 40 + copy, 10 * copy, 0)).save(root / name)
        corpus.append({"_id": f"doc{i}", "image": name})
    if broken:
        (root / "pages" / "broken.png").write_bytes(b"not a png")
        corpus.append({"_id": "broken", "image": "pages/broken.png"})
    queries = []
    for topic in range(TOPICS):
        queries.append({"_id": f"q{topic}", "text": f"topic {topic} please"})
        qrels += [f"q{topic}\tdoc{2 * topic}\t2", f"q{topic}\tdoc{2 * topic + 1}\t1"]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(c) for c in corpus))
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")


def reference_run(root, embedder: ColorEmbedder, depth: int) -> dict[str, list[str]]:
    """Exact MaxSim rankings computed without the store."""
    ds = load_beir(root)
    ids = list(ds.corpus)
    items = [ds.corpus[i].to_item(embedder.id) for i in ids]
    docs = [e.visual() for e in embedder.embed_documents(items)]
    queries = embedder.embed_queries([ds.queries[q] for q in ds.judged_queries])
    scores = maxsim(
        [q.multi for q in queries], [d.astype(np.float16).astype(np.float32) for d in docs]
    )
    return {
        q: [ids[j] for j in np.argsort(-row)[:depth]]
        for q, row in zip(ds.judged_queries, scores, strict=True)
    }


@pytest.fixture(params=["embedded", "local"])
def store(request, tmp_path):
    pooling = PoolingConfig(views=["global", "rows"], full_pool_factor=1)  # every token
    # `full` as float16, what reference_run scores on: the plans must match it exactly.
    schema = CollectionSchema.for_embedder(
        "toy-colors@1", "multi", DIM, pooling, codecs={"full": "float16"}
    )
    if request.param == "embedded":
        s = EmbeddedStore(tmp_path / "index", "eval", schema)
    else:
        s = ServerStore.connect(location=":memory:", collection="eval", schema=schema)
    yield s
    s.close()


def test_evaluate_plans_side_by_side(tmp_path, store):
    make_dataset(tmp_path / "ds")
    embedder = ColorEmbedder()
    plans = ["full@10", "global@10 -> full@10", "global@12 -> rows@6 -> full@4"]
    report = evaluate(tmp_path / "ds", embedder, store, plans, ks=[1, 5])
    assert report.index is not None and report.index.indexed == 12 and report.index.ok
    assert (report.dataset, report.corpus, report.queries, report.ks) == ("ds", 12, 6, (1, 5))
    assert [r.plan for r in report.results] == plans
    expected = evaluate_run(
        reference_run(tmp_path / "ds", embedder, 10), load_beir(tmp_path / "ds").qrels, ks=[1, 5]
    )
    for result in report.results:
        assert result.queries == 6 and result.qps > 0 and result.p95_ms >= result.p50_ms > 0
        for name, value in expected.items():
            assert result.metrics[name] == pytest.approx(value, abs=1e-9), (result.plan, name)
    assert report.results[0].metrics["recall@5"] == 1.0  # the toy topics are separable
    table = report.table()
    assert all(plan in table for plan in plans)
    assert json.loads(report.to_json())["results"][2]["plan"] == plans[2]
    # Run again: nothing is re-embedded.
    again = evaluate(tmp_path / "ds", embedder, store, ["full@10"], ks=[5])
    assert (again.index.indexed, again.index.skipped) == (0, 12)


def test_a_broken_page_is_reported_and_the_rest_evaluated(tmp_path, store):
    make_dataset(tmp_path / "ds", broken=True)
    report = evaluate(tmp_path / "ds", ColorEmbedder(), store, ["full@10"], ks=[5])
    assert report.index.indexed == 12
    (failure,) = report.index.failed
    assert "broken.png" in failure.source
    assert store.count() == 12


def test_evaluate_refuses_a_store_of_another_embedder(tmp_path, store):
    make_dataset(tmp_path / "ds")

    class Other(ColorEmbedder):
        id = "other@2"

    with pytest.raises(ConfigError, match="toy-colors@1"):
        evaluate(tmp_path / "ds", Other(), store, ["full@10"])
    with pytest.raises(ConfigError, match="cols"):
        evaluate(tmp_path / "ds", ColorEmbedder(), store, ["cols@10 -> full@5"])


def test_pdf_pages_render_for_embedding(tmp_path):
    import pymupdf

    root = tmp_path / "ds"
    root.mkdir()
    with pymupdf.open() as pdf:
        for _ in range(2):
            pdf.new_page(width=200, height=100)
        pdf.save(root / "doc.pdf")
    (root / "corpus.jsonl").write_text(json.dumps({"_id": "d", "pdf": "doc.pdf", "page": 2}))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "x"}))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("q\td\t1\n")
    item = load_beir(root).corpus["d"].to_item("e@1")
    image = item.load_image()
    assert image.mode == "RGB" and image.size == (400, 200)  # 144 dpi
