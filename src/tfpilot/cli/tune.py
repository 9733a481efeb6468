"""``tfpilot tune``: search config keys with Optuna; every trial is a run directory.

Example:
    $ tfpilot tune configs/mnist_mlp.yaml --space space.yaml --trials 20 --jobs 2 --out runs/tune-mlp
    $ tfpilot train runs/tune-mlp/best.yaml
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import metrics_table, print_table, say, setup_logging, user_errors


@user_errors
def tune_command(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Argument(
        help="YAML config every trial starts from; its tune: section may hold the space.")] = None,
    space: Annotated[Optional[Path], typer.Option(
        "--space", help="YAML file: dotted config key -> {log_uniform|uniform|int|choice: [...]}.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="The search directory (new).")] = None,
    resume: Annotated[Optional[Path], typer.Option(
        "--resume", help="Continue the search in this directory (a killed trial is run again).")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", "-n", min=1, help="Trials in all (default 20).")] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Worker processes (default 1).")] = None,
    timeout: Annotated[Optional[str], typer.Option(
        "--timeout", help="No new trial starts after this long: 90s, 30m, 2h.")] = None,
    metric: Annotated[Optional[str], typer.Option(
        "--metric", help="Validation metric of the epoch logs (default val_accuracy).")] = None,
    direction: Annotated[Optional[str], typer.Option(
        "--direction", help="maximize or minimize (required unless the metric is val_accuracy).")] = None,
    pruner: Annotated[Optional[str], typer.Option("--pruner", help="median (default), halving or none.")] = None,
    storage: Annotated[Optional[str], typer.Option(
        "--storage", help="Optuna RDB URL (postgresql://...) for workers on several machines; default: "
        "the journal file DIR/journal.log.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="The sampler's seed.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option(
        "--set", "-s", help="Override a key of the base config: --set train.epochs=5")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Search the config space (Optuna, pruned per epoch on a validation metric); writes
    DIR/best.yaml, DIR/trials.csv, DIR/tune.html and one run per trial in DIR/trials/."""
    from tfpilot.api import resume_tune, tune
    from tfpilot.cli.train import with_cli_imports
    from tfpilot.config import ConfigError, load_config

    setup_logging(verbose)
    if resume is not None:
        if config is not None or out is not None or space is not None or set_:
            raise ConfigError("--resume DIR continues a search as it was set up: give no CONFIG, --out, --space "
                              "or --set (--trials, --jobs and --timeout may change)")
        result = resume_tune(resume, trials=trials, jobs=jobs, timeout=timeout)
    else:
        if out is None:
            raise ConfigError("tfpilot tune needs --out DIR, the search directory (or --resume DIR)")
        cfg = with_cli_imports(ctx, load_config(config, overrides=set_ or []))
        flags = {"space": space, "trials": trials, "jobs": jobs, "timeout": timeout, "metric": metric,
                 "direction": direction, "pruner": pruner, "seed": seed}
        result = tune(cfg, out, {k: v for k, v in flags.items() if v is not None}, storage=storage)
    summary = {state.lower(): n for state, n in sorted(result.states.items())}
    if result.requeued:
        summary["rerun after a kill"] = ", ".join(map(str, result.requeued))
    if result.best_config is not None:
        best = result.study.best_trial
        summary[f"best {result.metric}"] = best.value
        summary["best trial"] = f"{best.number}: {best.user_attrs.get('run_dir')}"
    print_table(metrics_table(f"tune: {len(result.study.trials)} trials", summary))
    say("report: ", (str(result.out_dir / "tune.html"), "bold"))
    if result.best_config is not None:
        say("train the best config: ", (f"tfpilot train {result.best_config}", "bold"))
    else:
        say(("no trial completed", "yellow"), ": see trials.csv")

