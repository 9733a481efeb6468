"""``tfpilot launch``: a multi-worker run as N local processes (tf.distribute, TF_CONFIG)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tfpilot.cli.common import user_errors
from tfpilot.errors import UserError


@user_errors
def launch_command(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option("--workers", "-n", min=2, help="Worker processes to start.")] = 2,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Resume the run directory given as the argument from its last backup.")] = False,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=1, help="Intra-op and inter-op threads per worker (default: TensorFlow's).")] = None,
) -> None:
    """Start N workers of one MultiWorkerMirroredStrategy run on 127.0.0.1 and stream their logs.

    Every argument after the options is passed to `tfpilot train` (with
    train.distribute=multi_worker), or with --resume names the run directory to resume:

        tfpilot launch --workers 2 configs/mnist_cnn.yaml --epochs 3

        tfpilot launch --workers 2 --resume runs/mnist_cnn-mnist-20261201-120000
    """
    from tfpilot.api import launch

    if not ctx.args:
        raise UserError("give the arguments of `tfpilot train` (a config and/or flags), or --resume RUN")
    status = launch(list(ctx.args), workers, command="resume" if resume else "train", threads=threads)
    raise typer.Exit(status)
