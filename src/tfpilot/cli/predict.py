"""``tfpilot predict``: top-k class names with probabilities for files or folders."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated

import typer

from tfpilot.cli.common import console, setup_logging, user_errors


def expand_inputs(items: list[Path]) -> list[Path]:
    """Files as given; folders expanded to the image files inside them (sorted)."""
    from tfpilot.data.images import is_image_file

    out: list[Path] = []
    for item in items:
        if item.is_dir():
            out += sorted(p for p in item.rglob("*") if p.is_file() and is_image_file(p))
        elif item.exists():
            out.append(item)
        else:
            raise FileNotFoundError(f"{item} does not exist")
    if not out:
        raise ValueError("no input files found")
    return out


@user_errors
def predict_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files or folders of images.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1)] = 3,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
) -> None:
    """Predict the class of each input."""
    from tfpilot.inference import load

    setup_logging()
    if fmt not in ("table", "json", "csv"):
        raise ValueError(f"--format must be table, json or csv, not {fmt!r}")
    files = expand_inputs(inputs)
    predictor = load(run)
    results = predictor.predict([str(f) for f in files], top_k=top_k)
    rows = [{"input": str(f), **r} for f, r in zip(files, results)]
    if fmt == "json":
        console.print_json(json.dumps(rows))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["input", "label", "score", *[f"top{i + 1}" for i in range(top_k)]])
        for r in rows:
            w.writerow([r["input"], r["label"], f"{r['score']:.6f}",
                        *[f"{t['label']}:{t['score']:.6f}" for t in r["top_k"]]])
        typer.echo(buf.getvalue().rstrip("\n"))
    else:
        from rich.table import Table

        table = Table(show_header=True)
        table.add_column("input")
        table.add_column("prediction")
        table.add_column(f"top {top_k}")
        for r in rows:
            table.add_row(r["input"], f"{r['label']} ({r['score']:.3f})",
                          ", ".join(f"{t['label']} {t['score']:.3f}" for t in r["top_k"]))
        console.print(table)
