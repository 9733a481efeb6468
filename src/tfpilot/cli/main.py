"""The ``tfpilot`` command: one sub-command per step, each a thin layer over the Python API."""

from __future__ import annotations

import typer

from tfpilot.cli import catalog, demo, evaluate, predict, train
from tfpilot.cli.common import quiet_tensorflow

app = typer.Typer(
    name="tfpilot",
    help="From data to a deployed classifier on TensorFlow 2 / Keras 3.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("train")(train.train_command)
app.command("evaluate")(evaluate.evaluate_command)
app.command("predict")(predict.predict_command)
app.command("models")(catalog.models_command)
app.command("datasets")(catalog.datasets_command)
app.command("demo")(demo.demo_command)


@app.command("version")
def version() -> None:
    """Print tfpilot's version."""
    from tfpilot import __version__

    typer.echo(__version__)


def main() -> None:
    quiet_tensorflow()
    app()


if __name__ == "__main__":
    main()
