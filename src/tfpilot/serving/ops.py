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


def ops_router(metrics_dependencies: Sequence[Depends] = (), prometheus_path: str | None = None) -> APIRouter:
    """Health, readiness and metrics; ``metrics_dependencies`` guard ``/metrics`` (the API key).

    Args:
        metrics_dependencies: dependencies of the metrics routes.
        prometheus_path: where the metrics are also served (TF Serving's
            ``/monitoring/prometheus/metrics``), or None.
    """
    router = APIRouter(tags=["Operations"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        """200 while the server process answers requests."""
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness",
                responses={503: {"description": "A model is still loading or failed to load."}})
    async def readyz(request: Request) -> JSONResponse:
        """200 once every model has a version loaded and warmed up; 503 (with each model's state) before."""
        core = request.app.state.core
        states = {name: core.state(name) for name in core.managers}
        models: dict[str, Any] = {name: state for name, (state, _) in states.items()}
        if core.ready:
            return JSONResponse({"status": "ready", "models": models})
        problems = [f"{name}: {state}" + (f" ({error})" if error else "")
                    for name, (state, error) in states.items() if state != "AVAILABLE"]
        return JSONResponse({"error": "not ready: " + ("; ".join(problems) or "no models configured"),
                             "models": models}, status_code=503)

    @router.get("/metrics", summary="Prometheus metrics", dependencies=list(metrics_dependencies),
                response_class=Response,
                responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}})
    async def metrics(request: Request) -> Response:
        """Requests by route and status, latency histograms, batch sizes, queue depth, readiness."""
        body, content_type = request.app.state.metrics.render()
        return Response(body, media_type=content_type)

    if prometheus_path and prometheus_path != "/metrics":
        router.add_api_route(prometheus_path, metrics, methods=["GET"], summary="Prometheus metrics (TF Serving's path)",
                             dependencies=list(metrics_dependencies), response_class=Response,
                             responses={200: {"content": {"text/plain": {}}}})

    return router
