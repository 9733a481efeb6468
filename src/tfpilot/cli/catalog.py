"""``tfpilot models`` and ``tfpilot datasets``: what is registered."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from tfpilot.cli.common import print_table, say, user_errors
from tfpilot.errors import UserError


@user_errors
def models_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern, e.g. 'cifar*'.")] = "*",
    task: Annotated[Optional[str], typer.Option("--task", help="image or text.")] = None,
) -> None:
    """List registered models."""
    from tfpilot.models import MODELS

    table = Table(show_header=True)
    for col in ("model", "task", "description"):  # names are copied into configs: never wrapped
        table.add_column(col, no_wrap=col != "description")
    entries = MODELS.entries(pattern, tag=task)
    for e in entries:
        table.add_row(e.name, ",".join(e.tags), escape(e.description))
    if not entries:
        raise UserError(f"no model matches {pattern!r}; known: {', '.join(MODELS.list())}")
    print_table(table)


@user_errors
def datasets_command(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern.")] = "*",
) -> None:
    """List built-in datasets and the path formats tfpilot reads."""
    from tfpilot.data import DATASETS, FORMATS
    from tfpilot.data.paths import search_dirs

    table = Table(show_header=True)
    for col in ("dataset", "task", "description"):
        table.add_column(col, no_wrap=col != "description")
    for e in DATASETS.entries(pattern):
        table.add_row(e.name, ",".join(e.tags), escape(e.description))
    from tfpilot.data.table_io import TABLE_DATASETS  # tables: train with --target COLUMN

    for e in TABLE_DATASETS.entries(pattern):
        table.add_row(e.name, "table", escape(e.description) + " (--target COLUMN)")
    for e in FORMATS.entries(pattern):
        table.add_row(f"<path: {e.name}>", "", e.description)
    print_table(table)
    say("dataset files are looked up in: " + ", ".join(str(d) for d in search_dirs()) + ", then Keras' download")
