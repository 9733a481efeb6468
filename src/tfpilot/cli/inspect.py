"""``tfpilot inspect DATA --out DIR``: what is wrong with a dataset, before (or after) training on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tfpilot.cli.common import say, setup_logging, user_errors


@user_errors
def inspect_command(
    dataset: Annotated[str, typer.Argument(help="Anything `tfpilot train --dataset` takes: a name, an image "
                                                "folder or archive, a text folder or table, a CSV table.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write inspect.json and inspect.html.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="A run config whose data section "
                                                   "(splits, features) to inspect with.")] = None,
    target: Annotated[Optional[list[str]], typer.Option(
        "--target", help="A table column to predict (repeatable): the table is split as `tfpilot train --target` "
        "splits it, and its column checks measure leakage into this target.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Looked in first for dataset files.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="Override a key: --set data.val_split=0.1")
                    ] = None,
    label_issues: Annotated[bool, typer.Option("--label-issues/--no-label-issues", help="Search label issues "
                                               "with a K-fold model (the slow part).")] = True,
    folds: Annotated[int, typer.Option("--folds", min=2, help="K of the K-fold model.")] = 4,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs of each fold's model.")] = 4,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Each fold's model (default: fast_cnn on "
                                                 "downscaled images; tfpilot's choice for texts and tables).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Processes hashing image files "
                                                   "(default: the CPUs).")] = None,
    image_distance: Annotated[Optional[int], typer.Option(
        "--image-distance", min=0, max=32, help="Largest perceptual-hash distance (of 64 bits) of near-duplicate "
        "images (default 6).")] = None,
    text_similarity: Annotated[Optional[float], typer.Option(
        "--text-similarity", min=0.05, max=1.0, help="Least word-bigram Jaccard similarity of near-duplicate "
        "texts (default 0.5).")] = None,
) -> None:
    """Inspect a dataset as `tfpilot train` would split it: counts and imbalance, unreadable files, image
    sizes and text lengths, table columns, exact and near duplicates within and across splits (train/test
    leakage) and label issues; writes DIR/inspect.json and a self-contained DIR/inspect.html."""
    from tfpilot.api import InspectOptions, inspect
    from tfpilot.config import load_config

    setup_logging()
    cfg = load_config(config, overrides=set_ or [], dataset=dataset, data_dir=data_dir)
    if target:
        from tfpilot.config.table_flags import with_columns

        cfg = with_columns(cfg, target, [])
    given = {"image_distance": image_distance, "text_similarity": text_similarity}
    options = InspectOptions(label_issues=label_issues, folds=folds, epochs=epochs, model=model, workers=workers,
                             **{k: v for k, v in given.items() if v is not None})
    found = inspect(cfg, out, options)
    d = found["duplicates"]
    say(f"{found['examples']} examples ({found['kind']}), {len(found['unreadable'])} unreadable")
    say(f"exact duplicate pairs: {d['exact']['count']} ({d['exact']['cross_split']} across splits); "
        f"near-duplicate pairs: {d['near']['count']} ({d['near']['cross_split']} across splits)")
    for split, leak in d["leaks"].items():
        say(f"  {split}: {leak['with_duplicate_in_earlier_split']} of {leak['examples']} examples "
            f"({100 * leak['fraction']:.2f}%) have a copy in an earlier split")
    li = found.get("label_issues") or {}
    if "count" in li:
        say(f"label issues: {li['count']} of {li['examples']} ({li['method']}; out-of-sample accuracy "
            f"{li['out_of_sample_accuracy']:.4f})")
        if li.get("warning"):
            say(("warning:", "yellow"), f" {li['warning']}")
    cols = found.get("columns")
    if cols:
        for what in ("constant", "id_like", "leaky"):
            if cols[what]:
                say((f"{what.replace('_', '-')} columns:", "yellow"), f" {', '.join(cols[what])}")
    say("report: ", (str(Path(out) / "inspect.html"), "bold"))
