"""What the CLI prints for table models: per-head metrics, verification, and predictions."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from tfpilot.cli.common import console, print_table, say


def fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def heads_table(title: str, result: dict[str, Any]) -> Any:
    """One row per head: its kind and its headline figures (with the baseline's)."""
    from rich.table import Table

    from tfpilot.metrics.heads import headline

    table = Table(title=f"{title} ({result.get('num_examples', 0)} rows)", show_header=True)
    for col in ("head", "kind", "metrics"):
        table.add_column(col)
    for name, head in result["heads"].items():
        figures = "  ".join(f"{k} {fmt(v)}" for k, v in headline(head).items())
        table.add_row(name, head.get("kind", ""), figures)
    return table


def print_heads(title: str, result: dict[str, Any]) -> None:
    print_table(heads_table(title, result))
    oov = result.get("out_of_vocabulary") or {}
    if oov:
        say("values unseen in training (out-of-vocabulary): " + ", ".join(f"{k} {v}" for k, v in oov.items()))


def predict_rows(run: Path, inputs: list[Path], fmt_: str, top_k: int, out: Path | None) -> None:
    """``tfpilot predict RUN rows.csv``: every head's prediction per row (table, json or csv)."""
    from tfpilot.data.table_io import read_table
    from tfpilot.inference import load

    if not inputs:
        raise ValueError("give a table of rows to predict: tfpilot predict RUN rows.csv (CSV, TSV, JSONL or Parquet)")
    predictor = load(run)
    rows: list[dict[str, Any]] = []
    for path in inputs:
        frame, base = read_table(path)
        preds = predictor.predict(frame, top_k=top_k, base_dir=base)
        for i, p in enumerate(preds):
            rows.append({"input": f"{path}:{i + 1}", **p})
        if predictor.oov_:
            say(f"{path}: values unseen in training (out-of-vocabulary): "
                + ", ".join(f"{k} {v}" for k, v in predictor.oov_.items()), err=True)
    flat = [_flat(r) for r in rows]
    if fmt_ == "json":
        text = json.dumps(rows)
    elif fmt_ == "csv" or out is not None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
        text = buf.getvalue().rstrip("\n")
    else:
        from rich.table import Table

        table = Table(show_header=True)
        for col in flat[0]:
            table.add_column(col)
        for r in flat:
            table.add_row(*[fmt(v) for v in r.values()])
        print_table(table)
        return
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
        say(f"wrote {len(rows)} rows to {out}")
    elif fmt_ == "json":
        console.print_json(text)
    else:
        import typer

        typer.echo(text)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out[k] = v["label"]
            out[f"{k}_score"] = round(v["score"], 6)
        else:
            out[k] = v
    return out
