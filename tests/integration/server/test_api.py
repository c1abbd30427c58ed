"""The HTTP API end to end: a real FastAPI app over a tiny-model pipeline and the embedded store."""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mmrag.errors import ConfigError
from mmrag.integrations.server import create_app
from mmrag.pipeline.pipeline import Pipeline
from mmrag.testing.media import make_pdf

from .conftest import SAMPLE, server_config, wait_for_job

pytestmark = pytest.mark.integration

PDF = SAMPLE / "acme_solar_annual_report_2024.pdf"
PNG = SAMPLE / "customer_survey_slide.png"


def _upload(client: TestClient, *paths: Path, **params: object):
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    return client.post("/api/v1/index", files=files, params=params)


def _assert_error(response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    for word in words:
        assert word in body["error"]["message"], body


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_colmodernvbert):
    """One app with the sample PDF and PNG uploaded and indexed (read-only tests share it)."""
    root = tmp_path_factory.mktemp("served")
    app = create_app(server_config(root / "index", tiny_colmodernvbert))
    with TestClient(app) as client:
        response = _upload(client, PDF, PNG)
        assert response.status_code == 202, response.text
        job = wait_for_job(client, response.json()["id"])
        assert job["status"] == "succeeded", job
        client.job = job  # type: ignore[attr-defined]
        yield client


# -- indexing by upload -------------------------------------------------------------------------


def test_upload_job_reports_progress_and_its_report(indexed):
    job = indexed.job
    progress = job["progress"]
    assert progress["files_total"] == progress["files_done"] == 2
    assert progress["pages_done"] == 5 + 1  # the PDF's five pages and the slide
    assert progress["pages_per_s"] > 0
    assert progress["fraction"] == 1.0
    assert job["report"]["indexed"] == 6
    assert job["report"]["failed"] == []
    assert job["report"]["sources"] == 2
    assert job["started_at"] >= job["created_at"] and job["finished_at"] >= job["started_at"]
    listed = indexed.get("/api/v1/jobs").json()
    assert [j["id"] for j in listed] == [job["id"]]


def test_health_and_sources(indexed):
    health = indexed.get("/api/v1/health").json()
    assert health["status"] == "ok"
    assert health["items"] == 6
    assert health["auth_required"] is False
    assert health["paths_allowed"] is False
    assert health["ask_available"] is False  # no generator in this config
    sources = indexed.get("/api/v1/sources").json()["sources"]
    assert sorted(Path(s).name for s in sources) == sorted([PDF.name, PNG.name])


def test_reupload_of_the_same_files_skips_them(indexed):
    job = wait_for_job(indexed, _upload(indexed, PNG).json()["id"])
    assert job["status"] == "succeeded"
    assert (job["report"]["indexed"], job["report"]["skipped"]) == (0, 1)
    assert indexed.get("/api/v1/health").json()["items"] == 6


# -- search and images --------------------------------------------------------------------------


def test_search_returns_ranked_hits_with_stage_scores_and_image_urls(indexed):
    response = indexed.get("/api/v1/search", params={"q": "revenue growth in 2024", "k": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == "revenue growth in 2024"
    hits = body["hits"]
    assert len(hits) == 4
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    for hit in hits:
        assert set(hit["stage_scores"]) == {"tokens", "distinct", "full"}
        assert hit["image_url"] == f"/api/v1/items/{hit['id']}/image"
        assert hit["citation"].startswith(hit["item"]["source"])


def test_search_filters_by_source_and_modality(indexed):
    pdf_source = next(s for s in indexed.get("/api/v1/sources").json()["sources"] if "pdf" in s)
    hits = indexed.get("/api/v1/search", params={"q": "solar", "k": 10, "source": pdf_source})
    assert {h["item"]["source"] for h in hits.json()["hits"]} == {pdf_source}
    images = indexed.get("/api/v1/search", params={"q": "solar", "k": 10, "modality": "image"})
    assert [h["item"]["modality"] for h in images.json()["hits"]] == ["image"]


def test_search_validation_errors_are_json(indexed):
    bad_k = indexed.get("/api/v1/search", params={"q": "x", "k": 0})
    _assert_error(bad_k, 422, "validation_error", "k")
    _assert_error(indexed.get("/api/v1/search"), 422, "validation_error", "q")
    _assert_error(
        indexed.get("/api/v1/search", params={"q": "x", "modality": "audio"}),
        422,
        "validation_error",
        "modality",
    )
    _assert_error(
        indexed.get("/api/v1/search", params={"q": "x", "plan": "global@5 -> full@10"}),
        400,
        "bad_request",
        "only narrow",
    )


def test_item_image_is_the_stored_page(indexed):
    hit = indexed.get("/api/v1/search", params={"q": "chart", "k": 1}).json()["hits"][0]
    response = indexed.get(hit["image_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (hit["item"]["width"], hit["item"]["height"])
    thumb = indexed.get(hit["image_url"], params={"max_side": 64})
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 64


def test_unknown_and_malformed_item_ids(indexed):
    unknown = "00000000-0000-5000-8000-000000000000"
    _assert_error(indexed.get(f"/api/v1/items/{unknown}/image"), 404, "not_found", unknown)
    _assert_error(indexed.get("/api/v1/items/..%2F..%2Fetc/image"), 404, "not_found")
    _assert_error(indexed.get("/api/v1/items/not-an-id/image"), 422, "validation_error")


def test_unknown_routes_jobs_and_methods_are_json_errors(indexed):
    _assert_error(indexed.get("/api/v1/jobs/nope"), 404, "not_found", "nope")
    _assert_error(indexed.get("/api/v1/nothing"), 404, "not_found", "/api/v1/nothing")
    _assert_error(indexed.put("/api/v1/search"), 405, "method_not_allowed", "PUT")


def test_ask_without_a_generator_is_unavailable(indexed):
    response = indexed.post("/api/v1/ask", json={"question": "What grew?"})
    _assert_error(response, 503, "unavailable", "no generator is configured")
    _assert_error(indexed.post("/api/v1/ask", json={"question": ""}), 422, "validation_error")
    _assert_error(indexed.post("/api/v1/ask", json={}), 422, "validation_error", "question")


def test_ask_answers_and_cites_pages_with_images(tmp_path, tiny_colmodernvbert, tiny_smolvlm):
    config = server_config(tmp_path / "index", tiny_colmodernvbert, tiny_smolvlm)
    with TestClient(create_app(config, upload_dir=tmp_path / "up")) as client:
        health = client.get("/api/v1/health").json()
        assert health["ask_available"] is True
        assert health["generator"] == str(tiny_smolvlm)
        wait_for_job(client, _upload(client, PDF, PNG).json()["id"])
        question = {"question": "How much did revenue grow in 2024?", "k": 2}
        response = client.post("/api/v1/ask", json=question)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert isinstance(answer["text"], str)
        assert set(answer["timings"]) - {"load"} == {"retrieve", "rerank", "generate", "total"}
        assert answer["timings"]["total"] >= answer["timings"]["generate"] > 0
        assert len(answer["sources"]) == 2
        source_ids = [h["id"] for h in answer["sources"]]
        assert answer["citations"] and {h["id"] for h in answer["citations"]} <= set(source_ids)
        for hit in answer["citations"]:
            image = client.get(hit["image_url"])
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        only_png = client.post("/api/v1/ask", json={**question, "modality": ["image"]}).json()
        assert [h["item"]["modality"] for h in only_png["sources"]] == ["image"]


def test_ask_with_a_generator_that_cannot_load_is_unavailable(tmp_path, tiny_colmodernvbert):
    config = server_config(tmp_path / "index", tiny_colmodernvbert)
    config.generator = {"type": "transformers", "init_parameters": {"model": "/no/such/model"}}
    with TestClient(create_app(config)) as client:
        response = client.post("/api/v1/ask", json={"question": "anything?"})
        _assert_error(response, 503, "unavailable", "/no/such/model", "/search")
        assert client.get("/api/v1/search", params={"q": "anything"}).status_code == 200


def test_openapi_describes_every_endpoint(indexed):
    spec = indexed.get("/openapi.json").json()
    assert spec["info"]["title"] == "mmrag"
    assert "citations" in spec["info"]["description"]
    paths = spec["paths"]
    expected = {
        ("/api/v1/health", "get"),
        ("/api/v1/index", "post"),
        ("/api/v1/index/path", "post"),
        ("/api/v1/jobs/{job_id}", "get"),
        ("/api/v1/search", "get"),
        ("/api/v1/ask", "post"),
        ("/api/v1/sources", "get"),
        ("/api/v1/sources", "delete"),
        ("/api/v1/items/{item_id}/image", "get"),
    }
    for path, method in expected:
        operation = paths[path][method]
        assert operation["summary"] and operation["description"], (path, method)
    assert "ErrorOut" in spec["components"]["schemas"]
    assert "/" not in paths  # the web page is not part of the API


def test_web_page_and_assets_are_served(indexed):
    page = indexed.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "static/app.js" in page.text
    assert indexed.get("/static/app.js").status_code == 200
    assert indexed.get("/static/app.css").status_code == 200


# -- uploads: names, limits, bad files ----------------------------------------------------------


def test_upload_names_cannot_escape_the_upload_dir(tiny_config, tmp_path):
    uploads = tmp_path / "uploads"
    with TestClient(create_app(tiny_config, upload_dir=uploads)) as client:
        files = [("files", ("../../escape.png", PNG.read_bytes(), "image/png"))]
        job = wait_for_job(client, client.post("/api/v1/index", files=files).json()["id"])
        assert job["status"] == "succeeded"
        assert job["inputs"] == [str(uploads.resolve() / "escape.png")]
        assert [p.name for p in uploads.iterdir()] == ["escape.png"]
        assert not (tmp_path / "escape.png").exists()
        _assert_error(client.post("/api/v1/index"), 422, "validation_error", "files")


def test_an_unreadable_upload_is_reported_and_the_job_carries_on(tiny_config, tmp_path):
    with TestClient(create_app(tiny_config, upload_dir=tmp_path / "up")) as client:
        files = [
            ("files", ("broken.pdf", b"%PDF-1.7 not really", "application/pdf")),
            ("files", (PNG.name, PNG.read_bytes(), "image/png")),
        ]
        job = wait_for_job(client, client.post("/api/v1/index", files=files).json()["id"])
        assert job["status"] == "succeeded"
        assert job["report"]["indexed"] == 1
        (failure,) = job["report"]["failed"]
        assert failure["source"].endswith("broken.pdf") and failure["reason"]


def test_upload_over_the_size_limit_is_refused_with_413(tiny_config, tmp_path):
    uploads = tmp_path / "up"
    app = create_app(tiny_config, max_upload_mb=0.01, upload_dir=uploads)  # ~10 kB
    big = PDF.read_bytes()  # 19 kB
    with TestClient(app) as client:
        response = client.post("/api/v1/index", files=[("files", ("big.pdf", big, "x"))])
        _assert_error(response, 413, "payload_too_large", "0.01 MB")

        boundary = "mmrag-test-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n'
            ).encode()
            + big
            + f"\r\n--{boundary}--\r\n".encode()
        )

        def chunks():  # no Content-Length: the limit is enforced while the body streams in
            for start in range(0, len(body), 4096):
                yield body[start : start + 4096]

        streamed = client.post(
            "/api/v1/index",
            content=chunks(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        _assert_error(streamed, 413, "payload_too_large")
        assert client.get("/api/v1/jobs").json() == []
        assert not uploads.exists() or list(uploads.iterdir()) == []


# -- server-side paths --------------------------------------------------------------------------


def test_index_path_is_disabled_without_allowed_roots(tiny_config):
    with TestClient(create_app(tiny_config)) as client:
        response = client.post("/api/v1/index/path", json={"path": str(SAMPLE)})
        _assert_error(response, 403, "forbidden", "--allow-path")


def test_index_path_inside_allowed_roots_only(tiny_config, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    shutil.copy(PNG, root / PNG.name)
    outside = tmp_path / "secret"
    outside.mkdir()
    shutil.copy(PDF, outside / "secret.pdf")
    (root / "escape").symlink_to(outside)  # a directory link out of the root
    (root / "leak.pdf").symlink_to(outside / "secret.pdf")  # a file link out of the root
    with TestClient(create_app(tiny_config, allowed_roots=[root])) as client:
        post = lambda path: client.post("/api/v1/index/path", json={"path": path})  # noqa: E731
        _assert_error(post("../secret"), 400, "bad_request", "'..'")
        _assert_error(post(f"{root}/../secret/secret.pdf"), 400, "bad_request", "'..'")
        _assert_error(post(str(outside / "secret.pdf")), 403, "forbidden", "outside")
        _assert_error(post("escape"), 403, "forbidden", "outside")
        _assert_error(post("leak.pdf"), 403, "forbidden", "outside")
        _assert_error(post("*.png"), 400, "bad_request", "glob")
        _assert_error(post("missing.pdf"), 404, "not_found", "missing.pdf")

        job = wait_for_job(client, post(".").json()["id"])  # the root itself
        assert job["status"] == "succeeded", job
        assert job["report"]["indexed"] == 1  # only the PNG
        (refused,) = job["report"]["failed"]
        assert refused["source"].endswith("secret.pdf")  # sources are canonical: the link's target
        assert "outside the allowed roots" in refused["reason"]
        sources = client.get("/api/v1/sources").json()["sources"]
        assert sources == [str(root / PNG.name)]


# -- delete -------------------------------------------------------------------------------------


def test_delete_source_removes_its_items_images_and_upload(tiny_config, tmp_path):
    uploads = tmp_path / "up"
    with TestClient(create_app(tiny_config, upload_dir=uploads)) as client:
        job = wait_for_job(client, _upload(client, PDF, PNG).json()["id"])
        pdf_source = str(uploads.resolve() / PDF.name)
        hits = client.get("/api/v1/search", params={"q": "solar", "k": 10}).json()["hits"]
        pdf_hit = next(h for h in hits if h["item"]["source"] == pdf_source)
        response = client.delete("/api/v1/sources", params={"source": pdf_source})
        assert response.status_code == 200, response.text
        assert response.json() == {"source": pdf_source, "removed": 5}
        left = client.get("/api/v1/sources").json()["sources"]
        assert left == [str(uploads.resolve() / PNG.name)]
        assert client.get("/api/v1/health").json()["items"] == job["report"]["indexed"] - 5
        _assert_error(client.get(pdf_hit["image_url"]), 404, "not_found")
        assert not (uploads / PDF.name).exists()
        _assert_error(
            client.delete("/api/v1/sources", params={"source": pdf_source}), 404, "not_found"
        )


# -- auth ---------------------------------------------------------------------------------------


def test_api_key_from_an_env_var(tiny_config, monkeypatch):
    monkeypatch.setenv("MMRAG_TEST_API_KEY", "let-me-in")
    app = create_app(tiny_config, api_key="env:MMRAG_TEST_API_KEY")
    with TestClient(app) as client:
        health = client.get("/api/v1/health")  # open, so load balancers can probe it
        assert health.status_code == 200 and health.json()["auth_required"] is True
        _assert_error(client.get("/api/v1/sources"), 401, "unauthorized", "X-API-Key")
        wrong = client.get("/api/v1/sources", headers={"X-API-Key": "guess"})
        _assert_error(wrong, 401, "unauthorized", "not valid")
        assert wrong.headers["www-authenticate"] == "Bearer"
        ok = client.get("/api/v1/sources", headers={"X-API-Key": "let-me-in"})
        assert ok.status_code == 200
        bearer = client.get("/api/v1/sources", headers={"Authorization": "Bearer let-me-in"})
        assert bearer.status_code == 200
        assert client.get("/").status_code == 200  # the page itself asks for the key


def test_api_key_configuration_errors(tiny_config, monkeypatch):
    monkeypatch.delenv("MMRAG_TEST_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match="MMRAG_TEST_UNSET_KEY"):
        create_app(tiny_config, api_key="env:MMRAG_TEST_UNSET_KEY")
    with pytest.raises(ConfigError, match="never stored as values"):
        create_app(tiny_config, api_key="plain-text-key")
    with pytest.raises(ConfigError, match="not a directory"):
        create_app(tiny_config, allowed_roots=["/no/such/dir"])


# -- concurrency and shutdown -------------------------------------------------------------------


def test_searches_while_an_index_job_writes(tiny_config, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    make_pdf(docs / "long.pdf", pages=12)  # a job long enough to overlap the searches
    with TestClient(create_app(tiny_config, allowed_roots=[docs])) as client:
        first = wait_for_job(client, _upload(client, PNG).json()["id"])
        assert first["status"] == "succeeded"
        job_id = client.post("/api/v1/index/path", json={"path": str(docs)}).json()["id"]
        results: list[tuple[int, int, str]] = []  # (status, hits, job status when it returned)
        errors: list[BaseException] = []
        done = threading.Event()

        def searcher() -> None:
            try:
                while not done.is_set() or len(results) < 6:
                    r = client.get("/api/v1/search", params={"q": "solar panels", "k": 3})
                    state = client.get(f"/api/v1/jobs/{job_id}").json()["status"]
                    results.append((r.status_code, len(r.json()["hits"]), state))
                    client.get("/api/v1/sources").raise_for_status()
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=searcher) for _ in range(3)]
        for thread in threads:
            thread.start()
        job = wait_for_job(client, job_id)
        done.set()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert all(status == 200 and 1 <= hits <= 3 for status, hits, _ in results), results
        assert sum(state == "running" for _, _, state in results) >= 3  # they overlapped
        assert job["status"] == "succeeded", job
        assert job["report"]["failed"] == []
        assert job["progress"]["files_done"] == job["progress"]["files_total"] == 6
        total = client.get("/api/v1/health").json()["items"]
        assert total == 1 + job["report"]["indexed"]


def test_jobs_queue_one_at_a_time_and_shutdown_cancels_and_closes(tiny_config, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    pipeline = Pipeline(tiny_config)
    app = create_app(pipeline, allowed_roots=[docs])
    with TestClient(app) as client:
        ids = [
            client.post("/api/v1/index/path", json={"path": str(docs)}).json()["id"]
            for _ in range(2)
        ]
        second = client.get(f"/api/v1/jobs/{ids[1]}").json()
        assert second["status"] == "queued"  # behind the first
        first = wait_for_job(client, ids[0])
        assert first["status"] == "succeeded"
        third = client.post("/api/v1/index/path", json={"path": str(docs), "force": True})
        third_id = third.json()["id"]
    # The app closed the store on shutdown, so another pipeline can open the folder now.
    job = app.state.service.jobs.get(third_id)
    assert job.status in ("cancelled", "succeeded")
    with Pipeline(tiny_config) as again:
        assert again.store.count() == first["report"]["indexed"]


def test_create_app_from_a_config_file(tiny_config, tmp_path):
    path = tiny_config.save(tmp_path / "mmrag.toml")
    app = create_app(os.fspath(path))
    with TestClient(app) as client:
        assert client.get("/api/v1/health").json()["items"] == 0


def test_any_spelling_of_a_path_names_one_source(tiny_config, tmp_path):
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    shutil.copy(PNG, root / "sub" / PNG.name)
    with TestClient(create_app(tiny_config, allowed_roots=[root])) as client:
        post = client.post("/api/v1/index/path", json={"path": f"./sub//{PNG.name}"})
        assert wait_for_job(client, post.json()["id"])["status"] == "succeeded"
        canonical = str((root / "sub" / PNG.name).resolve())
        assert client.get("/api/v1/sources").json()["sources"] == [canonical]
        hits = client.get("/api/v1/search", params={"q": "x", "source": f"{root}/sub/./{PNG.name}"})
        assert [h["item"]["source"] for h in hits.json()["hits"]] == [canonical]
        gone = client.delete("/api/v1/sources", params={"source": f"{root}//sub/{PNG.name}"})
        assert gone.status_code == 200 and gone.json()["removed"] == 1, gone.text
        assert client.get("/api/v1/sources").json()["sources"] == []
