"""``tfpilot.load``: the predictor for a run directory or an exported artifact -- a
:class:`~tfpilot.inference.Predictor` for classifiers, a
:class:`~tfpilot.inference.table_predictor.TablePredictor` for table models.

Example:
    >>> import tfpilot
    >>> type(tfpilot.load("runs/multitask-table")).__name__  # doctest: +SKIP
    'TablePredictor'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfpilot.data.table_io import is_table_run
from tfpilot.inference import predictor
from tfpilot.inference.table_predictor import TablePredictor


def load(path: str | Path, backend: str | None = None, **kwargs: Any) -> Any:
    """The predictor of a run directory (or its ``model.keras``) or an exported artifact;
    see :func:`tfpilot.inference.predictor.load` for ``backend``.
    """
    path = Path(path)
    run = path.parent if path.is_file() and path.suffix == ".keras" else path
    if backend in (None, "keras") and is_table_run(run):
        return TablePredictor.from_run(run, **kwargs)
    if not (run / "labels.json").is_file() or backend not in (None, "keras"):
        from tfpilot.export.backends import resolve

        found = resolve(path, backend)
        if found.bundle.input_spec.kind == "table":
            return TablePredictor.from_artifact(found, **kwargs)
    return predictor.load(path, backend, **kwargs)
