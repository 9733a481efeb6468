"""What the CLI prints of a model's heads: one row per head with its headline figures."""

from __future__ import annotations

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
