"""Table columns: what type each holds (inferred when not declared) and its cells as model values.

Inference, for a column not declared in ``features``:

* numeric cells -> ``number``; as a target, integer values with at most
  :data:`MAX_TARGET_CLASSES` distinct values -> ``category`` (``binary`` for two);
* strings naming existing image files (relative to the table) -> ``image``;
* dates and times (ISO ``yyyy-mm-dd``, day- or month-first ``d/m/yyyy``, with a time or
  without; :func:`~tfpilot.data.dates.detect_format`) -> ``date``, with the format read;
* strings that are long (on average :data:`TEXT_MIN_LENGTH` characters or more) or
  mostly distinct -> ``text``; other strings -> ``category`` (``binary`` as a target with two values);
* an input whose every value is distinct and short (an ``id``) is left out, and says so.

Example:
    >>> import pandas as pd
    >>> infer_type(pd.Series([1.5, 2.0, None]), role="input").kind
    'number'
    >>> infer_type(pd.Series(["a", "b", "a", "b"]), role="output").kind
    'binary'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.data.images import is_image_file
from tfpilot.errors import UserError

#: Integer targets with at most this many values are classes; more are numbers.
MAX_TARGET_CLASSES = 10
#: Strings averaging this many characters or more are free text, not categories.
TEXT_MIN_LENGTH = 30
#: Strings with more distinct values than this fraction of the rows are free text.
TEXT_DISTINCT_FRACTION = 0.5
#: Cells read as missing (besides empty cells and pandas' own NA strings).
MISSING = ("?",)


@dataclass(frozen=True)
class Inferred:
    """The inferred type of one column and why (printed, and saved in the run's schema)."""

    kind: str  # image, text, number, category, binary, date, or "skip"
    reason: str
    format: str | None = None  # a date's format (tfpilot.data.dates)


def present_strings(series: Any) -> Any:
    """Non-missing cells as stripped strings."""
    s = series.dropna().astype(str).str.strip()
    return s[s != ""]


def is_numeric(series: Any) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _integral(values: np.ndarray) -> bool:
    return bool(values.size) and bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))


def resolve_path(cell: str, base: Path) -> Path:
    p = Path(cell)
    return p if p.is_absolute() else base / p


def looks_like_images(series: Any, base: Path, sample: int = 20) -> bool:
    """Most cells end in an image suffix and the first few name existing files."""
    s = present_strings(series)
    if s.empty:
        return False
    counts = s.value_counts(sort=False)  # each distinct cell once, weighed by its count
    named = np.fromiter((is_image_file(v) for v in counts.index), bool, len(counts))
    if counts.to_numpy()[named].sum() < 0.9 * len(s):
        return False
    head = s.iloc[:sample]
    return bool(head.map(lambda v: resolve_path(v, base).is_file()).mean() >= 0.5)


def infer_type(series: Any, role: str, base: Path | None = None) -> Inferred:
    """The type of a column: see the module docstring.

    Args:
        series: the column (a pandas Series).
        role: "input" or "output".
        base: the folder relative image paths start from.
    """
    n = len(series)
    values = series.dropna()
    if values.empty:
        raise UserError(f"column {series.name!r} holds no values (every cell is empty)")
    distinct = int(values.nunique())
    if is_numeric(series):
        v = values.to_numpy(dtype=np.float64)
        if role == "output":
            if _integral(v) and distinct <= MAX_TARGET_CLASSES:
                kind = "binary" if distinct == 2 else "category"
                return Inferred(kind, f"{distinct} integer values")
            return Inferred("number", f"numeric, {distinct} distinct values")
        if distinct == n and _integral(v) and n > MAX_TARGET_CLASSES:
            return Inferred("skip", "an identifier (every value distinct); declare it in features.inputs to use it")
        return Inferred("number", "numeric")
    import pandas as pd

    from tfpilot.data.dates import detect_format

    if role == "input" and pd.api.types.is_datetime64_any_dtype(series):
        return Inferred("date", "date-times, read as %Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S")
    s = present_strings(series)
    if base is not None and role == "input" and looks_like_images(series, base):
        return Inferred("image", "paths of image files")
    found = detect_format(s) if role == "input" else None
    if found is not None:
        return Inferred("date", f"dates, read as {found[0]} ({found[1]})", found[0])
    mean_len = float(s.str.len().mean())
    if role == "output":
        if distinct == 2:
            return Inferred("binary", "2 distinct values")
        return Inferred("category", f"{distinct} distinct values")
    words = float(s.str.count(" ").mean()) + 1.0
    if distinct == n and n > MAX_TARGET_CLASSES and words < 1.5 and mean_len < TEXT_MIN_LENGTH:
        return Inferred("skip", "an identifier (every value distinct); declare it in features.inputs to use it")
    if mean_len >= TEXT_MIN_LENGTH or distinct > TEXT_DISTINCT_FRACTION * n:
        return Inferred("text", f"free text ({mean_len:.0f} characters on average, {distinct} distinct)")
    return Inferred("category", f"{distinct} distinct values")


# -- cells -> model values --------------------------------------------------------------------
def category_strings(series: Any) -> np.ndarray:
    """Cells as category strings: integral floats lose their ``.0`` (``1.0`` -> ``"1"``),
    missing cells become "" (the out-of-vocabulary bucket)."""
    def one(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        return str(v).strip()
    if series.dtype == object:  # mixed cells: each its own (1, 1.0 and True would hash alike)
        return np.array([one(v) for v in series.tolist()], dtype=object)
    import pandas as pd

    codes, distinct = pd.factorize(series)  # strings or numbers: each distinct cell once; missing -> -1
    strings = np.array([one(v) for v in distinct.tolist()] + [""], dtype=object)
    return strings[codes]


def sorted_classes(values: Sequence[str]) -> list[str]:
    """Distinct non-empty values, sorted numerically when all are numbers, else as strings."""
    distinct = sorted({v for v in values if v != ""})
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def number_values(series: Any, column: str, row_ids: np.ndarray) -> np.ndarray:
    """float32 cells (NaN for missing); a ValueError naming the rows of non-numeric cells.

    Args:
        series: the column.
        column: its name (for the message).
        row_ids: 0-based row numbers of the cells in the table.
    """
    import pandas as pd

    if is_numeric(series):
        return series.to_numpy(dtype=np.float32, na_value=np.nan)
    raw = series.astype(object)
    blank = raw.map(lambda v: v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() in ("", *MISSING))
    parsed = pd.to_numeric(raw.where(~blank, None), errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & ~blank.to_numpy())
    if bad.size:
        shown = ", ".join(f"row {int(row_ids[i]) + 1} ({str(raw.iloc[i])[:30]!r})" for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        raise UserError(
            f"column {column!r} is a number column but holds non-numeric cells: {shown}{more}. Fix those cells, "
            f"leave them empty (missing values are imputed), or declare the column's type in features.inputs "
            f"(category or text)")
    return parsed.to_numpy(dtype=np.float32, na_value=np.nan)


def text_values(series: Any) -> np.ndarray:
    """Cells as strings ("" for missing)."""
    return np.array(["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                     for v in series.tolist()], dtype=object)


def out_of_vocabulary(values: np.ndarray, vocabulary: Sequence[str]) -> int:
    """How many non-missing ``values`` are not in ``vocabulary`` (they share the unknown bucket)."""
    known = set(vocabulary)
    return int(sum(1 for v in values if v != "" and v not in known))
