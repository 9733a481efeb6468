"""Loading any artifact behind the same :class:`~tfpilot.inference.Predictor` interface.

One backend per runtime: ``keras`` (Keras 3, ``safe_mode=True``), ``saved_model``
(``tf.saved_model.load``), ``tflite`` (the LiteRT interpreter, ``ai_edge_litert``; falls
back to ``tf.lite.Interpreter``) and ``onnx`` (ONNX Runtime). :func:`detect` tells which
one a path needs; :func:`resolve` finds an artifact and its bundle, and ``Resolved.open()`` gives the
backend's callable (``model(batch) -> probabilities``) that ``tfpilot.inference.load``
wraps in a ``Predictor``.

Example:
    >>> import tfpilot
    >>> p = tfpilot.load("runs/mnist/export/tflite-int8")  # doctest: +SKIP
    >>> p.model.format, p.class_names[:3]  # doctest: +SKIP
    ('tflite-int8', ['0', '1', '2'])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfpilot.errors import NotFoundError, UserError
from tfpilot.export.bundle import BUNDLE_FILE, Bundle
from tfpilot.export.formats import EXPORTERS
from tfpilot.registry import Registry


@dataclass(frozen=True)
class Backend:
    """How to find, describe and run one kind of artifact.

    Args:
        filename: the artifact's name inside a folder written by ``tfpilot export``.
        suffixes: file suffixes that mean this backend (".tflite", ...).
        open: ``(artifact_path, bundle) -> callable`` mapping a prepared batch to probabilities.
        read_bundle: ``artifact_path -> Bundle`` (from inside the artifact or beside it).
    """

    filename: str
    suffixes: tuple[str, ...]
    open: Callable[[Path, Bundle], Any]
    read_bundle: Callable[[Path], Bundle]


BACKENDS: Registry[Backend] = Registry(
    "backend",
    autoload=(
        "tfpilot.export.keras_format",
        "tfpilot.export.saved_model",
        "tfpilot.export.tflite",
        "tfpilot.export.onnx_format",
    ),
)


def register_backend(name: str, backend: Backend, description: str = "") -> Backend:
    """Register ``backend`` under ``name``."""
    return BACKENDS.add(name, backend, description=description)


def bundle_beside(path: Path) -> Bundle:
    """The ``bundle.json`` in the artifact's folder."""
    return Bundle.read(path.parent if path.is_file() else path)


def _artifact_in(folder: Path) -> tuple[str, Path] | None:
    for name in BACKENDS.list():
        candidate = folder / BACKENDS.get(name).filename
        if candidate.exists():
            return name, candidate if name != "saved_model" else folder
    return None


def detect(path: str | Path) -> tuple[str, Path]:
    """``(backend, artifact_path)`` for a file or folder written by ``tfpilot export``.

    Raises:
        FileNotFoundError: if ``path`` does not exist or holds no artifact tfpilot knows.
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path} does not exist")
    if path.is_file():
        if path.name == "saved_model.pb":
            return "saved_model", path.parent
        for name in BACKENDS.list():
            if path.suffix.lower() in BACKENDS.get(name).suffixes:
                return name, path
        raise NotFoundError(
            f"{path}: not an artifact tfpilot can load (expected .keras, .tflite, .onnx or a SavedModel folder)"
        )
    if (path / "saved_model.pb").is_file():
        return "saved_model", path
    found = _artifact_in(path)
    if found:
        return found
    raise NotFoundError(
        f"{path} holds no artifact tfpilot can load: give a run directory, a folder written by "
        "`tfpilot export`, a SavedModel folder, or a .keras/.tflite/.onnx file"
    )


@dataclass(frozen=True)
class Resolved:
    """Where an artifact is, which backend runs it, and its bundle."""

    backend: str
    format: str
    path: Path
    bundle: Bundle

    def open(self) -> Any:
        """The backend callable (prepared batch -> probabilities)."""
        return BACKENDS.get(self.backend).open(self.path, self.bundle)


def resolve(path: str | Path, backend: str | None = None) -> Resolved:
    """Find the artifact at ``path`` (optionally forcing ``backend``) and read its bundle.

    ``backend`` may also be an export format ("tflite-int8"): for a run directory that
    selects ``RUN/export/<format>``.
    """
    path = Path(path)
    fmt = None
    if backend is not None and backend not in BACKENDS:
        if backend in EXPORTERS:
            fmt, backend = backend, EXPORTERS.entry(backend).extra["backend"]
        else:
            BACKENDS.entry(backend)  # raises with a did-you-mean message
    if path.is_dir() and (path / "labels.json").is_file() and backend not in (None, "keras"):
        fmt = fmt or backend
        folder = path / "export" / fmt
        if not folder.is_dir():
            raise NotFoundError(
                f"{path} has no {fmt} export: run `tfpilot export {path} --format {fmt}` first"
            )
        path = folder
    found, artifact = detect(path)
    if backend is not None and found != backend:
        raise UserError(f"{path} is a {found} artifact, not {backend}: drop --backend or pass --backend {found}")
    bundle = BACKENDS.get(found).read_bundle(artifact)
    return Resolved(found, fmt or bundle.format, artifact, bundle)


def read_bundle(path: str | Path) -> Bundle:
    """The bundle of the artifact at ``path`` (any format)."""
    name, artifact = detect(path)
    return BACKENDS.get(name).read_bundle(artifact)


__all__ = ["BACKENDS", "BUNDLE_FILE", "Backend", "Resolved", "bundle_beside", "detect", "read_bundle",
           "register_backend", "resolve"]
