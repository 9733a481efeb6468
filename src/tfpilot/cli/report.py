"""``tfpilot report``: the self-contained HTML evaluation report of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import say, setup_logging, user_errors
from tfpilot.errors import UserError


@user_errors
def report_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    split: Annotated[Optional[str], typer.Option("--split", help="test, val or train (default: test).")] = None,
    misclassified: Annotated[int, typer.Option("--misclassified", min=0, help="Misclassified examples shown.")] = 16,
    correct: Annotated[int, typer.Option("--correct", min=0, help="Correct predictions shown.")] = 8,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML file (default RUN/report.html).")] = None,
) -> None:
    """Write RUN/report.html (opens offline) and RUN/plots/*.png.

    Example: tfpilot report runs/mnist_cnn-mnist-20260101-120000
    """
    from tfpilot.evaluation.report import report

    setup_logging()
    if split is not None and split not in ("test", "val", "train"):
        raise UserError(f"--split must be test, val or train, not {split!r}")
    path = report(run, split=split, misclassified=misclassified, correct=correct, out=out)
    say("report: ", (str(path), "bold"))
