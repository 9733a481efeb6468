"""Dates and times as a column kind: recognising them, their formats, and their numeric features.

A date column's cells are read by a format of strftime fields -- ``%Y`` (4-digit year),
``%y`` (2-digit: 69-99 -> 19xx, 00-68 -> 20xx, as Python's ``strptime``), ``%m``, ``%d``,
``%H``, ``%M``, ``%S`` -- separated by anything but digits (``%d/%m/%Y``,
``%Y-%m-%dT%H:%M:%S``). :func:`detect_format` finds it from the data: ISO ``yyyy-mm-dd``
(with a time or without), and ``d/m/yyyy`` or ``m/d/yyyy`` decided by the data (a first
field over 12 means day-first, a second one month-first; when neither shows, day-first).

A cell is read by its runs of digits, in the format's field order (the separators are not
checked; time fields a cell lacks count as 0; a cell with too few fields, or a month, day,
hour or minute out of range -- 30 February included -- is missing). Its features (:data:`DATE_FEATURES`):

* ``year``, ``month`` (1-12), ``weekday`` (Monday 0 ... Sunday 6);
* ``days`` -- days since :data:`REFERENCE_DATE`, the time of day as a fraction.

:func:`date_features` computes them with numpy (for tree models that take raw features);
:class:`~tfpilot.models.date_layers.DateFeatures` computes the same numbers inside a Keras
model from raw strings, with the same arithmetic (:func:`civil_days`).

Example:
    >>> date_features(["3/02/2016", "2016-02-03", ""], "%d/%m/%Y")[0].tolist()
    [2016.0, 2.0, 2.0, 16834.0]
    >>> import pandas as pd
    >>> detect_format(pd.Series(["3/12/2016", "25/02/2016"]))
    ('%d/%m/%Y', 'a first field is over 12: day-first')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from tfpilot.errors import UserError

#: The numeric features of a date, in the order :func:`date_features` gives them.
DATE_FEATURES = ("year", "month", "weekday", "days")
#: ``days`` counts from this date (the Unix epoch).
REFERENCE_DATE = "1970-01-01"
#: The fields a format may hold, and each one's valid range (None: any).
FIELDS = {"%Y": None, "%y": (0, 99), "%m": (1, 12), "%d": (1, 31), "%H": (0, 23), "%M": (0, 59), "%S": (0, 60)}
#: A column is read as dates when at least this fraction of its cells look like dates.
MIN_DATE_FRACTION = 0.95

_DATE = re.compile(r"(?P<a>\d{1,4})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)(?P<c>\d{4}|\d{1,2})"
                   r"(?:(?P<t>[ T])\d{1,2}:\d{2}(?P<s>:\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")


def parse_format(fmt: str) -> tuple[str, ...]:
    """The fields of a date format, in order; a UserError for one tfpilot cannot read.

    Example:
        >>> parse_format("%d/%m/%Y %H:%M")
        ('%d', '%m', '%Y', '%H', '%M')
    """
    fields = tuple(re.findall(r"%.", fmt))
    unknown = [f for f in fields if f not in FIELDS]
    need = {"%m", "%d"}
    years = [f for f in fields if f in ("%Y", "%y")]
    problem = ""
    if unknown:
        problem = f"unknown field(s) {', '.join(unknown)}"
    elif len(set(fields)) != len(fields):
        problem = "a field appears twice"
    elif not need <= set(fields) or len(years) != 1:
        problem = "it needs a year (%Y or %y), a month (%m) and a day (%d)"
    elif re.search(r"%.%", fmt) or re.search(r"(^|[^%])\d", fmt):
        problem = "fields must be separated by something other than digits"
    if problem:
        raise UserError(f"date format {fmt!r}: {problem}. Fields: {' '.join(FIELDS)}; e.g. %Y-%m-%d or "
                        "%d/%m/%Y %H:%M:%S")
    return fields


def field_positions(fmt: str) -> tuple[dict[str, int], int]:
    """Each field's position among a cell's runs of digits, and how many a cell needs (its
    year, month and day; time fields it lacks are 0)."""
    fields = parse_format(fmt)
    where = {f: i for i, f in enumerate(fields)}
    return where, 1 + max(where[f] for f in fields if f in ("%Y", "%y", "%m", "%d"))


def civil_days(year: Any, month: Any, day: Any) -> Any:
    """Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's ``days_from_civil``),
    in arithmetic alone, so numpy arrays and TensorFlow tensors (float64) give the same numbers.

    Example:
        >>> civil_days(np.array([1970.0, 2000.0]), np.array([1.0, 3.0]), np.array([1.0, 1.0])).tolist()
        [0.0, 11017.0]
    """
    early = (12 - month) // 10  # 1 for January and February, else 0
    y = year - early
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) - 12 * (1 - early)  # March = 0 ... February = 11
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def reference_days(reference: str = REFERENCE_DATE) -> float:
    """The :func:`civil_days` of an ISO date (``yyyy-mm-dd``)."""
    y, m, d = (float(v) for v in reference.split("-"))
    return float(civil_days(np.float64(y), np.float64(m), np.float64(d)))


def features_from_fields(values: dict[str, Any], ok: Any, where: dict[str, int], reference: float, xp: Any) -> Any:
    """The (N, 4) features from the fields read (float64, one per field code), shared by numpy
    and TensorFlow (``xp`` gives ``where``, ``stack``, ``logical_and`` and ``nan``).

    Args:
        values: field code -> (N,) float64 values (0 where a cell lacks the field).
        ok: (N,) bool, cells with enough fields.
        where: the format's fields (:func:`parse_format`) -> position.
        reference: :func:`reference_days` of the reference date.
        xp: numpy, or an adapter of TensorFlow with the same names.
    """
    for f in where:
        lo_hi = FIELDS[f]
        if lo_hi is not None:
            ok = xp.logical_and(ok, xp.logical_and(values[f] >= lo_hi[0], values[f] <= lo_hi[1]))
    year = values["%Y"] if "%Y" in where else values["%y"] + 1900 + 100 * xp.cast_float(values["%y"] < 69)
    month, day = values["%m"], values["%d"]
    days = civil_days(year, month, day)
    month_days = civil_days(year + month // 12, month % 12 + 1, 1) - civil_days(year, month, 1)
    ok = xp.logical_and(ok, day <= month_days)  # no 30 February
    seconds = sum(values[f] * s for f, s in (("%H", 3600.0), ("%M", 60.0), ("%S", 1.0)) if f in where)
    out = [year, month, (days + 3) % 7, days - reference + seconds / 86400.0]  # 1970-01-01 was a Thursday
    return xp.where(ok[:, None], xp.stack(out, axis=1), xp.nan)


class _Numpy:
    """numpy under the names :func:`features_from_fields` uses."""

    where, stack, logical_and, nan = staticmethod(np.where), staticmethod(np.stack), np.logical_and, np.nan

    @staticmethod
    def cast_float(x: Any) -> Any:
        return np.asarray(x, dtype=np.float64)


def date_features(values: Sequence[Any], fmt: str, reference: str = REFERENCE_DATE) -> np.ndarray:
    """The :data:`DATE_FEATURES` of date strings: (N, 4) float32, NaN rows for missing or
    unreadable cells -- the numbers the model's date layer computes before normalising.

    Args:
        values: the cells (strings; None, NaN or "" for missing).
        fmt: their format (:func:`parse_format`), e.g. the ``format`` of the column's spec.
        reference: the date ``days`` counts from.

    Example:
        >>> date_features(["2024-02-29T12:00:00"], "%Y-%m-%dT%H:%M:%S").tolist()
        [[2024.0, 2.0, 3.0, 19782.5]]
    """
    where, need = field_positions(fmt)
    n_fields = len(where)
    rows = np.zeros((len(values), n_fields), np.float64)
    ok = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        runs = re.findall(r"[0-9]+", v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
        ok[i] = len(runs) >= need
        for j, r in enumerate(runs[:n_fields]):
            rows[i, j] = float(r)
    fields = {f: rows[:, j] for f, j in where.items()}
    return features_from_fields(fields, ok, where, reference_days(reference), _Numpy).astype(np.float32)


# -- recognising dates -------------------------------------------------------------------------
def detect_format(strings: Any) -> tuple[str, str] | None:
    """``(format, why)`` when most cells are dates, else None.

    Args:
        strings: the column's non-missing cells as stripped strings (a pandas Series).

    Example:
        >>> import pandas as pd
        >>> detect_format(pd.Series(["2016-03-04 10:30", "2016-12-31 23:59"]))
        ('%Y-%m-%d %H:%M', 'year first (ISO)')
        >>> detect_format(pd.Series(["red", "blue"])) is None
        True
    """
    if strings.empty:
        return None
    import pandas as pd

    counts = strings.value_counts(sort=False)  # each distinct cell once, weighed by its count
    parts = pd.Series(counts.index, dtype=object).str.extract(f"^{_DATE.pattern}$")
    weight = counts.to_numpy()
    matched = parts["a"].notna().to_numpy()
    if weight[matched].sum() < MIN_DATE_FRACTION * weight.sum():
        return None
    parts, weight = parts[matched], weight[matched]
    sep = _mode(parts["sep"], weight)
    a, b, c = (parts[k].astype(int) for k in "abc")
    lens = parts["a"].str.len(), parts["c"].str.len()
    if (lens[0] == 4).all():
        if b.max() > 12 or c.max() > 31:
            return None
        order, why = ["%Y", "%m", "%d"], "year first (ISO)" if sep == "-" else "year first"
    elif (lens[1] == 4).all() or (sep == "/" and (lens[1] == 2).all() and (lens[0] <= 2).all()):
        year = "%Y" if (lens[1] == 4).all() else "%y"
        if a.max() > 12 and b.max() <= 12:
            order, why = ["%d", "%m", year], "a first field is over 12: day-first"
        elif b.max() > 12 and a.max() <= 12:
            order, why = ["%m", "%d", year], "a second field is over 12: month-first"
        elif a.max() <= 12 and b.max() <= 12:
            why = "no field over 12 tells the order: read day-first (set the format to change)"
            order = ["%d", "%m", year]
        else:
            return None
    else:
        return None
    fmt = sep.join(order)
    timed = parts["t"].notna().to_numpy()
    if timed.any():
        fmt += _mode(parts["t"][timed], weight[timed]) + "%H:%M" + (":%S" if parts["s"].notna().any() else "")
    return fmt, why


def _mode(values: Any, weight: np.ndarray) -> str:
    """The most frequent of ``values`` (distinct cells' parts), each counted ``weight`` times; the
    smallest on a tie, as pandas' ``mode``."""
    import pandas as pd

    totals = pd.Series(weight, index=values.to_numpy()).groupby(level=0).sum()  # sorted by value
    return str(totals.index[totals.to_numpy() == totals.max()][0])
