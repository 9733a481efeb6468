"""Running the app under uvicorn: one process, or ``--workers N`` processes sharing metrics.

With ``--workers N`` each process also starts its own gRPC server on the same port (gRPC
binds with ``SO_REUSEPORT``, so the kernel spreads connections over them). With REST off
(``--rest_api_port 0``) only the gRPC services run, in a plain asyncio loop.

Example:
    >>> from tfpilot.serving import ServeSettings, serve
    >>> serve(ServeSettings(models=[{"path": "runs/mnist", "name": "mnist"}]))  # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from typing import Any

from tfpilot.errors import UserError
from tfpilot.serving.settings import SETTINGS_ENV, ServeSettings


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging: messages on stderr, JSON access lines (``tfpilot.serving.access``) on stdout."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s",
                        "use_colors": None},
            "plain": {"format": "%(message)s"},
        },
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "tfpilot": {"handlers": ["default"], "level": lvl, "propagate": False},
            "tfpilot.serving.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(settings: ServeSettings, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; shutdown waits up to ``graceful_timeout_s`` for in-flight requests.

    Args:
        settings: what to serve and how.
        log_level: uvicorn's and tfpilot's log level (access lines are always INFO).
    """
    import uvicorn

    if not settings.rest:
        serve_grpc_only(settings, log_level)
        return
    common: dict[str, Any] = dict(
        host=settings.host, port=settings.port, log_config=log_config(log_level), log_level=log_level,
        access_log=False, timeout_graceful_shutdown=settings.graceful_timeout_s, server_header=False,
    )
    if settings.workers == 1:
        from tfpilot.serving.app import create_app

        server = uvicorn.Server(uvicorn.Config(create_app(settings), **common))
        server.run()
        if not server.started:  # the lifespan failed: e.g. an initial model did not load (logged)
            raise SystemExit(1)
        return
    saved = {k: os.environ.get(k) for k in (SETTINGS_ENV, "PROMETHEUS_MULTIPROC_DIR")}
    with tempfile.TemporaryDirectory(prefix="tfpilot-metrics-") as metrics_dir:
        os.environ[SETTINGS_ENV] = settings.to_env()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            uvicorn.run("tfpilot.serving.app:app_from_env", factory=True, workers=settings.workers, **common)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def serve_grpc_only(settings: ServeSettings, log_level: str = "info") -> None:
    """Serve the gRPC services alone until SIGINT/SIGTERM (TF Serving without ``--rest_api_port``)."""
    import asyncio
    import logging.config
    import signal

    from tfpilot.serving.app import serving_lifespan
    from tfpilot.serving.core import ServerCore
    from tfpilot.serving.metrics import ServingMetrics
    from tfpilot.serving.runner import configure_threads

    if settings.workers != 1:
        raise UserError("--workers needs REST; without --rest_api_port serve with one process")
    logging.config.dictConfig(log_config(log_level))
    configure_threads(settings.threads)

    async def main() -> None:
        metrics = ServingMetrics()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with serving_lifespan(ServerCore(settings, metrics), settings, metrics):
            await stop.wait()

    from tfpilot.serving.core import ModelsUnavailable

    try:
        asyncio.run(main())
    except ModelsUnavailable:  # logged where it was found; TF Serving exits non-zero too
        raise SystemExit(1) from None
