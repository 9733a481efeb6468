"""The leaderboard of a table run (``RUN/leaderboard.csv``) as a rich table, printed by ``tfpilot train``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

#: The file the leaderboard's trainer writes (``tfpilot.training.leaderboard.LEADERBOARD``).
LEADERBOARD = "leaderboard.csv"


def leaderboard_table(path: Path) -> Any:
    """``leaderboard.csv`` as a rich table (figures right-aligned, thousands separated), or None
    when there is no such file.

    Args:
        path: the CSV file.

    Example:
        >>> leaderboard_table(Path("no-such-run/leaderboard.csv")) is None
        True
    """
    from rich.table import Table

    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    table = Table(title="leaderboard (same split; weights chosen on validation)", show_header=True)
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*[cell if i == 0 else _figure(header[i], cell) for i, cell in enumerate(row)],
                      style="bold" if row[0] == "ensemble" else None)
    return table


def _figure(column: str, text: str) -> str:
    """A cell as a number: large ones with thousands separators, small ones with 4 digits (a
    perfect fit's loss, -0.0 from ``-sum(y log p)`` at p = 1, prints as 0).

    Example:
        >>> _figure("test_rmse", "258789.4"), _figure("val_loss", "-0.0"), _figure("weight", "0.5")
        ('258,789', '0', '0.50')
    """
    try:
        value = float(text) + 0.0  # -0.0 + 0.0 is 0.0
    except ValueError:
        return text
    if column == "weight":
        return f"{value:.2f}"
    if column == "fit_s":
        return f"{value:,.1f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
