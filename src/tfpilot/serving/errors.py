"""Every error leaves the server as ``{"error": "..."}`` with a 4xx/5xx status, as TF Serving does.

Example:
    >>> from tfpilot.serving.errors import BadRequest
    >>> err = BadRequest("malformed JSON: Expecting value")
    >>> err.status_code, err.detail
    (400, 'malformed JSON: Expecting value')
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("tfpilot.serving")


class ServingError(HTTPException):
    """An error answered as ``{"error": detail}`` with ``status_code``."""

    status: int = 400

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(self.status, detail, headers)


class BadRequest(ServingError):
    """400: the request is wrong; the message says what and how to fix it."""

    status = 400


class Unauthorized(ServingError):
    """401: a missing or wrong API key."""

    status = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail, {"WWW-Authenticate": 'Bearer realm="tfpilot"'})


class NotFound(ServingError):
    """404: no such model, version or route."""

    status = 404


class PayloadTooLarge(ServingError):
    """413: the request body is over the limit."""

    status = 413


class Unavailable(ServingError):
    """503: the model is loading, failed to load, or its queue is full."""

    status = 503

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after_s)})


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


_REASONS = {404: "no such route", 405: "method not allowed"}


async def _http_error(request: Request, exc: Any) -> JSONResponse:
    detail = exc.detail
    if exc.status_code in _REASONS and detail in ("Not Found", "Method Not Allowed"):
        detail = f"{detail}: {request.method} {request.url.path} ({_REASONS[exc.status_code]}); see /docs"
    return error_response(exc.status_code, str(detail), getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Any) -> JSONResponse:
    return error_response(400, _validation_message(exc))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, f"internal error ({type(exc).__name__}); the server logged the details")


def install_error_handlers(app: FastAPI) -> None:
    """Answer HTTP, validation and unexpected errors as ``{"error": ...}``."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
