"""``tfpilot verify``: every exported artifact against the Keras model, on the test split.

Example:
    $ tfpilot verify runs/mnist
    $ tfpilot verify runs/mnist/export/tflite-int8 --max-drop 0.5
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import console, print_table, say, setup_logging, user_errors


@user_errors
def verify_command(
    target: Annotated[Path, typer.Argument(help="Run directory (checks RUN/export/*) or one artifact.")],
    data: Annotated[str, typer.Option("--data", help="Split to check on: test, val or train.")] = "test",
    max_drop: Annotated[float, typer.Option(
        "--max-drop", min=0.0, help="tflite-int8 fails if it loses more accuracy points than this.")] = 1.0,
    min_agreement: Annotated[Optional[float], typer.Option(
        "--min-agreement", min=0.0, max=1.0, help="Fail any artifact whose top-1 agreement is below this.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Check at most N examples.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Top-1 agreement with Keras, accuracy, accuracy change and max probability difference."""
    from rich.table import Table

    from tfpilot.export import verify

    setup_logging()
    report = verify(target, split=data, max_drop=max_drop, min_agreement=min_agreement, limit=limit)
    from tfpilot.export.table_verify import TableVerifyReport

    if isinstance(report, TableVerifyReport):  # a table model: one row per artifact and head
        from tfpilot.cli.table_output import print_table_verify

        print_table_verify(report, as_json)
        if not report.passed:
            raise typer.Exit(1)
        return
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        table = Table(title=f"{report.run}: {report.num_examples} {report.split} examples, Keras accuracy "
                            f"{report.keras_accuracy:.4f}", show_header=True)
        table.add_column("format", no_wrap=True, min_width=14)
        for col in ("top-1 agree", "accuracy", "change (points)", "max prob diff", "size", "result"):
            table.add_column(col, justify="left" if col == "result" else "right")
        for c in report.checks:
            table.add_row(c.format, f"{c.agreement:.2%}", f"{c.accuracy:.4f}", f"{c.accuracy_change:+.2f}",
                          f"{c.max_prob_diff:.4f}", f"{c.size_bytes / 1024:,.0f} KB",
                          "[green]ok[/]" if c.passed else "[bold red]FAIL[/]")
        print_table(table)
    for c in report.checks:
        if not c.passed:
            say(("error:", "bold red"), f" {c.message}", err=True)
    if not report.passed:
        raise typer.Exit(1)
