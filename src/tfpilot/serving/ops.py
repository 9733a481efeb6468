"""Operations routes: ``/healthz`` (alive), ``/readyz`` (every model loaded and warmed up), ``/metrics``.

Example:
    >>> from fastapi import FastAPI
    >>> app = FastAPI()
    >>> app.include_router(ops_router())
    >>> sorted(r.path for r in app.routes if r.path.endswith("z"))
    ['/healthz', '/readyz']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.params import Depends
from fastapi.responses import JSONResponse, Response


def ops_router(metrics_dependencies: Sequence[Depends] = ()) -> APIRouter:
    """Health, readiness and metrics; ``metrics_dependencies`` guard ``/metrics`` (the API key)."""
    router = APIRouter(tags=["Operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """200 while the server process answers requests."""
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness",
                responses={503: {"description": "A model is still loading or failed to load."}})
    async def readyz(request: Request) -> JSONResponse:
        """200 once every model is loaded and warmed up; 503 (with each model's state) before."""
        servables = request.app.state.servables
        states: dict[str, Any] = {name: s.state for name, s in servables.items()}
        if all(s.ready for s in servables.values()):
            return JSONResponse({"status": "ready", "models": states})
        problems = [f"{name}: {s.state}" + (f" ({s.error})" if s.error else "")
                    for name, s in servables.items() if not s.ready]
        return JSONResponse({"error": "not ready: " + "; ".join(problems), "models": states}, status_code=503)

    @router.get("/metrics", summary="Prometheus metrics", dependencies=list(metrics_dependencies),
                response_class=Response,
                responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}})
    async def metrics(request: Request) -> Response:
        """Requests by route and status, latency histograms, batch sizes, queue depth, readiness."""
        body, content_type = request.app.state.metrics.render()
        return Response(body, media_type=content_type)

    return router
