"""``tfpilot evaluate``: metrics of a run on its test split or another dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import console, headline, metrics_table, per_class_table, setup_logging, user_errors


@user_errors
def evaluate_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Another dataset with the same classes.")] = None,
    split: Annotated[str, typer.Option("--split", help="test, val or train.")] = "test",
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Accuracy, loss, top-k, per-class report, macro-F1, balanced accuracy, confusion matrix."""
    from tfpilot.evaluation import evaluate

    setup_logging()
    result = evaluate(run, dataset=dataset, split=split, data_dir=data_dir)
    if as_json:
        console.print_json(json.dumps(result))
        return
    console.print(metrics_table(f"{dataset or 'run dataset'} / {split}", headline(result)))
    console.print(per_class_table(result["per_class"]))
    console.print("confusion matrix (rows: true, columns: predicted):")
    for row in result["confusion_matrix"]:
        console.print("  " + " ".join(f"{v:6d}" for v in row), highlight=False)
