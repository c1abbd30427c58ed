"""Core types: deterministic ids, payload round trip, embedding validation, reports."""

from __future__ import annotations

import json
import os
import uuid

import numpy as np
import pytest

from mmrag.types import (
    ITEM_NAMESPACE,
    Answer,
    Embedding,
    Hit,
    IndexReport,
    Item,
    Modality,
    canonical_source,
    check_metadata,
    content_id,
    item_id,
)

pytestmark = pytest.mark.unit

SHA = "a" * 64


def test_item_id_is_uuid5_of_tenant_source_sha_locator_embedder():
    expected = uuid.uuid5(ITEM_NAMESPACE, f"\x1f/d/a.pdf\x1f{SHA}\x1fpage=3\x1fcolqwen2")
    assert item_id("/d/a.pdf", SHA, "page=3", "colqwen2") == str(expected)
    assert uuid.UUID(item_id("/d/a.pdf", SHA, "page=3", "colqwen2")).version == 5


def test_item_id_changes_with_each_component():
    base = item_id("/d/a.pdf", SHA, "page=1", "e1")
    assert item_id("/d/b.pdf", SHA, "page=1", "e1") != base  # a copy is its own point
    assert item_id("/d/a.pdf", "b" * 64, "page=1", "e1") != base
    assert item_id("/d/a.pdf", SHA, "page=2", "e1") != base
    assert item_id("/d/a.pdf", SHA, "page=1", "e2") != base
    assert item_id("/d/a.pdf", SHA, "page=1", "e1", "acme") != base
    assert item_id("/d/a.pdf", SHA, "page=1", "e1") == base


def test_item_id_requires_hash_and_source():
    with pytest.raises(ValueError, match="sha256"):
        item_id("/d/a.pdf", "", "page=1")
    with pytest.raises(ValueError, match="source"):
        item_id("", SHA, "page=1")


def test_copies_share_the_content_id_not_the_point_id():
    a = Item(source="/d/a.pdf", source_sha256=SHA, modality="pdf_page", page=1, embedder_id="e")
    b = Item(source="/d/b.pdf", source_sha256=SHA, modality="pdf_page", page=1, embedder_id="e")
    assert a.id != b.id and a.content_id == b.content_id == content_id(SHA, "page=1", "e")
    assert a.to_payload()["content_id"] == a.content_id


def test_item_ids_bind_to_embedder():
    page = Item(source="r.pdf", source_sha256=SHA, modality=Modality.PDF_PAGE, page=2)
    bound = page.with_embedder("clip@1")
    assert bound.id == page.point_id("clip@1") == item_id("r.pdf", SHA, "page=2", "clip@1")
    assert page.id != bound.id


def test_canonical_source_gives_one_spelling(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    target = tmp_path / "docs" / "a.pdf"
    target.write_bytes(b"%PDF")
    monkeypatch.chdir(tmp_path)
    spellings = ["docs/a.pdf", "./docs/a.pdf", "docs/../docs/a.pdf", str(target)]
    assert {canonical_source(s) for s in spellings} == {os.path.realpath(target)}
    assert canonical_source("https://example.com/a.pdf") == "https://example.com/a.pdf"
    assert canonical_source("upload://acme/a.pdf") == "upload://acme/a.pdf"


def test_user_metadata_is_checked():
    assert check_metadata({"dept": "hr", "tags": ("a", "b")}) == {"dept": "hr", "tags": ["a", "b"]}
    with pytest.raises(ValueError, match="metadata key"):
        check_metadata({"bad key": 1})
    with pytest.raises(ValueError, match="must be a string, number"):
        check_metadata({"when": {"nested": 1}})
    with pytest.raises(ValueError, match="must be a string, number"):
        check_metadata({"x": float("nan")})


def test_locators_for_each_modality():
    assert Item(source="a", source_sha256=SHA, modality="pdf_page", page=4).locator == "page=4"
    frame = Item(
        source="v", source_sha256=SHA, modality="video_frame", frame_index=7, timestamp_s=0.28
    )
    assert frame.locator == "frame=7"
    assert Item(source="i", source_sha256=SHA, modality="image").locator == "whole"


def test_modality_is_coerced_and_validated():
    assert Item(source="a", source_sha256=SHA, modality="image").modality is Modality.IMAGE
    with pytest.raises(ValueError, match="audio"):
        Item(source="a", source_sha256=SHA, modality="audio")


def test_page_numbers_are_one_based():
    with pytest.raises(ValueError, match="1-based"):
        Item(source="a.pdf", source_sha256=SHA, modality="pdf_page", page=0)


def test_payload_round_trip_keeps_every_field():
    item = Item(
        source="deck.pdf",
        source_sha256=SHA,
        modality=Modality.PDF_PAGE,
        page=3,
        page_label="iii",
        width=800,
        height=600,
        text="Revenue grew",
        metadata={"team": "solar", "year": 2025},
        embedder_id="colqwen2@abc",
    )
    payload = item.to_payload()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["modality"] == "pdf_page"
    assert "frame_index" not in payload  # None fields are left out
    assert Item.from_payload(payload) == item


def test_lazy_image_loader_is_called_on_demand():
    calls = []

    def loader():
        calls.append(1)
        return "pixels"

    item = Item(source="a.png", source_sha256=SHA, modality="image", image_loader=loader)
    assert calls == []
    assert item.load_image() == "pixels"
    assert calls == [1]
    with pytest.raises(ValueError, match=r"a\.png"):
        Item(source="a.png", source_sha256=SHA, modality="image").load_image()


def test_citations_name_page_and_video_second():
    page = Item(source="r.pdf", source_sha256=SHA, modality="pdf_page", page=12, page_label="x")
    assert page.citation() == "r.pdf p.12 (label x)"
    frame = Item(
        source="t.mp4",
        source_sha256=SHA,
        modality="video_frame",
        frame_index=2000,
        timestamp_s=83.4,
    )
    assert frame.citation() == "t.mp4 @ 1:23.4"
    gif = Item(source="a.gif", source_sha256=SHA, modality="image", frame_index=0)
    assert gif.citation() == "a.gif frame 0"
    assert Item(source="b.png", source_sha256=SHA, modality="image").citation() == "b.png"


def test_embedding_requires_exactly_one_form():
    with pytest.raises(ValueError, match="exactly one"):
        Embedding()
    with pytest.raises(ValueError, match="exactly one"):
        Embedding(dense=np.zeros(4, np.float32), multi=np.zeros((2, 4), np.float32))


def test_embedding_checks_shapes_and_dtypes():
    with pytest.raises(ValueError, match="dtype"):
        Embedding(dense=np.zeros(4, np.float64))
    with pytest.raises(ValueError, match=r"\(d,\)"):
        Embedding(dense=np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="mask"):
        Embedding(multi=np.zeros((3, 4), np.float32), mask=np.ones(2, bool))
    with pytest.raises(ValueError, match="grid 2x2"):
        Embedding(multi=np.zeros((6, 4), np.float32), grid=(2, 2))


def test_embedding_visual_rows_follow_the_mask():
    multi = np.arange(20, dtype=np.float32).reshape(5, 4)
    mask = np.array([False, True, True, True, True])
    emb = Embedding(multi=multi, mask=mask, grid=(2, 2))
    assert emb.kind == "multi" and emb.dim == 4 and emb.num_vectors == 5
    np.testing.assert_array_equal(emb.visual(), multi[1:])
    dense = Embedding(dense=np.ones(8, np.float16))
    assert dense.kind == "single" and dense.dim == 8
    with pytest.raises(ValueError, match="no token vectors"):
        dense.visual()


def test_hit_and_answer_serialise_to_json():
    item = Item(source="r.pdf", source_sha256=SHA, modality="pdf_page", page=1)
    hit = Hit(id=item.id, score=np.float32(0.5), item=item, stage_scores={"global": 0.25})
    answer = Answer(
        text="yes", citations=[hit], usage={"output_tokens": 3}, timings={"generate": 0.1}
    )
    data = json.loads(json.dumps(answer.to_dict()))
    assert data["citations"][0]["citation"] == "r.pdf p.1"
    assert data["citations"][0]["stage_scores"] == {"global": 0.25}
    assert data["citations"][0]["score"] == 0.5


def test_index_report_counts_failures_and_merges():
    a = IndexReport(indexed=2, skipped=1, sources=2)
    a.add_failure("bad.pdf", ValueError("the file is empty"))
    b = IndexReport(indexed=5, sources=1)
    a.merge(b)
    assert (a.indexed, a.skipped, a.sources) == (7, 1, 3)
    assert not a.ok
    assert a.failed[0].source == "bad.pdf"
    assert a.failed[0].reason == "the file is empty"
    assert a.failed[0].error_type == "ValueError"
    assert json.loads(a.to_json())["failed"][0]["source"] == "bad.pdf"
    assert a.summary() == "7 indexed, 1 skipped (already present), 1 failed"
