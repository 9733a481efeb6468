"""Reading tables: CSV, TSV, JSONL/JSON and Parquet files, a folder or archive holding one,
or a registered built-in table dataset (``auto_mpg``, ...).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("a,b\\n1,x\\n?,y\\n")
    >>> frame, base = read_table(p)
    >>> frame["a"].isna().tolist(), base == p.parent
    ([False, True], True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfpilot.data.columns import MISSING
from tfpilot.data.paths import extract_archive, is_archive
from tfpilot.errors import NotFoundError, UserError
from tfpilot.registry import Registry

#: File suffixes of the table formats.
TABLE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                  ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class LoadedTable:
    """A table with the folder its relative image paths start from."""

    frame: Any  # pandas.DataFrame
    base: Path
    source: str


#: Built-in table datasets: ``(DataConfig) -> LoadedTable``, registered in ``data/table_builtin.py``.
TABLE_DATASETS: Registry[Callable[[Any], LoadedTable]] = Registry(
    "table dataset", autoload=("tfpilot.data.table_builtin",))


def is_table_run(run_dir: str | Path) -> bool:
    """Whether a run directory holds a table model (its ``labels.json`` says ``"task": "table"``)."""
    import json

    p = Path(run_dir) / "labels.json"
    return p.is_file() and json.loads(p.read_text(encoding="utf-8")).get("task") == "table"


def is_table_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def find_table_file(path: Path) -> Path:
    """The table file at ``path``: the file itself, or the one table file in a folder or
    archive (at its top or one folder down)."""
    if path.is_file() and not is_archive(path):
        return path
    root = extract_archive(path) if is_archive(path) else path
    if not root.is_dir():
        raise NotFoundError(f"{path} does not exist")
    found = sorted(p for pattern in ("*", "*/*") for p in root.glob(pattern) if p.is_file() and is_table_file(p))
    if len(found) != 1:
        what = "no table file" if not found else f"{len(found)} table files ({', '.join(p.name for p in found[:5])})"
        raise UserError(f"{path}: expected one table file (.csv, .tsv, .jsonl, .json, .parquet) inside, found {what}; "
                        "give the table file itself as --dataset")
    return found[0]


def _sniff(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4096).lstrip()
    if head[:1] == b"{":
        return "jsonl"
    if head[:1] == b"[":
        return "json"
    return "delimited"


def read_table(path: str | Path, fmt: str = "auto", header: bool | None = None) -> tuple[Any, Path]:
    """``(DataFrame, base folder)`` of a table file (or of the one table in a folder/archive).

    Args:
        path: the file, folder or archive.
        fmt: "auto" (from the suffix, else sniffed), "csv", "tsv", "jsonl", "json" or "parquet".
        header: CSV/TSV: whether the first row names the columns (default: yes); without
            one the columns are named "0", "1", ...
    """
    file = find_table_file(Path(path).expanduser())
    kind = TABLE_SUFFIXES.get(file.suffix.lower(), "auto") if fmt == "auto" else fmt
    if kind == "auto":
        kind = _sniff(file)
    if kind not in ("csv", "tsv", "delimited", "jsonl", "json", "parquet"):
        raise UserError(f"unknown table format {kind!r}: csv, tsv, jsonl, json or parquet")
    try:
        frame = _read_frame(file, kind, 0 if header in (None, True) else None)
    except ValueError as exc:  # pandas' (and pyarrow's) parse errors: the file's content, not a bug
        raise UserError(f"{file}: not a readable {kind} table ({type(exc).__name__}: {' '.join(str(exc).split())}); "
                        "fix the file, or name its format with data.text_format") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise UserError(f"{file}: the table has no rows")
    return frame.reset_index(drop=True), file.parent


def _read_frame(file: Path, kind: str, header: int | None) -> Any:
    """``file`` read by pandas as a table of format ``kind`` (a name :func:`read_table` accepts)."""
    import pandas as pd

    na = list(MISSING)
    if kind == "csv":
        return pd.read_csv(file, na_values=na, header=header, skipinitialspace=True)
    if kind == "tsv":
        return pd.read_csv(file, sep="\t", na_values=na, header=header)
    if kind == "delimited":
        return pd.read_csv(file, sep=None, engine="python", na_values=na, header=header)
    if kind == "jsonl":
        return pd.read_json(file, lines=True)
    if kind == "json":
        return pd.read_json(file)
    return pd.read_parquet(file)


def load_table(dataset: str, data_cfg: Any) -> LoadedTable:
    """A registered built-in table dataset by name, or a table at a path."""
    if dataset in TABLE_DATASETS:
        return TABLE_DATASETS.get(dataset)(data_cfg)
    path = Path(dataset).expanduser()
    if not path.exists():
        TABLE_DATASETS.entry(dataset)  # raises: unknown name, with suggestions
    fmt = data_cfg.text_format if data_cfg.text_format != "auto" else "auto"
    frame, base = read_table(path, fmt, data_cfg.header)
    return LoadedTable(frame, base, str(path))
