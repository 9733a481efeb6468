"""Pure-ASGI middleware: request ids, metrics and JSON access logs; the request body limit.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a few microseconds.

Example:
    >>> from fastapi import FastAPI
    >>> from tfpilot.serving.metrics import ServingMetrics
    >>> app = FastAPI()
    >>> app.add_middleware(BodyLimitMiddleware, max_bytes=1024)
    >>> app.add_middleware(AccessMiddleware, metrics=ServingMetrics(), access_log=False)
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from datetime import datetime, timezone
from typing import Any

import orjson

from tfpilot.serving.errors import PayloadTooLarge
from tfpilot.serving.metrics import ServingMetrics

access_log = logging.getLogger("tfpilot.serving.access")

Scope = dict[str, Any]
#: An oversized body up to this size is read and discarded before the 413 goes out.
DRAIN_BYTES = 256 * 2**20
#: ... and for at most this long.
DRAIN_SECONDS = 30.0


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def _request_id(scope: Scope) -> str:
    given = _header(scope, b"x-request-id")
    if given:
        text = given.decode("latin-1")[:128]
        if text.isprintable() and text.strip():
            return text
    return f"{random.getrandbits(64):016x}"  # not a secret: no need for os.urandom's system call


def _route_template(scope: Scope) -> str:
    """The matched route's template (bounded label values), "/static" for assets, else "unmatched"."""
    template = getattr(scope.get("route"), "path", None)
    if template:
        return template
    return "/static" if scope.get("path", "").startswith("/static/") else "unmatched"


def _too_large(max_bytes: int) -> str:
    return (f"the request body is larger than the limit of {max_bytes} bytes (--max-body-mb); "
            "send fewer or smaller instances per request")


class BodyLimitMiddleware:
    """Answer 413 to bodies over ``max_bytes``: at once by Content-Length, else while reading.

    Before answering, the rest of the body is read and discarded (up to ``drain_bytes`` and
    ``drain_seconds``): a client that writes its whole body before reading the answer
    (Python's ``urllib``, many HTTP libraries) would otherwise get a connection reset -- the
    kernel resets a connection closed with unread bytes -- instead of the 413.

    Args:
        app: the ASGI app.
        max_bytes: the largest body accepted.
        drain_bytes: the most bytes of an oversized body read and discarded before answering;
            beyond it the 413 is sent and the connection closed (such a client may see a reset).
        drain_seconds: the longest the draining may take.
    """

    def __init__(self, app: Any, max_bytes: int, drain_bytes: int = DRAIN_BYTES,
                 drain_seconds: float = DRAIN_SECONDS) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes
        self.drain_seconds = drain_seconds

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared > self.max_bytes:
                if declared <= self.drain_bytes:
                    await self._drain(receive, 0)
                await _send_json(send, 413, {"error": _too_large(self.max_bytes)})
                return
        seen = 0
        limit = self.max_bytes

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if message.get("more_body", False):
                        await self._drain(receive, seen)
                    raise PayloadTooLarge(_too_large(limit))
            return message

        await self.app(scope, limited_receive, send)

    async def _drain(self, receive: Any, seen: int) -> None:
        """Read and drop the rest of the body (bounded in bytes and time)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_seconds
        while seen <= self.drain_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                message = await asyncio.wait_for(receive(), remaining)
            except asyncio.TimeoutError:
                return
            if message["type"] != "http.request":
                return  # the client went away
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": data})


class AccessMiddleware:
    """Request ids (``X-Request-ID``), Prometheus request metrics and one JSON log line per request.

    Args:
        app: the ASGI app.
        metrics: where request counts and latencies go.
        access_log: write the JSON access log line (logger ``tfpilot.serving.access``).
    """

    def __init__(self, app: Any, metrics: ServingMetrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        request_id = _request_id(scope)
        status = 500
        bytes_out = 0

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal status, bytes_out
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, tracking_send)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - t0
            template = _route_template(scope)
            method = scope.get("method", "")
            self.metrics.observe_request(method, template, status, seconds)
            if self.access_log:
                self._log(scope, request_id, method, template, status, seconds, bytes_out)

    @staticmethod
    def _log(scope: Scope, request_id: str, method: str, route: str, status: int, seconds: float,
             bytes_out: int) -> None:
        client = scope.get("client")
        agent = _header(scope, b"user-agent")
        access_log.info(orjson.dumps({
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "event": "access",
            "request_id": request_id,
            "client": f"{client[0]}:{client[1]}" if client else None,
            "method": method,
            "path": scope.get("path", ""),
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "bytes_out": bytes_out,
            "user_agent": agent.decode("latin-1")[:200] if agent else None,
        }).decode())
