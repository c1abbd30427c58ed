"""MmragVectorStore on the multimodal path: text documents rendered to pages and embedded by the
tiny ColModernVBert, next to PDF pages indexed from a file; ids, filters, delete, tenants.

(LangChain's standard suite, with its fake text embeddings, is ``test_vectorstore_standard.py``.)
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

import mmrag
from mmrag.config import PipelineConfig
from mmrag.errors import ConfigError
from mmrag.integrations.langchain import MmragVectorStore
from mmrag.integrations.langchain.pages import document_source
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.records import SearchFilter

pytestmark = pytest.mark.integration

SAMPLE_PDF = Path(__file__).resolve().parents[3] / "examples" / "data"
SAMPLE_PDF = SAMPLE_PDF / "acme_solar_annual_report_2024.pdf"
LONG_TEXT = "\n\n".join(
    f"Section {n}. ACME Solar installed {n * 37} rooftop systems; revenue grew {n}% in the "
    "quarter, and the survey found customers satisfied with the installation teams. " * 4
    for n in range(1, 25)
)
DOCS = [
    Document(
        page_content="ACME Solar's revenue grew 23% in 2024.\n  Indented line kept.",
        metadata={"dept": "finance", "year": 2024, "tags": ["q4", "audit"]},
    ),
    Document(
        page_content="Rooftop installations doubled.",
        metadata={"dept": "ops", "year": 2019, "author": {"name": "Ann", "team": None}},
    ),
    Document(page_content="Customer survey: 91% satisfied.", metadata={"dept": "hr"}),
]
IDS = ["revenue", "rooftop/2019 v2", "survey"]


@pytest.fixture
def pipeline(
    tmp_path: Path, tiny_config_for: Callable[[Path], PipelineConfig]
) -> Iterator[Pipeline]:
    with Pipeline(tiny_config_for(tmp_path / "index")) as pipe:
        yield pipe


@pytest.fixture
def store(pipeline: Pipeline) -> MmragVectorStore:
    store = MmragVectorStore(pipeline)
    assert store.add_documents(DOCS, ids=IDS) == IDS
    return store


def test_text_documents_come_back_exactly_with_their_ids(store: MmragVectorStore) -> None:
    found = store.similarity_search("solar revenue", k=10)
    assert sorted(d.id for d in found) == sorted(IDS)  # one result per document
    expected = [d.model_copy(update={"id": i}) for d, i in zip(DOCS, IDS, strict=True)]
    by_id = {d.id: d for d in found}
    assert [by_id[i] for i in IDS] == expected  # text (whitespace too) and nested metadata
    assert store.get_by_ids([IDS[2], "missing", IDS[0]]) == [expected[2], expected[0]]
    assert store.embeddings is None  # the pipeline's multimodal space, not LangChain's

    # each document is one source, its page rendered and stored as an image
    pipe = store.pipeline
    assert set(pipe.sources()) == {document_source(i) for i in IDS}
    [hit] = pipe.search("rooftop", k=1, filter=SearchFilter.build(source=document_source(IDS[1])))
    assert hit.item.citation() == "langchain://rooftop%2F2019%20v2 p.1"
    assert hit.item.load_image().size == (hit.item.width, hit.item.height)
    assert pipe.assets.exists(hit.id)


def test_filter_by_metadata_in_search_and_as_retriever(store: MmragVectorStore) -> None:
    hr = store.similarity_search("anything", k=5, filter={"metadata": {"dept": "hr"}})
    assert [d.id for d in hr] == ["survey"]
    recent = store.similarity_search("anything", k=5, filter={"where": ["year>=2020"]})
    assert [d.id for d in recent] == ["revenue"]
    tagged = store.similarity_search("x", k=5, filter=SearchFilter.build(metadata={"tags": "q4"}))
    assert [d.id for d in tagged] == ["revenue"]
    # a nested value is kept (exactly) but is not a filterable field
    with pytest.raises(ConfigError, match="metadata filter 'author'"):
        store.similarity_search("x", filter={"metadata": {"author": {"name": "Ann"}}})

    retriever = store.as_retriever(
        search_kwargs={"k": 2, "filter": {"metadata": {"dept": ["ops", "hr"]}}}
    )
    assert sorted(d.id for d in retriever.invoke("installations")) == ["rooftop/2019 v2", "survey"]
    scored = store.similarity_search_with_score("installations", k=3)
    assert [s for _, s in scored] == sorted((s for _, s in scored), reverse=True)


def test_delete_by_id_keeps_the_others_and_adding_again_replaces(store: MmragVectorStore) -> None:
    pipe = store.pipeline
    [point] = [
        r.id for r in pipe.store.iter_records(SearchFilter.build(source="langchain://survey"))
    ]
    assert store.delete(["survey", "not-stored"]) is True
    assert store.get_by_ids(IDS) == store.get_by_ids(IDS[:2])
    assert {d.id for d in store.similarity_search("q", k=10)} == set(IDS[:2])
    assert not pipe.assets.exists(point)

    changed = Document(page_content="Revenue grew 25% in 2024.", metadata={"dept": "finance"})
    assert store.add_documents([changed], ids=["revenue"]) == ["revenue"]
    assert store.add_documents([changed], ids=["revenue"]) == ["revenue"]  # unchanged: skipped
    assert pipe.store.count(SearchFilter.build(source="langchain://revenue")) == 1
    [doc] = store.get_by_ids(["revenue"])
    assert doc == changed.model_copy(update={"id": "revenue"})


def test_a_long_text_is_several_pages_and_one_document(pipeline: Pipeline) -> None:
    store = MmragVectorStore(pipeline)
    metadata = {"kind": "report"}
    [doc_id] = store.add_texts([LONG_TEXT], [metadata])
    where = SearchFilter.build(source=document_source(doc_id))
    pages = pipeline.store.count(where)
    assert pages >= 2

    # a hit on a later page still returns the whole document, once
    later = store.similarity_search("rooftop", k=3, filter={"pages": (2, None)})
    assert later == [Document(id=doc_id, page_content=LONG_TEXT, metadata=metadata)]
    assert store.similarity_search("rooftop", k=3) == later

    store.delete([doc_id])
    assert pipeline.store.count(where) == 0


def test_pages_from_files_are_documents_with_point_ids(pipeline: Pipeline, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    shutil.copy(SAMPLE_PDF, pdf)
    store = MmragVectorStore(pipeline, image="base64")
    report = store.add_sources([pdf], metadata={"dept": "finance"})
    assert report.ok and report.indexed >= 2
    store.add_documents([Document(page_content="a note", metadata={"dept": "finance"})])

    pages = store.similarity_search("revenue", k=10, filter={"modality": "pdf_page"})
    assert len(pages) == report.indexed
    first = pages[0]
    assert first.metadata["source"] == str(pdf.resolve())
    assert first.metadata["citation"].startswith(f"{pdf.resolve()} p.")
    assert first.metadata["dept"] == "finance" and first.metadata["image_mime"] == "image/png"

    [again] = store.get_by_ids([first.id])
    assert again.page_content == first.page_content
    assert again.metadata["citation"] == first.metadata["citation"]
    assert "score" not in again.metadata

    store.delete([first.id])  # that page only
    left = store.similarity_search("revenue", k=10, filter={"modality": "pdf_page"})
    assert sorted(d.id for d in left) == sorted(d.id for d in pages[1:])


def test_tenants_share_a_pipeline_but_not_documents(pipeline: Pipeline) -> None:
    acme = MmragVectorStore(pipeline, tenant="acme")
    globex = MmragVectorStore(pipeline, tenant="globex")
    acme.add_texts(["ACME note"], ids=["note"])
    globex.add_texts(["Globex note"], ids=["note"])
    assert [d.page_content for d in acme.get_by_ids(["note"])] == ["ACME note"]
    assert [d.page_content for d in globex.similarity_search("note", k=5)] == ["Globex note"]
    acme.delete(["note"])
    assert acme.get_by_ids(["note"]) == []
    assert [d.page_content for d in globex.get_by_ids(["note"])] == ["Globex note"]


def test_concurrent_async_searches_equal_sequential_ones(store: MmragVectorStore) -> None:
    queries = ["revenue", "rooftop", "survey", "2024", "installations"]
    sequential = [store.similarity_search(q, k=2) for q in queries]

    async def together() -> list[list[Document]]:
        return list(await asyncio.gather(*(store.asimilarity_search(q, k=2) for q in queries)))

    assert asyncio.run(together()) == sequential


def test_what_the_multivector_space_cannot_do(store: MmragVectorStore) -> None:
    with pytest.raises(NotImplementedError, match="multi-vector"):
        store.similarity_search_by_vector([0.1] * 8, k=1)
    with pytest.raises(NotImplementedError, match="MaxSim"):
        store.similarity_search_with_relevance_scores("revenue", k=1)
    with pytest.raises(TypeError, match="unexpected argument"):
        store.similarity_search("revenue", k=1, fetch_k=3)
    with pytest.raises(ValueError, match="needs the ids"):
        store.delete()


def test_bad_input_is_refused_before_anything_is_written(pipeline: Pipeline) -> None:
    store = MmragVectorStore(pipeline)
    bad = [Document(page_content="ok"), Document(page_content="x", metadata={"when": object()})]
    with pytest.raises(ValueError, match="JSON-serialisable"):
        store.add_documents(bad)
    with pytest.raises(ValueError, match="2 documents but 1 ids"):
        store.add_documents(bad, ids=["a"])
    assert pipeline.store.count() == 0
    with pytest.raises(ConfigError, match="either a pipeline"):
        MmragVectorStore(pipeline, embedding=DeterministicFakeEmbedding(size=4))


def test_text_embedding_space_and_the_package_root(tmp_path: Path) -> None:
    config = {"ingest": {"dpi": 36}, "store": {"path": str(tmp_path / "index")}}
    store = mmrag.MmragVectorStore.from_texts(
        ["solar panels", "wind farms"],
        DeterministicFakeEmbedding(size=8),
        metadatas=[{"n": 1}, {"n": 2}],
        ids=["s", "w"],
        config=config,
    )
    with store:
        assert mmrag.MmragVectorStore is MmragVectorStore
        vector = store.embeddings.embed_query("wind farms")
        assert [d.id for d in store.similarity_search_by_vector(vector, k=1)] == ["w"]
        [(doc, relevance)] = store.similarity_search_with_relevance_scores("wind farms", k=1)
        assert doc.id == "w" and relevance == pytest.approx(1.0, abs=1e-5)
        [hit] = store.pipeline.search("solar panels", k=1)  # the same index, through mmrag
        assert hit.item.text == "solar panels" and hit.item.metadata == {"n": 1}
