"""Tenants on the HTTP server: each API key belongs to one tenant, and no route lets one tenant
read, find, delete or fetch the page image of another's items (or see its jobs)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient

from mmrag.auth import Secret
from mmrag.cli.serving import parse_tenants, serve_app
from mmrag.errors import ConfigError
from mmrag.integrations.server import create_app

from .conftest import SAMPLE, assert_error, server_config, wait_for_job

pytestmark = pytest.mark.integration

PDF = SAMPLE / "acme_solar_annual_report_2024.pdf"
PNG = SAMPLE / "customer_survey_slide.png"
UNKNOWN_ID = "00000000-0000-5000-8000-000000000000"

ACME = {"X-API-Key": "acme-key"}
GLOBEX = {"Authorization": "Bearer globex-key"}
ADMIN = {"X-API-Key": "admin-key"}


def _keys() -> dict[str, Any]:
    """create_app's key arguments: an admin key and two tenants (tokens: test-only)."""
    return {
        "api_key": Secret.from_token("admin-key"),
        "tenants": {
            "acme": Secret.from_token("acme-key"),
            "globex": Secret.from_token("globex-key"),
        },
    }


def _upload(client: TestClient, headers: dict[str, str], *paths: Path, name: str | None = None):
    files = [("files", (name or p.name, p.read_bytes(), "application/octet-stream")) for p in paths]
    return client.post("/api/v1/index", files=files, headers=headers)


def _indexed(client: TestClient, headers: dict[str, str], *paths: Path) -> dict[str, Any]:
    response = _upload(client, headers, *paths)
    assert response.status_code == 202, response.text
    job = _wait(client, response.json()["id"], headers)
    assert job["status"] == "succeeded", job
    return job


def _wait(client: TestClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    return wait_for_job(client, job_id, headers=headers)


def _search(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/search", params={"q": "solar", "k": 20, **params}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()["hits"]


def _sources(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get("/api/v1/sources", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_colmodernvbert, tiny_smolvlm):
    """One app with tenants: globex uploads the PDF, acme the PNG (read-only tests share it)."""
    root = tmp_path_factory.mktemp("tenants")
    config = server_config(root / "index", tiny_colmodernvbert, tiny_smolvlm)
    app = create_app(config, upload_dir=root / "up", **_keys())
    with TestClient(app) as client:
        client.globex_job = _indexed(client, GLOBEX, PDF)  # type: ignore[attr-defined]
        client.acme_job = _indexed(client, ACME, PNG)  # type: ignore[attr-defined]
        client.uploads = (root / "up").resolve()  # type: ignore[attr-defined]
        client.globex_pdf = str(client.uploads / "globex" / PDF.name)  # type: ignore[attr-defined]
        client.acme_png = str(client.uploads / "acme" / PNG.name)  # type: ignore[attr-defined]
        yield client


# -- keys ---------------------------------------------------------------------------------------


def test_requests_without_a_known_key_are_refused(served):
    calls = [
        ("get", "/api/v1/sources"),
        ("get", "/api/v1/search?q=solar"),
        ("get", "/api/v1/jobs"),
        ("get", f"/api/v1/items/{UNKNOWN_ID}/image"),
        ("delete", f"/api/v1/sources?source={served.globex_pdf}"),
        ("post", "/api/v1/index"),
    ]
    for method, url in calls:
        assert_error(getattr(served, method)(url), 401, "unauthorized", "X-API-Key")
        wrong = getattr(served, method)(url, headers={"X-API-Key": "guess"})
        assert_error(wrong, 401, "unauthorized", "not valid")


def test_health_is_open_and_counts_the_callers_items(served):
    anonymous = served.get("/api/v1/health").json()
    assert anonymous["auth_required"] is True
    assert anonymous["items"] is None and anonymous["tenant"] is None
    acme = served.get("/api/v1/health", headers=ACME).json()
    assert (acme["tenant"], acme["items"]) == ("acme", 1)
    globex = served.get("/api/v1/health", headers=GLOBEX).json()
    assert (globex["tenant"], globex["items"]) == ("globex", 5)
    admin = served.get("/api/v1/health", headers=ADMIN).json()
    assert (admin["tenant"], admin["items"]) == (None, 6)
    assert served.get("/api/v1/health", headers={"X-API-Key": "guess"}).json()["items"] is None


# -- reading: sources, search, ask, images, jobs ------------------------------------------------


def test_uploads_are_kept_in_each_tenants_folder(served):
    assert [p.name for p in (served.uploads / "globex").iterdir()] == [PDF.name]
    assert [p.name for p in (served.uploads / "acme").iterdir()] == [PNG.name]
    assert served.globex_job["inputs"] == [served.globex_pdf]
    assert served.globex_job["tenant"] == "globex"


def test_sources_are_the_callers_only_with_counts(served):
    assert _sources(served, ACME) == {
        "sources": [served.acme_png],
        "counts": {served.acme_png: 1},
    }
    assert _sources(served, GLOBEX) == {
        "sources": [served.globex_pdf],
        "counts": {served.globex_pdf: 5},
    }
    admin = _sources(served, ADMIN)
    assert admin["counts"] == {served.acme_png: 1, served.globex_pdf: 5}


def test_search_never_returns_another_tenants_items(served):
    acme = _search(served, ACME)
    assert [h["item"]["source"] for h in acme] == [served.acme_png]
    assert acme[0]["item"]["tenant"] == "acme"
    assert _search(served, ACME, source=served.globex_pdf) == []  # naming it is no way in
    assert _search(served, ACME, filter="tenant=globex") == []  # a user field, not the owner
    assert _search(served, ACME, tenant="globex") == _search(served, ACME)  # ignored param
    globex = _search(served, GLOBEX)
    assert {h["item"]["source"] for h in globex} == {served.globex_pdf} and len(globex) == 5
    assert len(_search(served, ADMIN)) == 6


def test_ask_never_cites_another_tenants_items(served):
    question = {"question": "How much did revenue grow in 2024?", "k": 3}
    response = served.post("/api/v1/ask", json=question, headers=ACME)
    assert response.status_code == 200, response.text
    answer = response.json()
    shown = answer["sources"] + answer["citations"]
    assert shown and {h["item"]["source"] for h in shown} == {served.acme_png}
    narrowed = served.post(
        "/api/v1/ask", json={**question, "source": [served.globex_pdf]}, headers=ACME
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["sources"] == narrowed.json()["citations"] == []
    chosen = served.post("/api/v1/ask", json={**question, "tenant": "globex"}, headers=ACME)
    assert_error(chosen, 422, "validation_error", "tenant")


def test_another_tenants_image_is_404_like_a_missing_one(served):
    globex_hit = _search(served, GLOBEX)[0]
    assert served.get(globex_hit["image_url"], headers=GLOBEX).status_code == 200
    assert served.get(globex_hit["image_url"], headers=ADMIN).status_code == 200
    theirs = served.get(globex_hit["image_url"], headers=ACME)
    missing = served.get(f"/api/v1/items/{UNKNOWN_ID}/image", headers=ACME)
    assert_error(theirs, 404, "not_found")
    assert_error(missing, 404, "not_found")
    assert theirs.json()["error"]["message"].replace(globex_hit["id"], "ID") == missing.json()[
        "error"
    ]["message"].replace(UNKNOWN_ID, "ID")
    assert theirs.headers.get("content-type") == missing.headers.get("content-type")
    acme_hit = _search(served, ACME)[0]
    assert served.get(acme_hit["image_url"], headers=ACME).status_code == 200


def test_jobs_are_the_callers_only(served):
    acme_id, globex_id = served.acme_job["id"], served.globex_job["id"]
    listed = served.get("/api/v1/jobs", headers=ACME).json()
    assert [j["id"] for j in listed] == [acme_id]
    assert_error(served.get(f"/api/v1/jobs/{globex_id}", headers=ACME), 404, "not_found")
    assert served.get(f"/api/v1/jobs/{globex_id}", headers=GLOBEX).status_code == 200
    admin = served.get("/api/v1/jobs", headers=ADMIN).json()
    assert {j["id"] for j in admin} == {acme_id, globex_id}


def test_delete_of_another_tenants_source_is_404_and_keeps_it(served):
    refused = served.delete("/api/v1/sources", params={"source": served.globex_pdf}, headers=ACME)
    assert_error(refused, 404, "not_found", "not in the index")
    assert _sources(served, GLOBEX)["counts"] == {served.globex_pdf: 5}
    assert Path(served.globex_pdf).is_file()
    assert served.get("/api/v1/health", headers=ADMIN).json()["items"] == 6


# -- writing: the same file twice, deletes, server paths ----------------------------------------


def test_the_same_file_by_two_tenants_is_two_sources(tmp_path, tiny_colmodernvbert):
    uploads = tmp_path / "up"
    app = create_app(
        server_config(tmp_path / "index", tiny_colmodernvbert), upload_dir=uploads, **_keys()
    )
    with TestClient(app) as client:
        _indexed(client, ACME, PNG)
        _indexed(client, GLOBEX, PNG)
        acme_png = str(uploads.resolve() / "acme" / PNG.name)
        globex_png = str(uploads.resolve() / "globex" / PNG.name)
        assert _sources(client, ACME)["sources"] == [acme_png]
        assert _sources(client, GLOBEX)["sources"] == [globex_png]
        acme_hit, globex_hit = _search(client, ACME)[0], _search(client, GLOBEX)[0]
        assert acme_hit["id"] != globex_hit["id"]
        removed = client.delete("/api/v1/sources", params={"source": acme_png}, headers=ACME)
        assert removed.status_code == 200, removed.text
        assert removed.json() == {"source": acme_png, "removed": 1}
        assert not Path(acme_png).exists() and Path(globex_png).is_file()
        assert _sources(client, ACME)["sources"] == []
        assert _search(client, ACME) == []
        assert [h["id"] for h in _search(client, GLOBEX)] == [globex_hit["id"]]
        assert client.get(globex_hit["image_url"], headers=GLOBEX).status_code == 200
        assert client.get("/api/v1/health", headers=ADMIN).json()["items"] == 1


def test_index_path_is_per_tenant_and_never_reaches_anothers_uploads(tmp_path, tiny_colmodernvbert):
    root = tmp_path / "docs"
    root.mkdir()
    shutil.copy(PNG, root / "slide.png")
    config = server_config(tmp_path / "index", tiny_colmodernvbert)
    app = create_app(config, upload_dir=root / "up", allowed_roots=[root], **_keys())
    with TestClient(app) as client:
        _indexed(client, GLOBEX, PDF)  # lands in docs/up/globex, inside the allowed root
        post = lambda path, headers: client.post(  # noqa: E731
            "/api/v1/index/path", json={"path": path}, headers=headers
        )
        assert_error(post(f"up/globex/{PDF.name}", ACME), 403, "forbidden", "not yours")
        assert_error(post("up/globex/missing.pdf", ACME), 403, "forbidden")  # no probing
        assert_error(post("up", ACME), 403, "forbidden", "not yours")
        chosen = client.post(
            "/api/v1/index/path", json={"path": ".", "tenant": "globex"}, headers=ACME
        )
        assert_error(chosen, 422, "validation_error", "tenant")

        job = _wait(client, post(".", ACME).json()["id"], ACME)  # the whole root
        assert job["status"] == "succeeded", job
        assert job["report"]["failed"] == []  # globex's upload is left out, unnamed
        assert job["progress"]["files_total"] == 1
        slide = str(root.resolve() / "slide.png")
        assert _sources(client, ACME)["sources"] == [slide]
        assert _sources(client, GLOBEX)["sources"] == [str(root.resolve() / "up/globex" / PDF.name)]

        again = _wait(client, post("slide.png", GLOBEX).json()["id"], GLOBEX)
        assert again["report"]["indexed"] == 1  # its own point, not acme's
        removed = client.delete("/api/v1/sources", params={"source": slide}, headers=GLOBEX)
        assert removed.json()["removed"] == 1
        assert _sources(client, ACME)["sources"] == [slide]  # acme's stays
        assert (root / "slide.png").is_file()  # not an upload: the file stays


# -- configuration ------------------------------------------------------------------------------


def test_tenant_keys_from_env_vars(tiny_config, monkeypatch):
    monkeypatch.setenv("MMRAG_TEST_ACME_KEY", "from-env")
    app = create_app(tiny_config, tenants={"acme": "env:MMRAG_TEST_ACME_KEY"})
    with TestClient(app) as client:
        ok = client.get("/api/v1/sources", headers={"X-API-Key": "from-env"})
        assert ok.status_code == 200 and ok.json() == {"sources": [], "counts": {}}
        assert client.get("/api/v1/health").json()["auth_required"] is True
        assert_error(client.get("/api/v1/sources"), 401, "unauthorized")


def test_tenant_configuration_errors(tiny_config, monkeypatch):
    monkeypatch.delenv("MMRAG_TEST_UNSET_KEY", raising=False)
    with pytest.raises(ConfigError, match="MMRAG_TEST_UNSET_KEY"):
        create_app(tiny_config, tenants={"acme": "env:MMRAG_TEST_UNSET_KEY"})
    with pytest.raises(ConfigError, match="never stored as values"):
        create_app(tiny_config, tenants={"acme": "plain-text-key"})
    for bad in ("../x", ".hidden", "", "a/b"):
        with pytest.raises(ConfigError, match="tenant name"):
            create_app(tiny_config, tenants={bad: Secret.from_token("k")})
    same = {"a": Secret.from_token("k"), "b": Secret.from_token("k")}
    with pytest.raises(ConfigError, match="tenant a and tenant b have the same key"):
        create_app(tiny_config, tenants=same)
    with pytest.raises(ConfigError, match="admin API key"):
        create_app(
            tiny_config, api_key=Secret.from_token("k"), tenants={"a": Secret.from_token("k")}
        )


def test_serve_cli_tenants(tiny_config, monkeypatch):
    assert parse_tenants(["acme=env:ACME_KEY", "globex=env:GLOBEX_KEY"]) == {
        "acme": "env:ACME_KEY",
        "globex": "env:GLOBEX_KEY",
    }
    for bad in (["acme=s3cr3t"], ["acme"], ["=env:X"], ["a=env:X", "a=env:Y"], ["a=env:"]):
        with pytest.raises(typer.Exit):
            parse_tenants(bad)
    monkeypatch.setenv("MMRAG_TEST_ACME_KEY", "cli-key")
    app = serve_app(tiny_config, tenants={"acme": "env:MMRAG_TEST_ACME_KEY"})
    with TestClient(app) as client:
        assert client.get("/api/v1/sources", headers={"X-API-Key": "cli-key"}).status_code == 200
        assert client.get("/api/v1/sources").status_code == 401
