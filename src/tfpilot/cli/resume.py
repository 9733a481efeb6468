"""``tfpilot resume``: continue an interrupted run from its last completed epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tfpilot.cli.common import console, headline, metrics_table, setup_logging, user_errors


@user_errors
def resume_command(
    run: Annotated[Path, typer.Argument(help="The interrupted run directory.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Resume training: model, optimizer, schedule step, data order and best-metric tracking."""
    from tfpilot.api import resume

    setup_logging(verbose)
    done = resume(run)
    metrics = done.metrics
    if "test" in metrics:
        console.print(metrics_table("test", headline(metrics["test"])))
    console.print(f"run directory: [bold]{done.path}[/] ({metrics['epochs_run']} epochs)")
