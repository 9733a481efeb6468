"""``tfpilot evaluate``: metrics of a run on its recorded test split or another dataset.

The result is saved to ``RUN/evaluations/<name>.json``; ``metrics.json`` keeps the figures
training measured.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tfpilot.cli.common import (
    console, headline, metrics_table, per_class_table, print_table, say, setup_logging, user_errors,
)


@user_errors
def evaluate_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Another dataset with the same classes.")] = None,
    split: Annotated[str, typer.Option("--split", help="test, val, train or all.")] = "test",
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    tta: Annotated[Optional[str], typer.Option(
        "--tta", help="Test-time augmentation: flip (average with the mirrored image inputs); reported beside the "
        "plain figures.")] = None,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="First refit the temperature of every class head on the run's val split (rewrites "
        "model.keras; metrics.json records ECE before and after).")] = False,
) -> None:
    """Accuracy, loss, top-k, per-class report, macro-F1, balanced accuracy, confusion matrix.

    With the run's own dataset the examples are its recorded split (split.json); the
    result goes to RUN/evaluations/, never over the training-time metrics.json.
    """
    from tfpilot.evaluation import evaluate

    setup_logging()
    calibration = None
    if calibrate:
        from tfpilot.evaluation.evaluate import recalibrate

        calibration = recalibrate(run, data_dir=data_dir)
    result = evaluate(run, dataset=dataset, split=split, data_dir=data_dir, tta=tta)
    if as_json:
        console.print_json(json.dumps({**result, **({"calibration": calibration} if calibration else {})}))
        return
    if calibration:
        print_calibration(calibration)
    source = result["evaluated_on"]
    title = f"{dataset or 'run dataset'} / {split}"
    if "heads" in result:  # a table model: a row per head
        from tfpilot.cli.heads import print_heads

        print_heads(title, result)
    else:
        print_table(metrics_table(title, headline(result)))
    say(f"evaluated on: {describe_source(source)}")
    t = result.get("tta")
    if t and "heads" in t:
        print_heads(f"{title}, with test-time augmentation ({t['mode']})", t)
    elif t:
        say(f"with test-time augmentation ({t['mode']}): accuracy {t['accuracy']:.4f} (plain {result['accuracy']:.4f}), "
            f"loss {t['loss']:.4f}")
    for name, head in result.get("heads", {"": result}).items():  # a classifier is its one head
        if "per_class" in head:
            print_table(per_class_table(head["per_class"]))
            say(f"confusion matrix{f' of {name}' if name else ''} (rows: true, columns: predicted):")
            for row in head["confusion_matrix"]:
                say("  " + " ".join(f"{v:6d}" for v in row))  # a matrix row cut in two would misalign
    if "saved_to" in source:
        say(f"saved to {source['saved_to']} (metrics.json keeps the training-time figures)")


def print_calibration(record: dict[str, Any]) -> None:
    """A row per head: its temperature and ECE / NLL before and after, on val and test."""
    from rich.table import Table

    table = Table(title="calibration (temperature fitted on val)")
    for column in ("head", "temperature", "split", "ECE before", "ECE after", "NLL before", "NLL after", "accuracy"):
        table.add_column(column, justify="left" if column in ("head", "split") else "right")
    for head, entry in record.items():
        for split in ("val", "test"):
            if split in entry:
                f = entry[split]
                table.add_row(head, f"{entry['temperature']:.4f}", split, f"{f['ece_before']:.4f}",
                              f"{f['ece_after']:.4f}", f"{f['nll_before']:.4f}", f"{f['nll_after']:.4f}",
                              f"{f['accuracy_after']:.4f}")
    print_table(table)
    say("model.keras now holds these temperatures; export it again for artifacts that use them")


def describe_source(source: dict[str, Any]) -> str:
    """One line saying what was evaluated: the run's recorded split, or another dataset's.

    Example:
        >>> describe_source({"dataset": "mnist", "split": "test", "recorded_split": True})
        "the run's recorded test split (split.json)"
    """
    if source["recorded_split"]:
        return f"the run's recorded {source['split']} split (split.json)"
    return f"{source['dataset']}'s own {source['split']} split -- not the run's recorded split"
