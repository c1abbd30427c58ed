"""MmragRetriever and its tool on a real index: Documents match the pipeline's hits, images,
filters, async, tool output with citations, and clear errors."""

from __future__ import annotations

import asyncio
import base64
import doctest
import importlib
import io
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import fsspec
import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolMessage
from PIL import Image
from pydantic import ValidationError

from mmrag.errors import ConfigError
from mmrag.integrations.langchain import MmragRetriever, format_documents
from mmrag.pipeline.pipeline import Pipeline
from mmrag.store.records import SearchFilter

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data"
pytestmark = pytest.mark.integration

QUERY = "How much did ACME Solar's revenue grow in 2024?"
_DOC_KEYS = {"id", "source", "modality", "page", "page_label", "frame_index", "timestamp_s"}


def _pdf(pipe: Pipeline) -> str:
    return next(s for s in pipe.sources() if s.endswith(".pdf"))


def test_documents_are_the_pipelines_hits_with_their_locations(indexed_pipeline):
    hits = indexed_pipeline.search(QUERY, k=6)
    docs = MmragRetriever(pipeline=indexed_pipeline, k=6).invoke(QUERY)
    assert [d.id for d in docs] == [h.id for h in hits]
    for doc, hit in zip(docs, hits, strict=True):
        item, meta = hit.item, doc.metadata
        assert meta["id"] == hit.id
        assert meta["source"] == item.source
        assert meta["modality"] == item.modality.value
        assert (meta["page"], meta["page_label"]) == (item.page, item.page_label)
        assert (meta["frame_index"], meta["timestamp_s"]) == (item.frame_index, item.timestamp_s)
        assert (meta["width"], meta["height"]) == (item.width, item.height)
        assert meta["citation"] == hit.citation()
        assert meta["score"] == pytest.approx(hit.score, rel=1e-5)
        assert meta["stage_scores"] == pytest.approx(dict(hit.stage_scores), rel=1e-5)
        assert set(meta["stage_scores"]) == {"tokens", "distinct", "full"}
        assert "image_base64" not in meta
        assert "image_uri" not in meta  # image="none" by default
        if (item.text or "").strip():
            assert doc.page_content == item.text.strip()
        else:  # images and frames: a textual stand-in that says what and where
            assert doc.page_content.endswith(hit.citation())


def test_pdf_pages_carry_their_text_page_and_label(indexed_pipeline):
    pdf = _pdf(indexed_pipeline)
    retriever = MmragRetriever(pipeline=indexed_pipeline, k=10, filter={"source": pdf})
    docs = retriever.invoke("annual report")
    expected = {
        h.id: h
        for h in indexed_pipeline.search(
            "annual report", k=10, filter=SearchFilter.build(source=pdf)
        )
    }
    assert {d.id for d in docs} == set(expected)
    assert sorted(d.metadata["page"] for d in docs) == list(range(1, len(docs) + 1))
    for doc in docs:
        assert doc.metadata["modality"] == "pdf_page"
        assert doc.metadata["page"] == expected[doc.id].item.page
        assert f" p.{doc.metadata['page']}" in doc.metadata["citation"]
        assert doc.page_content.strip()  # the sample PDF has a text layer on every page
    assert any("revenue" in d.page_content.lower() for d in docs)


def test_video_frames_carry_their_timestamp(indexed_pipeline):
    where = {"modality": "video_frame"}
    docs = MmragRetriever(pipeline=indexed_pipeline, k=3, filter=where).invoke("a scene")
    hits = indexed_pipeline.search(
        "a scene", k=3, filter=SearchFilter.build(modality="video_frame")
    )
    assert [d.id for d in docs] == [h.id for h in hits]
    assert docs
    for doc, hit in zip(docs, hits, strict=True):
        assert doc.metadata["modality"] == "video_frame"
        assert doc.metadata["timestamp_s"] == hit.item.timestamp_s is not None
        assert doc.metadata["frame_index"] == hit.item.frame_index
        assert doc.metadata["page"] is None
        assert " @ 0:" in doc.metadata["citation"]
        assert doc.page_content == f"Video frame: {hit.citation()}"


def test_filters_by_modality_source_and_page_range(indexed_pipeline):
    pdf = _pdf(indexed_pipeline)
    retriever = MmragRetriever(pipeline=indexed_pipeline, k=10)
    images = retriever.invoke("picture", filter={"modality": "image"})
    assert images and {d.metadata["modality"] for d in images} == {"image"}
    pages = retriever.invoke("report", filter={"source": pdf, "pages": (2, 3)})
    assert sorted(d.metadata["page"] for d in pages) == [2, 3]
    object_filter = SearchFilter.build(source=pdf, pages=(None, 1))
    assert [d.metadata["page"] for d in retriever.invoke("report", filter=object_filter)] == [1]
    # The constructor's filter applies to every call; a per-call filter replaces it.
    only_pdf = MmragRetriever(pipeline=indexed_pipeline, k=10, filter={"source": pdf})
    assert {d.metadata["source"] for d in only_pdf.invoke("report")} == {pdf}
    assert {d.metadata["modality"] for d in only_pdf.invoke("x", filter={"modality": "image"})} == {
        "image"
    }


def test_base64_image_is_the_stored_page(indexed_pipeline):
    docs = MmragRetriever(pipeline=indexed_pipeline, k=12, image="base64").invoke(QUERY)
    assert {d.metadata["modality"] for d in docs} == {"pdf_page", "image", "video_frame"}
    for doc in docs:
        meta = doc.metadata
        image = Image.open(io.BytesIO(base64.b64decode(meta["image_base64"], validate=True)))
        assert meta["image_mime"] == Image.MIME[image.format]
        assert image.format in {"PNG", "JPEG"}
        assert image.size == (meta["width"], meta["height"])
        stored = indexed_pipeline.assets.get(doc.id)
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(stored.convert("RGB")))


def test_uri_points_at_the_stored_page(indexed_pipeline):
    retriever = MmragRetriever(pipeline=indexed_pipeline, k=3, image="uri")
    docs = retriever.invoke(QUERY)
    assert len(docs) == 3
    for doc in docs:
        meta = doc.metadata
        assert meta["image_uri"] == indexed_pipeline.assets.url(doc.id)
        assert "image_base64" not in meta
        with fsspec.open(meta["image_uri"], "rb") as handle:
            image = Image.open(io.BytesIO(handle.read()))
        assert Image.MIME[image.format] == meta["image_mime"]
        assert image.size == (meta["width"], meta["height"])
    # Per call, the image option can be switched off (or on) again.
    plain = retriever.invoke(QUERY, image="none")
    assert not any("image_uri" in d.metadata for d in plain)


def test_k_beyond_the_plans_last_stage_still_returns_k(indexed_pipeline):
    total = indexed_pipeline.store.count()
    assert indexed_pipeline.plan().limit < total  # the default plan keeps 10 of 12 items
    docs = MmragRetriever(pipeline=indexed_pipeline).invoke(QUERY, k=total + 5)
    assert len(docs) == total
    assert len({d.id for d in docs}) == total
    default = MmragRetriever(pipeline=indexed_pipeline).invoke(QUERY)
    assert len(default) == indexed_pipeline.config.retrieval.top_k
    planned = MmragRetriever(pipeline=indexed_pipeline, plan="global@12 -> full@4", k=2)
    docs = planned.invoke(QUERY)
    assert len(docs) == 2
    assert set(docs[0].metadata["stage_scores"]) == {"global", "full"}
    no_stages = MmragRetriever(pipeline=indexed_pipeline, k=2, include_stage_scores=False)
    assert "stage_scores" not in no_stages.invoke(QUERY)[0].metadata


def test_async_matches_sync_and_runs_concurrently(indexed_pipeline):
    retriever = MmragRetriever(pipeline=indexed_pipeline, k=4)
    queries = [QUERY, "rooftop installation", "customer survey", "system diagram"]
    expected = [[d.id for d in retriever.invoke(q)] for q in queries]

    async def run() -> list[list[Document]]:
        return await asyncio.gather(*(retriever.ainvoke(q) for q in queries))

    results = asyncio.run(run())
    assert [[d.id for d in docs] for docs in results] == expected
    assert len(asyncio.run(retriever.ainvoke(QUERY, k=2, image="uri"))) == 2
    # The sync batch API runs invoke in threads: the pipeline lock keeps that safe.
    assert [[d.id for d in docs] for docs in retriever.batch(queries)] == expected


def test_tool_returns_cited_text_and_the_documents(indexed_pipeline):
    pdf = _pdf(indexed_pipeline)
    retriever = MmragRetriever(pipeline=indexed_pipeline, k=3, filter={"source": pdf})
    tool = retriever.as_tool(name="search_reports", description="Search the annual reports.")
    assert (tool.name, tool.description) == ("search_reports", "Search the annual reports.")
    assert set(tool.args) == {"query"}
    message = tool.invoke(
        {"type": "tool_call", "id": "call-1", "name": "search_reports", "args": {"query": QUERY}}
    )
    assert isinstance(message, ToolMessage)
    docs = message.artifact
    assert [d.id for d in docs] == [d.id for d in retriever.invoke(QUERY)]
    for number, doc in enumerate(docs, 1):
        citation = doc.metadata["citation"]
        assert f"[{number}] {citation} (score " in message.content
        assert f" p.{doc.metadata['page']}" in citation
    assert docs[0].page_content.splitlines()[0] in message.content
    # Called with plain arguments, the tool returns just the text.
    text = tool.invoke({"query": QUERY})
    assert text == message.content
    plain = retriever.as_tool(response_format="content")
    assert (
        plain.invoke(
            {"type": "tool_call", "id": "2", "name": plain.name, "args": {"query": QUERY}}
        ).artifact
        is None
    )
    assert asyncio.run(tool.ainvoke({"query": QUERY})) == text


def test_tool_text_notes_items_without_text_and_cuts_long_pages(indexed_pipeline):
    retriever = MmragRetriever(pipeline=indexed_pipeline, k=2, filter={"modality": "image"})
    text = retriever.as_tool().invoke({"query": "picture"})
    assert text.count("(no text: visual content only)") == 2
    pdf = MmragRetriever(pipeline=indexed_pipeline, k=1, filter={"source": _pdf(indexed_pipeline)})
    (doc,) = pdf.invoke(QUERY)
    short = format_documents([doc], max_chars=20)
    assert short.split("\n", 1)[1] == doc.page_content[:20].rstrip() + " …"
    assert format_documents([]) == "No matching pages, images or video frames were found."


def test_from_config_builds_its_own_pipeline(tmp_path, tiny_config_for, caplog):
    config = tiny_config_for(tmp_path / "own-index")
    config.reranker = {"type": "maxsim"}
    config_file = config.save(tmp_path / "mmrag.toml")
    image = tmp_path / "diagram.png"
    image.write_bytes((SAMPLE / "system_diagram.png").read_bytes())
    retriever = MmragRetriever.from_config(config_file, k=1, image="uri")
    with retriever.pipeline as pipe:
        assert pipe.index([image]).indexed == 1
        (doc,) = retriever.invoke("diagram")
        assert doc.metadata["source"] == str(image)
        assert doc.metadata["image_uri"].startswith("file://" + str(tmp_path / "own-index"))
        # The config's reranker runs (its score is a stage), unless switched off.
        assert "maxsim" in doc.metadata["stage_scores"]
        (plain,) = retriever.invoke("diagram", rerank=False)
        assert "maxsim" not in plain.metadata["stage_scores"]
        # An item whose page image is gone still comes back, without image keys, and the log
        # says which one.
        pipe.assets.delete([doc.id])
        with caplog.at_level(logging.WARNING, logger="mmrag.integrations.langchain"):
            for mode in ("base64", "uri"):
                (bare,) = retriever.invoke("diagram", image=mode)
                assert bare.id == doc.id
                assert not {"image_base64", "image_uri", "image_mime"} & set(bare.metadata)
        assert f"no page image stored for {image}" in caplog.text
    from_dict = MmragRetriever.from_config({"store": {"path": str(tmp_path / "x")}}, k=2)
    assert (from_dict.k, from_dict.pipeline.config.store.path) == (2, str(tmp_path / "x"))


def test_errors_name_the_problem(indexed_pipeline):
    retriever = MmragRetriever(pipeline=indexed_pipeline, k=2)
    with pytest.raises(TypeError, match=r"unexpected argument.*top_k.*image and rerank"):
        retriever.invoke(QUERY, top_k=3)
    with pytest.raises(ConfigError, match=r"unknown filter key.*'pgaes'.*allowed: source"):
        retriever.invoke(QUERY, filter={"pgaes": (1, 2)})
    with pytest.raises(ValueError, match="k must be a positive integer"):
        retriever.invoke(QUERY, k=0)
    with pytest.raises(ValueError, match="non-empty string"):
        retriever.invoke("   ")
    with pytest.raises(ConfigError, match="image must be one of none, base64, uri"):
        retriever.invoke(QUERY, image="png")
    with pytest.raises(ValidationError, match="unknown stage 'glob'"):
        MmragRetriever(pipeline=indexed_pipeline, plan="glob@10 -> full@5")
    with pytest.raises(ValidationError, match="image"):
        MmragRetriever(pipeline=indexed_pipeline, image="png")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        MmragRetriever(pipeline=indexed_pipeline, k=0)
    with pytest.raises(ValueError, match="takes one 'query' string"):
        retriever.as_tool(arg_types={"query": str})


@pytest.mark.parametrize("name", ["", ".documents", ".retriever", ".tool"])
def test_module_doctests(name):
    module = importlib.import_module("mmrag.integrations.langchain" + name)
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0


def test_import_mmrag_does_not_import_langchain():
    code = (
        "import sys, mmrag, mmrag.store; mmrag.PipelineConfig; "
        "bad = [m for m in ('mmrag.integrations.langchain', 'langchain_core') "
        "if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent)


def test_metadata_added_through_the_retriever_is_returned_and_filterable(tmp_path, tiny_config_for):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    pdf = docs / "acme_solar_annual_report_2024.pdf"
    with Pipeline(tiny_config_for(tmp_path / "index")) as pipe:
        acme = MmragRetriever(pipeline=pipe, k=50, tenant="acme")
        report = acme.add_sources([pdf], metadata={"dept": "finance", "year": 2024})
        assert report.ok and report.indexed > 0
        globex = MmragRetriever(pipeline=pipe, k=50, tenant="globex")
        globex.add_sources([docs], metadata=lambda path: {"dept": Path(path).suffix[1:]})

        found = acme.invoke("revenue", filter={"metadata": {"dept": "finance"}})
        assert found and {d.metadata["source"] for d in found} == {str(pdf.resolve())}
        assert found[0].metadata["dept"] == "finance"
        assert found[0].metadata["user_metadata"] == {"dept": "finance", "year": 2024}
        assert acme.invoke("revenue", filter={"where": ["year>=2025"]}) == []
        assert acme.invoke("revenue", filter={"ranges": {"year": (2024, 2024)}})
        # each tenant sees its own documents only, even with the other's filter
        assert acme.invoke("revenue", filter={"metadata": {"dept": "pdf"}}) == []
        theirs = globex.invoke("revenue", filter={"metadata": {"dept": "pdf"}})
        assert theirs and all(d.metadata["dept"] == "pdf" for d in theirs)
        assert {d.id for d in theirs}.isdisjoint({d.id for d in found})
        with pytest.raises(ConfigError, match="key=value"):
            acme.invoke("revenue", filter={"where": ["dept"]})
