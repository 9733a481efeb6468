"""Every error leaves the server as ``{"error": "..."}`` with a 4xx/5xx status, as TF Serving does.

Each error also carries TF Serving's canonical code (``code``: "INVALID_ARGUMENT", "NOT_FOUND",
...), which is the gRPC status of the same error and picks the HTTP status as TF Serving's
``ToHTTPStatusCode`` does (INVALID_ARGUMENT and FAILED_PRECONDITION 400, NOT_FOUND 404,
UNAVAILABLE 503, UNIMPLEMENTED 501, INTERNAL 500, ...).

Example:
    >>> from tfpilot.serving.errors import BadRequest
    >>> err = BadRequest("malformed JSON: Expecting value")
    >>> err.status_code, err.detail, err.code
    (400, 'malformed JSON: Expecting value', 'INVALID_ARGUMENT')
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("tfpilot.serving")


#: TF Serving's mapping of canonical error codes to HTTP statuses (model_servers/http_server.cc).
HTTP_STATUS = {
    "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
    "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}


class ServingError(HTTPException):
    """An error answered as ``{"error": detail}`` with ``status_code`` (and gRPC status ``code``)."""

    status: int = 400
    code: str = "INVALID_ARGUMENT"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(self.status, detail, headers)


class BadRequest(ServingError):
    """400: the request is wrong; the message says what and how to fix it."""

    status = 400


class Unauthorized(ServingError):
    """401: a missing or wrong API key."""

    status = 401
    code = "UNAUTHENTICATED"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, {"WWW-Authenticate": 'Bearer realm="tfpilot"'})


class NotFound(ServingError):
    """404: no such model, version or route."""

    status = 404
    code = "NOT_FOUND"


class FailedPrecondition(ServingError):
    """400 (FAILED_PRECONDITION): the request does not fit the model (e.g. the wrong signature kind)."""

    status = 400
    code = "FAILED_PRECONDITION"


class Unimplemented(ServingError):
    """501: something TF Serving's API has that this server does not do."""

    status = 501
    code = "UNIMPLEMENTED"


class Internal(ServingError):
    """500: the model call failed in a way the request cannot be blamed for."""

    status = 500
    code = "INTERNAL"


class PayloadTooLarge(ServingError):
    """413: the request body is over the limit."""

    status = 413
    code = "RESOURCE_EXHAUSTED"


class Unavailable(ServingError):
    """503: the model is loading, failed to load, or its queue is full."""

    status = 503
    code = "UNAVAILABLE"

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail, {"Retry-After": str(retry_after_s)})


def error_for_code(code: str, message: str) -> ServingError:
    """The :class:`ServingError` for TF Serving's canonical ``code`` (e.g. from a load failure).

    Example:
        >>> error_for_code("NOT_FOUND", "no such file").status_code
        404
    """
    for cls in (BadRequest, NotFound, FailedPrecondition, Unimplemented, Internal, Unavailable):
        if cls.code == code:
            return cls(message)
    err = Internal(message)
    err.status_code, err.code = HTTP_STATUS.get(code, 500), code
    return err


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
