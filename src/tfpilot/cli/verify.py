"""``tfpilot verify``: every exported artifact against the Keras model, on the test split.

Example:
    $ tfpilot verify runs/mnist
    $ tfpilot verify runs/mnist/export/tflite-int8 --max-drop 0.5
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tfpilot.cli.common import console, print_table, say, setup_logging, user_errors


@user_errors
def verify_command(
    target: Annotated[Path, typer.Argument(help="Run directory (checks RUN/export/*) or one artifact.")],
    data: Annotated[str, typer.Option("--data", help="Split to check on: test, val or train.")] = "test",
    max_drop: Annotated[float, typer.Option(
        "--max-drop", min=0.0, help="tflite-int8 fails if a head loses more accuracy points than this.")] = 1.0,
    min_agreement: Annotated[Optional[float], typer.Option(
        "--min-agreement", min=0.0, max=1.0,
        help="Fail any artifact whose top-1 agreement is below this (default 0.99; fp16 0.97, dynamic 0.95).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Check at most N examples.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Every head of every artifact against Keras: top-1 agreement, accuracy and its change, max difference."""
    from tfpilot.export import verify

    setup_logging()
    report = verify(target, split=data, max_drop=max_drop, min_agreement=min_agreement, limit=limit)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        print_table(_table(report))
    for c in report.checks:
        if not c.passed:
            say(("error:", "bold red"), f" {c.message}", err=True)
    if not report.passed:
        raise typer.Exit(1)


def _table(report: Any) -> Any:
    """One row per artifact (and head, when the model has several)."""
    from rich.table import Table

    several = any(len(c.heads) > 1 for c in report.checks)
    keras = "" if report.keras_accuracy is None else f", Keras accuracy {report.keras_accuracy:.4f}"
    table = Table(title=f"{report.run}: {report.num_examples} {report.split} examples{keras}", show_header=True)
    table.add_column("format", no_wrap=True, min_width=14)
    for col in ("head",) * several + ("top-1 agree", "accuracy", "change (points)", "max prob diff", "size", "result"):
        table.add_column(col, justify="left" if col in ("head", "result") else "right")
    for c in report.checks:
        for name, h in c.heads.items():
            if h["kind"] == "number":
                figures = ["-", "-", "-", f"|diff| {h['max_abs_diff']:.4g} ({h['max_diff_in_std']:.3f} std)"]
            else:
                figures = [f"{h['agreement']:.2%}", f"{h.get('accuracy', 0.0):.4f}",
                           f"{h.get('accuracy_change', 0.0):+.2f}", f"{h['max_prob_diff']:.4f}"]
            table.add_row(c.format, *[name] * several, *figures, f"{c.size_bytes / 1024:,.0f} KB",
                          "[green]ok[/]" if c.passed else "[bold red]FAIL[/]")
    return table
