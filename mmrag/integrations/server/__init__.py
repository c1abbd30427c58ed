"""The HTTP server: a FastAPI app over one :class:`~mmrag.pipeline.pipeline.Pipeline`.

Endpoints live under ``/api/v1`` (OpenAPI at ``/openapi.json``, interactive docs at ``/docs``);
the document-QA web page is served at ``/``. Indexing runs as jobs in one background thread, one
job at a time, in the order they were submitted; ``GET /api/v1/jobs/{id}`` reports progress
(files and pages done, pages per second) and, when finished, the IndexReport.

Tenants: each API key may belong to a tenant (``create_app(tenants={"acme": "env:ACME_KEY"})``,
``mmrag serve --tenant acme=env:ACME_KEY``); a tenant's requests see, index and delete its own
items, uploads and jobs only, and the admin ``api_key`` sees everything. User metadata is
attached when indexing (``metadata``) and filtered on when searching (``filter=dept=hr``).

Safety: an optional API key (``X-API-Key`` header or ``Authorization: Bearer``), a request-body
size limit (413), server-side paths only inside ``allowed_roots`` (``..`` and symlinks that
escape are refused), and one lock around the embedded store so searches are safe while a job
writes. Every error is JSON: ``{"error": {"code": ..., "message": ...}}``.

Modules: :mod:`~mmrag.integrations.server.app` (``create_app``, the app factory),
:mod:`~mmrag.integrations.server.routes_index` and :mod:`~mmrag.integrations.server.routes_search`
(the endpoints), :mod:`~mmrag.integrations.server.middleware` (JSON errors, upload limit, API
key), :mod:`~mmrag.integrations.server.service` (what the routes share),
:mod:`~mmrag.integrations.server.jobs` (the indexing jobs) and
:mod:`~mmrag.integrations.server.schemas` (request and response bodies).

FastAPI is imported by this package only (install ``mmrag[server]``); ``import mmrag`` never
imports it.

Example:
    >>> from mmrag.config import PipelineConfig
    >>> from mmrag.integrations.server import create_app                         # doctest: +SKIP
    >>> app = create_app(PipelineConfig.load("mmrag.toml"), api_key="env:MMRAG_API_KEY",
    ...                  allowed_roots=["/srv/docs"])                            # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, port=8000)                              # doctest: +SKIP
"""

from mmrag.integrations.server.app import API_PREFIX, create_app
from mmrag.integrations.server.jobs import JobManager

__all__ = ["API_PREFIX", "JobManager", "create_app"]
