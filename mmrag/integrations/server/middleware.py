"""What guards every request: errors as JSON (``{"error": {"code", "message"}}``), the
request-body size limit (413) and the API keys (401), each resolved to its tenant."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mmrag.auth import Secret
from mmrag.errors import ConfigError, FeatureNotAvailableError, MissingDependencyError, MmragError
from mmrag.integrations.server.service import API_PREFIX, TENANT_NAME, Service, megabytes

__all__ = [
    "BodyLimit",
    "error_response",
    "install_auth",
    "install_error_handlers",
    "resolve_keys",
]

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    500: "internal_error",
    503: "unavailable",
}


def error_response(status: int, message: str, code: str | None = None) -> JSONResponse:
    """The JSON error body every failure has (401 also asks for a Bearer token)."""
    body = {"error": {"code": code or _STATUS_CODES.get(status, "error"), "message": message}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, declared or not."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (
            f"the request body is larger than the server's upload limit of "
            f"{megabytes(self.limit)} MB; upload fewer or smaller files"
        )
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await error_response(413, message)(scope, receive, send)
            return
        total = 0

        async def limited() -> dict[str, Any]:
            nonlocal total
            event = await receive()
            if event["type"] == "http.request":
                total += len(event.get("body", b""))
                if total > self.limit:
                    raise HTTPException(413, message)
            return event

        await self.app(scope, limited, send)


def install_error_handlers(app: FastAPI) -> None:
    """Every error as JSON: HTTP errors, invalid requests, mmrag errors (mapped to 400 / 404 /
    503 / 500) and anything unexpected (500, logged)."""
    from mmrag.store.assets import AssetNotFoundError
    from mmrag.store.contract import StoreCorruptError, StoreLockedError, StoreVersionError

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return error_response(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(MmragError)
    async def mmrag_error(request: Request, exc: MmragError) -> JSONResponse:
        if isinstance(exc, AssetNotFoundError):
            return error_response(404, str(exc))
        if isinstance(
            exc,
            (
                StoreLockedError,
                StoreCorruptError,
                StoreVersionError,
                MissingDependencyError,
                FeatureNotAvailableError,
            ),
        ):
            return error_response(503, str(exc))
        if isinstance(exc, ConfigError):
            return error_response(400, str(exc))
        logger.exception("request %s %s failed", request.method, request.url.path)
        return error_response(500, f"{type(exc).__name__}: {exc}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("request %s %s failed", request.method, request.url.path)
        return error_response(500, f"internal error while handling {request.url.path}: {exc}")


def install_auth(app: FastAPI, service: Service) -> None:
    """Require a key (``X-API-Key`` or ``Authorization: Bearer``) on the API, except
    ``/health``; no key configured: the API is open.

    The key is resolved to its tenant (compared in constant time with every configured key)
    and stored on ``request.state`` (``authenticated``, ``tenant``: ``None`` for the admin
    key and an open server), where the routes read it (:func:`~.service.caller`). A key on
    ``/health`` is resolved too (never refused there), so it reports the caller's count.
    """
    open_paths = {f"{API_PREFIX}/health"}

    @app.middleware("http")
    async def require_key(request: Request, call_next: Any) -> Any:
        request.state.authenticated, request.state.tenant = False, None
        path = request.url.path
        if not service.auth_required:
            request.state.authenticated = True
            return await call_next(request)
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        known, tenant = service.authenticate(given) if given else (False, None)
        request.state.authenticated, request.state.tenant = known, tenant
        if known or not path.startswith(API_PREFIX) or path in open_paths:
            return await call_next(request)
        if not given:
            return error_response(401, "this server needs an API key: send X-API-Key or Bearer")
        return error_response(401, "the API key is not valid")


def resolve_keys(
    api_key: Secret | str | dict[str, Any] | None,
    tenants: Mapping[str, Secret | str | dict[str, Any]] | None,
) -> tuple[str | None, dict[str, str]]:
    """The admin key and each tenant's key, resolved now (a missing variable fails at start).

    Each is a :class:`~mmrag.auth.Secret`, its dict form or ``"env:NAME"`` (never a plain
    key). Tenant names are checked (letters, digits, ``_ . -``; they name upload folders) and
    every key must be distinct, so a key identifies one tenant."""
    admin = _resolve("the API key", api_key) if api_key is not None else None
    keys: dict[str, str] = {}
    for name, secret in (tenants or {}).items():
        if not isinstance(name, str) or not TENANT_NAME.match(name):
            raise ConfigError(
                f"tenant name {name!r} must start with a letter or digit and hold only letters, "
                "digits, _, . and - (at most 64 characters)"
            )
        keys[name] = _resolve(f"tenant {name}'s key", secret)
    labelled = [(f"tenant {name}", key) for name, key in keys.items()]
    if admin is not None:
        labelled.append(("the admin API key", admin))
    owners: dict[str, str] = {}
    for label, key in labelled:
        if key in owners:
            raise ConfigError(
                f"{owners[key]} and {label} have the same key; every tenant needs its own key "
                "(and the admin key must differ from them)"
            )
        owners[key] = label
    return admin, keys


def _resolve(what: str, value: Secret | str | dict[str, Any]) -> str:
    secret = value if isinstance(value, Secret) else Secret.coerce(value)
    key = secret.resolve_value()
    if not key:
        raise ConfigError(f"{what} {secret!r} resolved to an empty value")
    return key
