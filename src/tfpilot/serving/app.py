"""The FastAPI app factory: :func:`create_app` (settings in) and :func:`app_from_env` (``--workers``).

The app answers at once; models load and warm up in a background thread, and
``/readyz`` turns 200 when all are ready (then the objects alive so far are frozen out of
Python's garbage collector, whose full collections would otherwise stall requests). On shutdown uvicorn stops accepting
connections and waits for in-flight requests; the batchers then finish what is queued.

Example:
    >>> from tfpilot.serving import ServeSettings, create_app
    >>> app = create_app(ServeSettings(models=[{"path": "runs/mnist", "name": "mnist"}]))
    >>> app.title
    'tfpilot serving'
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from tfpilot.serving.errors import install_error_handlers
from tfpilot.serving.friendly import STATIC_DIR, friendly_router, web_router
from tfpilot.serving.metrics import ServingMetrics
from tfpilot.serving.middleware import AccessMiddleware, BodyLimitMiddleware
from tfpilot.serving.ops import ops_router
from tfpilot.serving.security import api_key_checker
from tfpilot.serving.servable import Servable
from tfpilot.serving.settings import ServeSettings
from tfpilot.serving.tf_serving import tf_serving_router

log = logging.getLogger("tfpilot.serving")

DESCRIPTION = """\
Serves tfpilot models with TF Serving's REST API (`/v1/models/{name}:predict`, `:classify`,
status and metadata), a file-upload route, Prometheus metrics and a web page at `/`.
Errors are answered as `{"error": "..."}`.
"""


async def _load_all(servables: dict[str, Servable], freeze_gc: bool) -> None:
    for servable in servables.values():  # one at a time: loading is CPU-bound anyway
        await asyncio.to_thread(servable.load)
    # TensorFlow and the models leave millions of long-lived objects; a full garbage collection
    # walking them stalls every request for a few hundred ms. Freeze them out of the collector.
    if freeze_gc:
        gc.collect()
        gc.freeze()
    if all(s.ready for s in servables.values()):
        log.info("ready: %s", ", ".join(servables))


def create_app(settings: ServeSettings) -> FastAPI:
    """The serving app for ``settings`` (models load when the app starts).

    Args:
        settings: models, batching, limits and the optional API key.
    """
    from tfpilot import __version__
    from tfpilot.serving.runner import configure_threads

    configure_threads(settings.threads)
    metrics = ServingMetrics()
    servables = {m.name: Servable(m, settings, metrics) for m in settings.models}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for servable in servables.values():
            await servable.start()
        app.state.loading = asyncio.create_task(_load_all(servables, settings.freeze_gc))
        try:
            yield
        finally:
            for servable in servables.values():
                await servable.stop()

    app = FastAPI(title="tfpilot serving", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.servables = servables
    app.state.metrics = metrics
    install_error_handlers(app)
    guard = [Depends(api_key_checker(settings.api_key))] if settings.api_key else []
    app.include_router(tf_serving_router(), dependencies=guard)
    app.include_router(friendly_router(), dependencies=guard)
    app.include_router(ops_router(metrics_dependencies=guard))
    app.include_router(web_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessMiddleware, metrics=metrics, access_log=settings.access_log)
    return app


def app_from_env() -> FastAPI:
    """The app for settings a parent ``tfpilot serve --workers N`` put in the environment."""
    return create_app(ServeSettings.from_env())
