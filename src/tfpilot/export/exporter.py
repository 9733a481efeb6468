"""The exporter registry and :func:`export`: one run -> one folder per format.

Layout of ``RUN/export/`` (or ``--out``)::

    keras/          model.keras + bundle.json
    saved_model/    a SavedModel (serving signatures, assets/bundle.json, assets/labels.txt)
    tflite/         model.tflite (float32; bundle embedded as metadata) + bundle.json
    tflite-fp16/    ... float16 weights
    tflite-dynamic/ ... int8 weights, float activations (dynamic-range)
    tflite-int8/    ... int8 weights and activations, calibrated on the training split
    onnx/           model.onnx (bundle in metadata_props) + bundle.json

Example:
    >>> from tfpilot.export import export
    >>> result = export("runs/mnist_cnn-mnist-20260101-120000", ["tflite", "onnx"])  # doctest: +SKIP
    >>> [a.format for a in result.artifacts]  # doctest: +SKIP
    ['tflite', 'onnx']
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfpilot.errors import AlreadyExistsError, UserError
from tfpilot.export.bundle import Bundle
from tfpilot.export.formats import EXPORTERS, GATED_FORMATS, artifact_size, list_formats

log = logging.getLogger(__name__)

def resolve_formats(formats: str | Sequence[str]) -> list[str]:
    """Expand ``all``, check every name (did-you-mean on typos), drop duplicates, sort.

    Example:
        >>> resolve_formats(["onnx", "tflite", "onnx"])
        ['tflite', 'onnx']
    """
    names = [formats] if isinstance(formats, str) else list(formats)
    if not names:
        raise UserError(f"no export format given; choose from: {', '.join(list_formats())}, all")
    out: list[str] = []
    for name in names:
        for fmt in list_formats() if name == "all" else [EXPORTERS.entry(name).name]:
            if fmt not in out:
                out.append(fmt)
    order = {f: i for i, f in enumerate(list_formats())}
    return sorted(out, key=order.__getitem__)


class ExportError(UserError):
    """Some formats could not be written; ``result`` holds the ones that were."""

    def __init__(self, message: str, result: ExportResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class GateError(ExportError):
    """An artifact lost more accuracy than allowed; the message says what to use instead."""


@dataclass
class Artifact:
    """One exported artifact: its file (or SavedModel folder), size in bytes, export time."""

    format: str
    path: Path
    size_bytes: int
    seconds: float
    bundle: Bundle

    @property
    def backend(self) -> str:
        return EXPORTERS.entry(self.format).extra["backend"]


@dataclass
class ExportResult:
    """What :func:`export` wrote (``artifacts``), refused at the gate (``rejected``) and could
    not convert (``failed``), each with its message."""

    out_dir: Path
    artifacts: list[Artifact] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def export(
    source: Any,
    formats: str | Sequence[str] = "all",
    out_dir: str | Path | None = None,
    max_drop: float = 1.0,
) -> ExportResult:
    """Export a run (or an :class:`~tfpilot.export.source.ExportSource`) to ``formats``: a classifier
    or a table model (named inputs, a head per output) alike.

    Each format goes to its own folder under ``out_dir`` (default ``RUN/export``),
    replacing an earlier export of that format only once the new one is built and passed: it is
    built in a temporary folder beside it and swapped in. ``tflite-int8`` is checked on the
    run's test split: if a class head loses more than ``max_drop`` accuracy points against the
    Keras model (or a number head moves by more than a quarter of its targets' std), the new
    artifact is removed, an earlier one is kept as it was, and :class:`GateError` is raised
    after the other formats are written.
    A format whose converter refuses the model does not stop the others either:
    :class:`ExportError` names it (with the converter's reason) at the end. ``all`` means every
    format the model supports: those it cannot be converted to (TFLite and ONNX of a model with
    decision forests) are skipped, with their reason in ``result.skipped``; named explicitly, they fail.

    Args:
        source: a run directory, or an ``ExportSource``.
        formats: names from :func:`list_formats`, or "all".
        out_dir: where to write; required when ``source`` is not a run.
        max_drop: the largest accuracy drop (in points) a head of ``tflite-int8`` may have.

    Returns:
        an :class:`ExportResult`.
    """
    from tfpilot.export.source import ExportSource

    names = resolve_formats(formats)
    if not isinstance(source, ExportSource):
        source = ExportSource.from_run(source)
    skipped = _unsupported(source, names, formats)
    if out_dir is None:
        if source.run_path is None:
            raise UserError("give out_dir: the model does not come from a run directory")
        out_dir = source.run_path / "export"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out, skipped=skipped)
    for name in (n for n in names if n not in skipped):
        artifact = _export_one(source, name, out / name, max_drop, result)
        if artifact is not None:
            result.artifacts.append(artifact)
    if result.failed:
        problems = {**result.failed, **result.rejected}
        raise ExportError(" ".join(f"{k}: {v}" for k, v in problems.items()) + _written(result), result)
    if result.rejected:
        raise GateError(" ".join(result.rejected.values()) + _written(result), result)
    return result


#: Formats that convert the network (TFLite, ONNX); keras and saved_model keep every TensorFlow op.
CONVERTED = ("tflite", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx")


def _unsupported(source: Any, names: Sequence[str], asked: str | Sequence[str]) -> dict[str, str]:
    """The formats of ``all`` that ``source``'s model cannot be converted to, each with the reason
    (logged); formats named explicitly are not skipped, so their exporter says why they fail."""
    from tfpilot.models.ydf_layers import conversion_refusal

    explicit = {EXPORTERS.entry(n).name for n in ([asked] if isinstance(asked, str) else asked) if n != "all"}
    candidates = [n for n in names if n in CONVERTED and n not in explicit]
    reason = conversion_refusal(source.model) if candidates else None
    if not reason:
        return {}
    log.warning("skipped %s (of --format all): %s", ", ".join(candidates), reason)
    return {n: reason for n in candidates}


def _export_one(source: Any, name: str, folder: Path, max_drop: float, result: ExportResult) -> Artifact | None:
    """Build format ``name`` beside ``folder``, gate it, and only then put it in ``folder``.

    An earlier export in ``folder`` stays, untouched, until the new artifact passed: a
    converter refusal or a gate failure leaves it as it was (and removes the new one).
    """
    artifact = write_artifact(name, folder, lambda into: EXPORTERS.get(name)(source, into), result)
    if artifact is None:
        return None
    if name in GATED_FORMATS:
        check = _gate(source, artifact, max_drop)
        if check is not None:
            result.checks[name] = check
            if not check["passed"]:
                shutil.rmtree(_built_in(artifact), ignore_errors=True)
                result.rejected[name] = check["message"] + _kept(folder)
                return None
    return _install(artifact, folder)


def write_artifact(name: str, folder: Path, build: Callable[[Path], Bundle], result: ExportResult) -> Artifact | None:
    """Build format ``name`` for ``folder`` with ``build(into)``, into a new temporary folder
    beside it: ``folder`` itself (an earlier export) is not touched. :func:`_install` then puts
    the artifact in ``folder``.

    A converter that refuses the model (``ValueError``) leaves no folder behind: its reason goes
    to ``result.failed`` and None is returned, so the caller goes on with the other formats. Any
    other error removes the temporary folder and is raised.

    Args:
        name: the format's name.
        folder: where it goes (once it passed).
        build: writes the artifact into the folder it is given and returns its :class:`Bundle`.
        result: where a refusal is recorded.

    Example:
        >>> artifact = write_artifact("onnx", out / "onnx", lambda into: to_onnx(model, into), result)  # doctest: +SKIP
        >>> artifact = _install(artifact, out / "onnx")  # doctest: +SKIP
    """
    import tempfile

    _check_ours(folder)
    into = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
    started = time.perf_counter()
    try:
        bundle = build(into)
    except ValueError as exc:  # a converter refused the model: say so, go on with the others
        shutil.rmtree(into, ignore_errors=True)
        log.warning("%s: %s%s", name, exc, _kept(folder))
        result.failed[name] = f"{exc}{_kept(folder)}"
        return None
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    path = into if bundle.file in (".", "") else into / bundle.file
    return Artifact(name, path, artifact_size(path), seconds, bundle)


def _built_in(artifact: Artifact) -> Path:
    """The temporary folder :func:`write_artifact` built ``artifact`` in."""
    file = artifact.bundle.file
    return artifact.path if file in (".", "") else artifact.path.parents[len(Path(file).parts) - 1]


def _install(artifact: Artifact, folder: Path) -> Artifact:
    """Swap the built artifact into ``folder`` (an earlier export there goes only now); returns
    the artifact at its final path."""
    import tempfile

    built = _built_in(artifact)
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        folder.replace(old / folder.name)
    built.replace(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    path = folder if artifact.path == built else folder / artifact.path.relative_to(built)
    log.info("exported %s to %s (%.1f KB, %.1f s)", artifact.format, path, artifact.size_bytes / 1024,
             artifact.seconds)
    return Artifact(artifact.format, path, artifact.size_bytes, artifact.seconds, artifact.bundle)


def _check_ours(folder: Path) -> None:
    """Refuse to replace a ``folder`` that tfpilot export did not write."""
    if not folder.exists():
        return
    ours = (folder / "bundle.json").is_file() or (folder.is_dir() and not any(folder.iterdir()))
    if not ours:
        raise AlreadyExistsError(
            f"{folder} exists and was not written by tfpilot export (no bundle.json): choose another --out "
            "or move it away"
        )


def _kept(folder: Path) -> str:
    """What a refused or failed export left in ``folder``: the earlier artifact, if any."""
    return f" The earlier export in {folder} is kept." if folder.exists() else ""


def _written(result: ExportResult) -> str:
    if not result.artifacts:
        return ""
    return " Written: " + ", ".join(f"{a.format} ({a.path})" for a in result.artifacts) + "."


def _gate(source: Any, artifact: Artifact, max_drop: float) -> dict[str, Any] | None:
    """Check every head of ``artifact`` against the Keras model; record the result in its bundle."""
    from tfpilot.export.runtime import keras_runner, run_batched
    from tfpilot.export.verify import MAX_NUMBER_DIFF, check_artifact

    data = source.evaluation_data()
    if data is None:
        log.warning("%s: no evaluation data, so its accuracy was not checked", artifact.format)
        return None
    x, y = data
    reference = run_batched(keras_runner(source.model, source.spec), x, source.batch_size)
    check = check_artifact(artifact.path, x, y, reference, max_drop, max_number_diff=MAX_NUMBER_DIFF[artifact.format],
                           batch_size=source.batch_size).to_dict()
    artifact.bundle.verification = check
    artifact.bundle.write(artifact.path.parent)
    return check
