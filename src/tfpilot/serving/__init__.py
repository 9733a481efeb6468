"""Serving: a drop-in TF Serving (REST, gRPC, versions, config files), KServe V2, micro-batching,
metrics and a web page.

``tfpilot serve`` is the command; this package is its Python API. TensorFlow,
FastAPI, uvicorn and gRPC load on first use, so importing it costs nothing.

Example:
    >>> from tfpilot.serving import ServeSettings, model_sources, serve
    >>> settings = ServeSettings(models=model_sources(["runs/mnist"]), max_batch=32)  # doctest: +SKIP
    >>> serve(settings)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ServeSettings": "tfpilot.serving.settings",
    "ModelSource": "tfpilot.serving.settings",
    "model_sources": "tfpilot.serving.settings",
    "create_app": "tfpilot.serving.app",
    "serve": "tfpilot.serving.server",
    "MicroBatcher": "tfpilot.serving.batcher",
    "ModelConfig": "tfpilot.serving.settings",
    "ServerCore": "tfpilot.serving.core",
    "parse_model_server_config": "tfpilot.serving.model_config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tfpilot.serving' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
