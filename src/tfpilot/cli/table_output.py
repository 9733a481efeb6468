"""What the CLI prints for table models: per-head metrics and verification."""

from __future__ import annotations

import json
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


def print_table_verify(report: Any, as_json: bool) -> None:
    """A table run's verification: one row per artifact and head."""
    from rich.table import Table

    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=f"{report.run}: {report.num_examples} {report.split} rows", show_header=True)
    for col in ("format", "head", "agreement / max diff", "size", "result"):
        table.add_column(col)
    for c in report.checks:
        for name, h in c.heads.items():
            figure = (f"{h['agreement']:.2%} (max prob diff {h['max_prob_diff']:.4f})" if h["kind"] != "number"
                      else f"max |diff| {h['max_abs_diff']:.4g} ({h['max_diff_in_std']:.4f} std)")
            table.add_row(c.format, name, figure, f"{c.size_bytes / 1024:,.0f} KB",
                          "[green]ok[/]" if c.passed else "[bold red]FAIL[/]")
    print_table(table)
    for c in report.checks:
        if not c.passed:
            say(("error:", "bold red"), f" {c.message}", err=True)
