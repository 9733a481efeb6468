"""The FastAPI app factory: :func:`create_app` (settings in) and :func:`app_from_env` (``--workers``).

The app answers at once; models load and warm up in the background (one
:class:`~tfpilot.serving.versions.ModelManager` per model, polling its base path), and
``/readyz`` turns 200 when every model has a version available. Before any model loads, the
objects alive (the libraries') are frozen out of Python's garbage collector, whose full
collections would otherwise walk them and stall requests. The gRPC services, when asked for,
run on gRPC's threaded server beside the event loop and share the models and their batchers. On
shutdown uvicorn stops accepting connections and waits for in-flight requests; then gRPC stops
(finishing its calls) and the batchers finish their queues.

Example:
    >>> from tfpilot.serving import ServeSettings, create_app
    >>> app = create_app(ServeSettings(models=[{"path": "runs/mnist", "name": "mnist"}]))
    >>> app.title
    'tfpilot serving'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from tfpilot.serving.core import ModelsUnavailable, ServerCore, config_watcher, initial_configs
from tfpilot.serving.errors import install_error_handlers
from tfpilot.serving.friendly import STATIC_DIR, friendly_router, web_router
from tfpilot.serving.kserve import kserve_router
from tfpilot.serving.metrics import ServingMetrics
from tfpilot.serving.middleware import AccessMiddleware, BodyLimitMiddleware
from tfpilot.serving.ops import ops_router
from tfpilot.serving.security import api_key_checker
from tfpilot.serving.settings import ServeSettings
from tfpilot.serving.tf_serving import tf_serving_router

log = logging.getLogger("tfpilot.serving")

DESCRIPTION = """\
Serves TensorFlow SavedModels and tfpilot models with TF Serving's REST API
(`/v1/models/{name}[/versions/{v}|/labels/{l}]`: status, `/metadata`, `:predict`, `:classify`,
`:regress`), the Open Inference Protocol (KServe V2, `/v2/...`), a file-upload route,
Prometheus metrics and a web page at `/`. Errors are answered as `{"error": "..."}`.
"""


@asynccontextmanager
async def serving_lifespan(core: ServerCore, settings: ServeSettings, metrics: ServingMetrics) -> AsyncIterator[None]:
    """Load the models, start gRPC and the config watcher; on exit stop them in reverse order."""
    import tensorflow_serving.apis.prediction_service_pb2_grpc  # noqa: F401  (frozen with the rest)

    from tfpilot.inference import load  # noqa: F401  (the loaders' modules, likewise)

    frozen = core.freeze_libraries()
    if frozen:
        log.info("%d objects frozen out of the garbage collector", frozen)
    await core.apply(initial_configs(settings))
    if settings.wait_for_models:  # TF Serving's start-up: ports open once the initial models are AVAILABLE
        failure = await core.wait_available()
        if failure:
            log.error("%s", failure)
            await core.stop()
            raise ModelsUnavailable(failure)
    loading = asyncio.get_running_loop().create_task(core.wait_initial_loads(), name="initial-loads")
    grpc_server = None
    if settings.grpc_port is not None:
        from tfpilot.serving.grpc_server import start_grpc_server, stop_grpc_server

        grpc_server, _ = await start_grpc_server(core, settings.host, settings.grpc_port, settings.api_key, metrics,
                                                 settings.access_log, max(settings.max_body_bytes, 4 * 2**20),
                                                 settings.grpc_channel_arguments, settings.grpc_max_threads)
    watcher = config_watcher(core, settings)
    try:
        yield
    finally:
        for task in (watcher, loading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if grpc_server is not None:
            await stop_grpc_server(grpc_server, settings.graceful_timeout_s)
        await core.stop()


def create_app(settings: ServeSettings) -> FastAPI:
    """The serving app for ``settings`` (models load when the app starts).

    Args:
        settings: models, batching, limits and the optional API key.
    """
    from tfpilot import __version__
    from tfpilot.serving.model_config import require_serving_api
    from tfpilot.serving.runner import configure_threads

    require_serving_api()
    configure_threads(settings.threads)
    metrics = ServingMetrics()
    core = ServerCore(settings, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serving_lifespan(core, settings, metrics):
            yield

    app = FastAPI(title="tfpilot serving", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.core = core
    app.state.metrics = metrics
    install_error_handlers(app)
    guard = [Depends(api_key_checker(settings.api_key))] if settings.api_key else []
    app.include_router(tf_serving_router(), dependencies=guard)
    app.include_router(kserve_router(model_dependencies=guard))
    app.include_router(friendly_router(), dependencies=guard)
    app.include_router(ops_router(metrics_dependencies=guard, prometheus_path=settings.prometheus_path))
    app.include_router(web_router())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessMiddleware, metrics=metrics, access_log=settings.access_log)
    return app


def app_from_env() -> FastAPI:
    """The app for settings a parent ``tfpilot serve --workers N`` put in the environment."""
    return create_app(ServeSettings.from_env())
