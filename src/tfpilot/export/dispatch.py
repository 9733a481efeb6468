"""``tfpilot.export.export``: a classifier run through :func:`~tfpilot.export.exporter.export`, a
table run (named inputs, a head per output) through :func:`~tfpilot.export.table_export.export_table`.

Example:
    >>> from tfpilot.export import export
    >>> [a.format for a in export("runs/multitask-table", ["saved_model"]).artifacts]  # doctest: +SKIP
    ['saved_model']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfpilot.data.table_io import is_table_run
from tfpilot.export import exporter


def export(source: Any, formats: str | Sequence[str] = "all", out_dir: str | Path | None = None,
           max_drop: float = 1.0) -> exporter.ExportResult:
    """Export a run (see :func:`tfpilot.export.exporter.export`); a table run exports its
    formats with named inputs and outputs (``max_drop`` gates int8, which tables do not have)."""
    from tfpilot.export.source import ExportSource

    if not isinstance(source, ExportSource) and is_table_run(source):
        from tfpilot.export.table_export import export_table

        return export_table(source, formats, out_dir)
    return exporter.export(source, formats, out_dir, max_drop=max_drop)
