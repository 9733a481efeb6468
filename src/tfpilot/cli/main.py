"""The ``tfpilot`` command: one sub-command per step, each a thin layer over the Python API."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from tfpilot.cli import catalog, demo, evaluate, predict, resume, serve, train
from tfpilot.cli import gradcam, report
from tfpilot.cli import benchmark, export, load, prune, verify
from tfpilot.cli import ensemble, launch, lr_find
from tfpilot.cli import inspect as inspect_cli
from tfpilot.cli import tune
from tfpilot.cli.common import DEBUG_ENV, debug_scope, quiet_tensorflow, user_errors

app = typer.Typer(
    name="tfpilot",
    help="From data to a deployed classifier on TensorFlow 2 / Keras 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
@user_errors
def global_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option(
        "--debug", help=f"Print the traceback of every error, the user's too (or set {DEBUG_ENV}=1). "
        "Without it a user error is one 'error:' line (exit status 2) and any other error, a bug, "
        "prints its traceback (exit status 1).")] = False,
    import_: Annotated[Optional[list[str]], typer.Option(
        "--import", metavar="MODULE", help="Import this module first (repeatable): the module that registers your "
        "own losses, models or layers. `train` records it in the run's config (imports), so later commands on "
        "the run import it again.")] = None,
) -> None:
    """From data to a deployed classifier on TensorFlow 2 / Keras 3."""
    from tfpilot.plugins import import_modules, load_entry_points

    ctx.with_resource(debug_scope(debug))  # for the command this invocation runs, then reset
    load_entry_points()
    ctx.obj = {"imports": import_modules(import_ or [], "--import")}


app.command("train")(train.train_command)
app.command("resume")(resume.resume_command)
app.command("launch", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    launch.launch_command)
app.command("lr-find")(lr_find.lr_find_command)
app.command("ensemble")(ensemble.ensemble_command)
app.command("evaluate")(evaluate.evaluate_command)
app.command("report")(report.report_command)
app.command("gradcam")(gradcam.gradcam_command)
app.command("predict")(predict.predict_command)
app.command("models")(catalog.models_command)
app.command("datasets")(catalog.datasets_command)
app.command("demo")(demo.demo_command)
app.command("serve")(serve.serve_command)
app.command("export")(export.export_command)
app.command("verify")(verify.verify_command)
app.command("load")(load.load_command)
app.command("prune")(prune.prune_command)
app.command("benchmark")(benchmark.benchmark_command)
app.command("inspect")(inspect_cli.inspect_command)
app.command("tune")(tune.tune_command)


@app.command("version")
def version() -> None:
    """Print tfpilot's version."""
    from tfpilot import __version__

    typer.echo(__version__)


def main() -> None:
    import sys

    quiet_tensorflow()
    app(args=serve.tf_serving_argv(sys.argv[1:]))  # TF Serving's --flag=true|false forms


if __name__ == "__main__":
    main()
