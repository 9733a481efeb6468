"""``tfpilot train``: train a model from a YAML config and/or flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tfpilot.cli.common import headline, metrics_table, print_table, say, setup_logging, user_errors
from tfpilot.runs import REPORT


def with_cli_imports(ctx: typer.Context, cfg: Any) -> Any:
    """``cfg`` with the modules of ``tfpilot --import`` added to its ``imports``, so the run
    records them and every later stage imports them again."""
    given = (ctx.find_root().obj or {}).get("imports", [])
    extra = [m for m in given if m not in cfg.imports]
    return cfg.model_copy(update={"imports": [*cfg.imports, *extra]}) if extra else cfg


@user_errors
def train_command(
    ctx: typer.Context,
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
    target: Annotated[Optional[list[str]], typer.Option(
        "--target", help="A table column to predict (repeatable): trains a table model (features.outputs).")] = None,
    input_: Annotated[Optional[list[str]], typer.Option(
        "--input", help="A table column to predict from (repeatable; default: every other column).")] = None,
    resume_if_exists: Annotated[bool, typer.Option(
        "--resume-if-exists", help="The run directory holds an unfinished run: resume it instead of refusing.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Discard the run (finished or not) already in the run directory.")] = False,
    preset: Annotated[Optional[str], typer.Option(
        "--preset", help="A table's leaderboard: fast (default) or best (train.preset).")] = None,
    time_limit: Annotated[Optional[str], typer.Option(
        "--time-limit", help="A table's leaderboard: the whole search's budget, e.g. 10m (train.time_limit).")] = None,
) -> None:
    """Train a model; writes a run directory with the model, metrics and config.

    A run directory that already holds a run is refused: resume an unfinished one with
    `tfpilot resume RUN` (or --resume-if-exists), discard it with --overwrite. `tfpilot train
    RUN/config.yaml` trains a new run beside RUN.
    """
    from tfpilot.api import beside_its_run, train
    from tfpilot.api import check_determinism as determinism_twins
    from tfpilot.config import load_config

    setup_logging(verbose)
    reuse = [f"output.{key}=true" for key, on in (("resume_if_exists", resume_if_exists), ("overwrite", overwrite))
             if on]
    search = [f"train.{key}={value}" for key, value in (("preset", preset), ("time_limit", time_limit)) if value]
    table = bool(target or input_)  # a table model is checked once its features are known: model.* after them
    late = ("model.", "train.preset", "train.time_limit", "train.candidates",  # (the leaderboard's keys too)
            "train.refit", "train.cv_folds")
    later = [o for o in set_ or [] if table and o.strip().startswith(late)]
    later += search if table else []
    reuse += [] if table else search
    cfg = with_cli_imports(ctx, load_config(
        config, overrides=[*(o for o in set_ or [] if o not in later), *reuse], dataset=dataset,
        model=None if table else model, epochs=epochs,
        batch_size=batch_size, run_dir=run_dir, data_dir=data_dir,
    ))
    if config is not None and run_dir is None:
        cfg = beside_its_run(cfg, config)
    if target or input_:
        from tfpilot.config.table_flags import with_columns

        cfg = with_columns(cfg, target or [], input_ or [], model=model, overrides=later)
    if check_determinism:
        report = determinism_twins(cfg)
        if report.identical:
            say(f"deterministic: the two twins' {report.num_weights} weights are identical after {report.steps} steps")
            return
        say(("NOT deterministic", "bold red"), f": {len(report.differing)} of {report.num_weights} weights "
            f"differ (max |diff| {report.max_abs_diff:.3g}), e.g. {', '.join(report.differing[:3])}")
        raise typer.Exit(1)
    run = train(cfg, report=not no_report)
    if run is None:
        say("worker finished: the chief (worker 0) writes the run directory and its report")
        return
    metrics = run.metrics
    from tfpilot.cli.leaderboard import LEADERBOARD, leaderboard_table

    board = leaderboard_table(run.file(LEADERBOARD))
    if board is not None:
        print_table(board)
    test = metrics.get("test", {})
    if "heads" in test:  # a table model: metrics per head
        from tfpilot.cli.heads import print_heads

        print_heads("test", test)
    elif test:
        print_table(metrics_table("test", headline(test)))
    say("run directory: ", (str(run.path), "bold"))
    timing = f"  (train {metrics['train_seconds']:.1f}s, {metrics['precision']})"
    if "accuracy" in test:
        say("test accuracy: ", (f"{test['accuracy']:.4f}", "bold"), timing)
    elif test:
        say(f"schema: {run.file('schema.yaml')}{timing}")
    if not no_report and run.file(REPORT).is_file():
        say("report: ", (str(run.file(REPORT)), "bold"))
