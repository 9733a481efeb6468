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
) -> None:
    """Accuracy, loss, top-k, per-class report, macro-F1, balanced accuracy, confusion matrix.

    With the run's own dataset the examples are its recorded split (split.json); the
    result goes to RUN/evaluations/, never over the training-time metrics.json.
    """
    from tfpilot.evaluation import evaluate

    setup_logging()
    result = evaluate(run, dataset=dataset, split=split, data_dir=data_dir, tta=tta)
    if as_json:
        console.print_json(json.dumps(result))
        return
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


def describe_source(source: dict[str, Any]) -> str:
    """One line saying what was evaluated: the run's recorded split, or another dataset's.

    Example:
        >>> describe_source({"dataset": "mnist", "split": "test", "recorded_split": True})
        "the run's recorded test split (split.json)"
    """
    if source["recorded_split"]:
        return f"the run's recorded {source['split']} split (split.json)"
    return f"{source['dataset']}'s own {source['split']} split -- not the run's recorded split"
