"""``tfpilot predict``: top-k class names with probabilities for files or folders."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tfpilot.cli.common import console, print_table, say, setup_logging, user_errors
from tfpilot.errors import NotFoundError, UserError


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
            raise NotFoundError(f"{item} does not exist")
    if not out:
        raise UserError("no input files found")
    return out


def text_inputs(texts: list[str], files: list[Path], column: str | None) -> tuple[list[str], list[str]]:
    """For a text model: the ``--text`` strings, then each file's texts (a table's text
    column, else one text per line); returns ``(texts, input names)``."""
    from tfpilot.data.text import read_text_inputs

    out, names = list(texts), [t if len(t) <= 60 else t[:57] + "..." for t in texts]
    for f in files:
        if f.is_dir():
            raise UserError(f"{f} is a folder: a text model takes --text \"...\" or a .txt/.csv file")
        got, where = read_text_inputs(f, column=int(column) if column and column.isdigit() else column)
        out += got
        names += where
    if not out:
        raise UserError('nothing to predict: give --text "..." (repeatable) or a .txt/.csv file')
    return out, names


@user_errors
def predict_command(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    inputs: Annotated[Optional[list[Path]], typer.Argument(
        help="Image files or folders (image models); .txt files (one text per line) or .csv/.tsv/.jsonl "
             "files (a text column) for text models.")] = None,
    text: Annotated[Optional[list[str]], typer.Option(
        "--text", "-t", help="A text to classify (text models; repeatable).")] = None,
    column: Annotated[Optional[str], typer.Option(
        "--column", "-c", help="The text column of CSV/TSV/JSONL inputs (default: guessed).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1)] = 3,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")] = "table",
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Table models: write the predictions to this file (CSV, or JSON with --format json).")] = None,
) -> None:
    """Predict the class of each input (table models: every head's prediction for each row of a table)."""
    from tfpilot.inference import load

    setup_logging()
    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format must be table, json or csv, not {fmt!r}")
    predictor = load(run)
    if not predictor.is_classifier:  # rows in (CSV/TSV/JSONL/Parquet), one column per head out
        predict_rows(predictor, inputs or [], fmt, top_k, out)
        return
    if predictor.input_spec.kind == "text":
        texts, names = text_inputs(text or [], inputs or [], column)
        results = predictor.predict(texts, top_k=top_k)
        rows = [{"input": n, "text": t, **r} for n, t, r in zip(names, texts, results)]
    else:
        if text:
            raise UserError("--text is for text models; this run's model takes images: give image files or folders")
        files = expand_inputs(inputs or [])
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
        table.add_column("input", no_wrap=True)  # a path or text name, and "label (score)", stay whole
        table.add_column("prediction", no_wrap=True)
        table.add_column(f"top {top_k}")
        for r in rows:
            table.add_row(r["input"], f"{r['label']} ({r['score']:.3f})",
                          ", ".join(f"{t['label']} {t['score']:.3f}" for t in r["top_k"]))
        print_table(table)


def predict_rows(predictor: Any, inputs: list[Path], fmt: str, top_k: int, out: Path | None) -> None:
    """``tfpilot predict RUN rows.csv``: every head's prediction per row (table, json or csv)."""
    from tfpilot.data.table_io import read_table
    from tfpilot.inference.predictor import flat_prediction

    if not inputs:
        raise UserError("give a table of rows to predict: tfpilot predict RUN rows.csv (CSV, TSV, JSONL or Parquet)")
    rows: list[dict[str, Any]] = []
    for path in inputs:
        frame, base = read_table(path)
        rows += [{"input": f"{path}:{i + 1}", **p}
                 for i, p in enumerate(predictor.predict(frame, top_k=top_k, base_dir=base))]
        if predictor.oov_:
            say(f"{path}: values unseen in training (out-of-vocabulary): "
                + ", ".join(f"{k} {v}" for k, v in predictor.oov_.items()), err=True)
    flat = [flat_prediction(r) for r in rows]
    if fmt == "table" and out is None:
        from rich.table import Table

        from tfpilot.cli.heads import fmt as cell

        table = Table(show_header=True)
        for col in flat[0]:
            table.add_column(col)
        for r in flat:
            table.add_row(*[cell(v) for v in r.values()])
        print_table(table)
        return
    if fmt == "json":
        text = json.dumps(rows)
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
        text = buf.getvalue().rstrip("\n")
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
        say(f"wrote {len(rows)} rows to {out}")
    elif fmt == "json":
        console.print_json(text)
    else:
        typer.echo(text)
