"""``tfpilot ensemble``: average several runs' models into one ensemble run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import headline, metrics_table, print_table, say, setup_logging, user_errors


@user_errors
def ensemble_command(
    runs: Annotated[list[Path], typer.Argument(help="Two or more finished run directories.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The ensemble's run directory.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a finished run in --out.")] = False,
    allow_different_splits: Annotated[
        bool, typer.Option("--allow-different-splits", help="Accept members tested on different examples.")
    ] = False,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Looked in first for dataset files.")] = None,
) -> None:
    """Average the class probabilities of RUNS into one model; writes a run directory that
    evaluate / predict / export / report treat like any run."""
    from tfpilot.api import ensemble
    from tfpilot.runs import ENSEMBLE

    setup_logging()
    run = ensemble(runs, out, overwrite=overwrite, allow_different_splits=allow_different_splits,
                   data_dir=data_dir)
    record = json.loads(run.file(ENSEMBLE).read_text(encoding="utf-8"))
    for member in record["members"]:
        scores = "  ".join(f"{split} {member[f'{split}_accuracy']:.4f}" for split in ("val", "test")
                           if f"{split}_accuracy" in member)
        say(f"member {member['run']}: {scores}")
    metrics = run.metrics
    if "test" in metrics:
        print_table(metrics_table("ensemble / test", headline(metrics["test"])))
        say("ensemble test accuracy: ", (f"{record['test_accuracy']:.4f}", "bold"),
            f"  (best member {record['best_member_test_accuracy']:.4f})")
    say("run directory: ", (str(run.path), "bold"))
