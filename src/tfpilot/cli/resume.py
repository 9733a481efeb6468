"""``tfpilot resume``: continue an interrupted run from its last completed epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tfpilot.cli.common import headline, metrics_table, print_table, say, setup_logging, user_errors


@user_errors
def resume_command(
    run: Annotated[Path, typer.Argument(help="The interrupted run directory.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Resume training: model, optimizer, schedule step, data order and best-metric tracking."""
    from tfpilot.api import resume

    setup_logging(verbose)
    done = resume(run)
    if done is None:
        say("worker finished: the chief (worker 0) writes the run directory and its report")
        return
    metrics = done.metrics
    if "test" in metrics:
        print_table(metrics_table("test", headline(metrics["test"])))
    say("run directory: ", (str(done.path), "bold"), f" ({metrics['epochs_run']} epochs)")
