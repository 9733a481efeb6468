"""``tfpilot lr-find``: the learning-rate range test for a config; prints a suggested rate."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import say, setup_logging, user_errors


@user_errors
def lr_find_command(
    config: Annotated[Optional[Path], typer.Argument(help="YAML config (e.g. configs/mnist_cnn.yaml).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Dataset name or path.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Registered model name.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Looked in first for dataset files.")] = None,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", "-s", help="Override a key: --set data.train_limit=5000")
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to save lr_find.png / .json.")] = None,
    steps: Annotated[
        Optional[int], typer.Option("--steps", help="Batches of the sweep (default: an epoch, 30-100).")
    ] = None,
    start_lr: Annotated[float, typer.Option("--start-lr")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr")] = 10.0,
    method: Annotated[str, typer.Option("--method", help="steepest or min_div_10.")] = "steepest",
    target: Annotated[Optional[list[str]], typer.Option(
        "--target", help="A table column to predict (repeatable): a table model, as in `tfpilot train`.")] = None,
) -> None:
    """Sweep the learning rate from 1e-7 to 10 over a short training run and suggest one
    (where the loss falls fastest); saves the loss-vs-LR plot."""
    from tfpilot.config import load_config
    from tfpilot.api import find_lr

    setup_logging()
    cfg = load_config(config, overrides=set_ or [], dataset=dataset, model=None if target else model,
                      batch_size=batch_size,
                      data_dir=data_dir)
    if target:
        from tfpilot.config.table_flags import with_columns

        cfg = with_columns(cfg, target, [], model=model)
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = cfg.output.runs_root / f"lr_find-{cfg.model.name}-{Path(cfg.data.dataset).name or 'data'}-{stamp}"
    result = find_lr(cfg, out, start_lr=start_lr, end_lr=end_lr, num_steps=steps, method=method)
    stop = "stopped early: the loss diverged" if result.stopped_early else "reached end_lr"
    say(f"swept {len(result.lrs)} of {result.planned_steps} steps, {result.lrs[0]:.1e} -> "
        f"{result.lrs[-1]:.1e} ({stop})")
    say(f"steepest descent: {result.steepest_lr:.2e}   minimum loss: {result.min_loss_lr:.2e} "
        f"(/10: {result.min_loss_lr / 10:.2e})")
    for note in result.notes:
        say(("note:", "yellow"), f" {note}")
    say(f"suggested learning rate ({result.method}): ", (f"{result.suggestion:.2e}", "bold"))
    say("plot: ", (str(result.plot_path), "bold"))
    say(f"train with it: --set train.optimizer.learning_rate={result.suggestion:.2g}")
