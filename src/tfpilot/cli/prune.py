"""``tfpilot prune``: fine-tune a run with magnitude pruning; writes the pruned model as a new run.

Example:
    $ tfpilot prune runs/mnist --sparsity 0.5 --epochs 2
    $ tfpilot export runs/mnist-pruned50 --format tflite
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import console, metrics_table, print_table, say, setup_logging, user_errors


@user_errors
def prune_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    sparsity: Annotated[float, typer.Option("--sparsity", help="Fraction of each kernel to zero (0-1).")] = 0.5,
    epochs: Annotated[int, typer.Option("--epochs", "-e", min=1, help="Fine-tuning epochs.")] = 2,
    learning_rate: Annotated[Optional[float], typer.Option(
        "--learning-rate", "--lr",
        help="Default: a tenth of the run's (with learning_rate: auto, of the rate its range test found).")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="New run directory (default RUN-prunedNN); an existing one is replaced only "
        "if it is empty or an earlier pruned run.")] = None,
    train_limit: Annotated[Optional[int], typer.Option("--train-limit", min=1,
                           help="Fine-tune on at most N training examples.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Magnitude pruning (Keras 3): reports sparsity, gzip-compressed size and accuracy."""
    from tfpilot.api import prune

    setup_logging(verbose)
    r = prune(run, sparsity=sparsity, epochs=epochs, learning_rate=learning_rate, out_dir=out, train_limit=train_limit)
    if as_json:
        console.print_json(json.dumps(r.to_dict()))
        return
    print_table(metrics_table(f"pruned to {r.target_sparsity:.0%}", {
        "sparsity (pruned kernels)": r.sparsity,
        "sparsity (all weights)": r.overall_sparsity,
        "gzip weights before": f"{r.gzip_bytes_before / 1024:,.1f} KB",
        "gzip weights after": f"{r.gzip_bytes_after / 1024:,.1f} KB",
        "compression": f"{r.compression:.2f}x",
        "accuracy before": r.accuracy_before,
        "accuracy after": r.accuracy_after,
        "fine-tune seconds": f"{r.seconds:.1f}",
    }))
    say("pruned run: ", (str(r.run_dir), "bold"), f" (export it with `tfpilot export {r.run_dir}`)")
