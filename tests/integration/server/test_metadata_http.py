"""User metadata over HTTP: attached when indexing (upload form field, path body field),
returned with hits, filtered on by search (``filter=``) and ask (``"filter": [...]``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mmrag.integrations.server import create_app

from .conftest import SAMPLE, assert_error, server_config, wait_for_job

pytestmark = pytest.mark.integration

PDF = SAMPLE / "acme_solar_annual_report_2024.pdf"
PNG = SAMPLE / "customer_survey_slide.png"
HR = {"dept": "hr", "year": 2021, "tags": ["policy", "audit"]}
LEGAL = {"dept": "legal", "year": 2019}


def _upload(client: TestClient, *paths: Path, metadata: Any = None, names: list[str] | None = None):
    files = [
        ("files", (name, p.read_bytes(), "application/octet-stream"))
        for p, name in zip(paths, names or [p.name for p in paths], strict=True)
    ]
    data = {} if metadata is None else {"metadata": metadata}
    return client.post("/api/v1/index", files=files, data=data)


def _indexed(client: TestClient, *paths: Path, **kwargs: Any) -> dict[str, Any]:
    response = _upload(client, *paths, **kwargs)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def _search(client: TestClient, *filters: str, **params: Any) -> list[dict[str, Any]]:
    query = [("q", "solar"), ("k", "20"), *(("filter", f) for f in filters), *params.items()]
    response = client.get("/api/v1/search", params=query)
    assert response.status_code == 200, response.text
    return response.json()["hits"]


def _names(hits: list[dict[str, Any]]) -> set[str]:
    return {Path(h["item"]["source"]).name for h in hits}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, tiny_colmodernvbert, tiny_smolvlm):
    """One app: the PDF uploaded as HR's, the PNG as legal's (read-only tests share it)."""
    root = tmp_path_factory.mktemp("metadata")
    config = server_config(root / "index", tiny_colmodernvbert, tiny_smolvlm)
    with TestClient(create_app(config, upload_dir=root / "up")) as client:
        job = _indexed(client, PDF, metadata=json.dumps(HR))
        assert job["metadata"] == HR
        _indexed(client, PNG, metadata=json.dumps(LEGAL))
        client.uploads = root / "up"  # type: ignore[attr-defined]
        yield client


# -- filters ------------------------------------------------------------------------------------


def test_hits_carry_their_metadata(labelled):
    hits = _search(labelled)
    assert len(hits) == 6
    for hit in hits:
        expected = HR if hit["item"]["source"].endswith(".pdf") else LEGAL
        assert hit["metadata"] == expected
        assert hit["item"]["metadata"] == expected


def test_search_filters_on_metadata(labelled):
    assert _names(_search(labelled, "dept=hr")) == {PDF.name}
    assert len(_search(labelled, "dept=hr")) == 5
    assert _names(_search(labelled, "dept=legal")) == {PNG.name}
    assert _search(labelled, "dept=finance") == []
    assert _names(_search(labelled, "dept=hr", "dept=legal")) == {PDF.name, PNG.name}  # any of
    assert _names(_search(labelled, "tags=audit")) == {PDF.name}  # a list: any element


def test_search_range_filters(labelled):
    assert _names(_search(labelled, "year>=2020")) == {PDF.name}
    assert _names(_search(labelled, "year<=2020")) == {PNG.name}
    assert _names(_search(labelled, "year>=2019", "year<=2021")) == {PDF.name, PNG.name}
    assert _search(labelled, "dept=hr", "year<=2020") == []  # every condition must hold


def test_filters_combine_with_source_and_modality(labelled):
    assert _search(labelled, "dept=hr", modality="image") == []
    assert _names(_search(labelled, "dept=legal", modality="image")) == {PNG.name}


def test_invalid_filters_are_400_with_a_message(labelled):
    for bad, words in [
        ("dept", ["'dept'", "key=value"]),
        ("year>=recent", ["needs a number"]),
        ("bad key=1", ["key=value"]),
    ]:
        response = labelled.get("/api/v1/search", params={"q": "x", "filter": bad})
        assert_error(response, 400, "bad_request", *words)
    ask = labelled.post("/api/v1/ask", json={"question": "What grew?", "filter": ["dept"]})
    assert_error(ask, 400, "bad_request", "key=value")


def test_ask_filters_on_metadata(labelled):
    question = {"question": "What did customers say?", "k": 3}
    response = labelled.post("/api/v1/ask", json={**question, "filter": ["dept=legal"]})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert _names(answer["sources"]) == {PNG.name}
    assert all(h["metadata"] == LEGAL for h in answer["sources"])
    nothing = labelled.post("/api/v1/ask", json={**question, "filter": ["year>=2030"]})
    assert nothing.status_code == 200 and nothing.json()["sources"] == []


# -- invalid metadata ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ("{not json", ["JSON object"]),
        ('["hr"]', ["JSON object", "list"]),
        ('{"bad key": 1}', ["'bad key'", "letters, digits"]),
        ('{"dept": {"nested": 1}}', ["'dept'", "string, number, boolean"]),
    ],
)
def test_invalid_upload_metadata_is_400_and_nothing_is_saved(labelled, metadata, words):
    before = labelled.get("/api/v1/jobs").json()
    response = _upload(labelled, PNG, metadata=metadata, names=["rejected.png"])
    assert_error(response, 400, "bad_request", *words)
    assert labelled.get("/api/v1/jobs").json() == before
    assert not (labelled.uploads / "rejected.png").exists()


def test_openapi_documents_metadata_and_filters(labelled):
    spec = labelled.get("/openapi.json").json()
    search = spec["paths"]["/api/v1/search"]["get"]
    (param,) = [p for p in search["parameters"] if p["name"] == "filter"]
    assert "key>=number" in param["description"]
    upload_ref = spec["paths"]["/api/v1/index"]["post"]["requestBody"]["content"]
    form = spec["components"]["schemas"][
        upload_ref["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    ]
    assert "JSON object" in form["properties"]["metadata"]["description"]
    schemas = spec["components"]["schemas"]
    assert "metadata" in schemas["IndexPathIn"]["properties"]
    assert "filter" in schemas["AskIn"]["properties"]
    assert "metadata" in schemas["HitOut"]["properties"]
    assert "Tenants" in spec["info"]["description"]


# -- writing: paths, relabelling, copies --------------------------------------------------------


def test_index_path_with_metadata(tiny_config, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    shutil.copy(PNG, root / PNG.name)
    with TestClient(create_app(tiny_config, allowed_roots=[root])) as client:
        post = lambda body: client.post("/api/v1/index/path", json=body)  # noqa: E731
        assert_error(post({"path": ".", "metadata": {"bad key": 1}}), 400, "bad_request", "key")
        assert_error(post({"path": ".", "metadata": ["hr"]}), 422, "validation_error")
        job = wait_for_job(client, post({"path": ".", "metadata": {"dept": "ops"}}).json()["id"])
        assert job["status"] == "succeeded", job
        assert _names(_search(client, "dept=ops")) == {PNG.name}
        assert _search(client, "dept=hr") == []


def test_reindexing_with_new_metadata_relabels(tiny_config, tmp_path):
    with TestClient(create_app(tiny_config, upload_dir=tmp_path / "up")) as client:
        _indexed(client, PNG, metadata='{"dept": "hr"}')
        _indexed(client, PNG, metadata='{"dept": "legal"}')
        assert _search(client, "dept=hr") == []
        assert [h["metadata"] for h in _search(client, "dept=legal")] == [{"dept": "legal"}]


def test_the_same_bytes_under_two_names_are_two_findable_sources(tiny_config, tmp_path):
    uploads = (tmp_path / "up").resolve()
    with TestClient(create_app(tiny_config, upload_dir=uploads)) as client:
        job = _indexed(client, PNG, PNG, names=["first.png", "second.png"])
        assert job["report"]["skipped"] == 0, job["report"]
        assert job["report"]["failed"] == []
        listed = client.get("/api/v1/sources").json()
        both = [str(uploads / "first.png"), str(uploads / "second.png")]
        assert listed == {"sources": both, "counts": dict.fromkeys(both, 1)}
        for source in both:
            (hit,) = _search(client, source=source)
            assert hit["item"]["source"] == source
            assert client.get(hit["image_url"]).status_code == 200
        later = _indexed(client, PNG, names=["third.png"])  # a copy uploaded later, alone
        assert later["report"]["skipped"] == 0, later["report"]
        assert len(client.get("/api/v1/sources").json()["sources"]) == 3
        assert client.get("/api/v1/health").json()["items"] == 3
