"""Export, verify, load, prune and benchmark: from a run to deployable artifacts.

Example:
    >>> from tfpilot.export import export, verify
    >>> export("runs/mnist", "all")  # doctest: +SKIP
    >>> verify("runs/mnist").passed  # doctest: +SKIP
    True
"""

from tfpilot.export.backends import BACKENDS, detect, read_bundle
from tfpilot.export.bundle import Bundle
from tfpilot.export.exporter import ExportError, GateError, export
from tfpilot.export.formats import EXPORTERS, list_formats, register_exporter
from tfpilot.export.source import ExportSource, float32_model
from tfpilot.export.verify import VerifyReport, verify

__all__ = [
    "BACKENDS",
    "EXPORTERS",
    "Bundle",
    "ExportError",
    "ExportSource",
    "GateError",
    "VerifyReport",
    "detect",
    "export",
    "float32_model",
    "list_formats",
    "read_bundle",
    "register_exporter",
    "verify",
]
