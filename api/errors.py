"""Every error leaves the API as ``{"ok": false, "code", "message", "details"}``.

Codes are stable strings callers can branch on; messages are for people. Handlers here cover
our own ApiError, FastAPI's request validation, Starlette's 404/405, an unreachable database or
Temporal (503), and anything unexpected (500, with no internals in the body).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError, InterfaceError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

log = logging.getLogger("herald.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def not_found(what: str, ident: str) -> ApiError:
    # Same answer whether the id does not exist or belongs to another workspace.
    return ApiError(404, "not_found", f"{what} {ident!r} not found")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message, "details": details}


def _json(status: int, code: str, message: str, details: Any = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            problems.append({"path": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
        message = "; ".join(f"{p['path']}: {p['message']}" for p in problems[:5]) or "invalid request"
        return _json(422, "invalid_request", message, {"problems": problems})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        details = None
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route"
        return _json(exc.status_code, code, message, details, getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable: %s", type(exc).__name__)
        return _json(503, "database_unavailable", "the database is unavailable; try again shortly",
                     None, {"Retry-After": "5"})

    @app.exception_handler(RPCError)
    async def _temporal_down(_: Request, exc: RPCError) -> JSONResponse:
        log.error("Temporal call failed: %s", exc.status.name if exc.status else "unknown")
        return _json(503, "temporal_unavailable", "the Temporal server is unavailable; try again shortly",
                     None, {"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _json(500, "internal_error", "internal error; the server log has the details")
