"""``tfpilot train``: train a model from a YAML config and/or flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import console, headline, metrics_table, setup_logging, user_errors
from tfpilot.runs import REPORT


@user_errors
def train_command(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config (e.g. configs/mnist_cnn.yaml).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Dataset name or path.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Registered model name.")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", "-e")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b")] = None,
    run_dir: Annotated[Optional[Path], typer.Option("--run-dir", "-o", help="Where to write the run.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Looked in first for dataset files.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a key: --set train.epochs=3")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip writing RUN/report.html.")] = False,
    check_determinism: Annotated[bool, typer.Option(
        "--check-determinism", help="Train two short deterministic twins and report whether their weights match.")] = False,
) -> None:
    """Train a model; writes a run directory with the model, metrics and config."""
    from tfpilot.api import check_determinism as determinism_twins
    from tfpilot.api import train
    from tfpilot.config import load_config

    setup_logging(verbose)
    cfg = load_config(
        config, overrides=set_ or [], dataset=dataset, model=model, epochs=epochs,
        batch_size=batch_size, run_dir=run_dir, data_dir=data_dir,
    )
    if check_determinism:
        report = determinism_twins(cfg)
        if report.identical:
            console.print(f"deterministic: the two twins' {report.num_weights} weights are identical "
                          f"after {report.steps} steps")
            return
        console.print(f"[bold red]NOT deterministic[/]: {len(report.differing)} of {report.num_weights} weights "
                      f"differ (max |diff| {report.max_abs_diff:.3g}), e.g. {', '.join(report.differing[:3])}")
        raise typer.Exit(1)
    run = train(cfg, report=not no_report)
    metrics = run.metrics
    if "test" in metrics:
        console.print(metrics_table("test", headline(metrics["test"])))
    console.print(f"run directory: [bold]{run.path}[/]")
    if "test" in metrics:
        console.print(f"test accuracy: [bold]{metrics['test']['accuracy']:.4f}[/]  "
                      f"(train {metrics['train_seconds']:.1f}s, {metrics['precision']})")
    if not no_report and run.file(REPORT).is_file():
        console.print(f"report: [bold]{run.file(REPORT)}[/]")
