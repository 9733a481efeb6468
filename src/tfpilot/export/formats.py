"""The export formats: their registry, order and size rule, shared by the exporters, the
backends that load their artifacts, and verification (so none of them imports another).

Example:
    >>> from tfpilot.export.formats import EXPORTERS, list_formats
    >>> list_formats()[:3]
    ['keras', 'saved_model', 'tflite']
    >>> EXPORTERS.entry("tflite-int8").extra["backend"]
    'tflite'
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfpilot.registry import Registry

#: An exporter writes its artifact (and bundle.json) into an empty folder; returns the bundle.
ExportFn = Callable[[Any, Path], Any]

EXPORTERS: Registry[ExportFn] = Registry(
    "export format",
    autoload=(
        "tfpilot.export.keras_format",
        "tfpilot.export.saved_model",
        "tfpilot.export.tflite",
        "tfpilot.export.onnx_format",
    ),
)

#: The order of ``--format all`` (and of every report).
FORMAT_ORDER = ("keras", "saved_model", "tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx")
#: Formats whose accuracy is gated by ``max_drop`` at export time.
GATED_FORMATS = ("tflite-int8",)


def register_exporter(name: str, *, backend: str, description: str = "") -> Callable[[ExportFn], ExportFn]:
    """Register an exporter under ``name``; ``backend`` is the loader that runs its artifact."""
    return EXPORTERS.register(name, description=description, backend=backend)


def list_formats() -> list[str]:
    """Registered export formats, in ``--format all`` order."""
    known = EXPORTERS.list()
    return [f for f in FORMAT_ORDER if f in known] + [f for f in known if f not in FORMAT_ORDER]


def artifact_size(path: Path) -> int:
    """Bytes of a file, or of everything under a folder."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
