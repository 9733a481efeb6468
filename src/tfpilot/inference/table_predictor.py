"""The :class:`TablePredictor`: rows in (dicts, a pandas DataFrame, a table file), every head's prediction out.

A row holds one value per input column: an image (a file path -- relative to ``base_dir``
--, encoded bytes, a PIL image or a uint8 array, resized like in training), a text, a
number (None / NaN / "" = missing: the model imputes it) or a category (a value unseen in
training goes to the out-of-vocabulary bucket and is counted in ``oov_``). Columns the
model does not take (the targets, ids) are ignored.

Example:
    >>> import tfpilot
    >>> p = tfpilot.load("runs/multitask-fashion")  # doctest: +SKIP
    >>> p.predict([{"image": "shirt.jpg", "title": "Blue Men Shirt"}])[0]["articleType"]["label"]  # doctest: +SKIP
    'Shirts'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.data.table_io import is_table_run
from tfpilot.inference.predictor import InputError, Predictor
from tfpilot.registry import did_you_mean
from tfpilot.spec import FeatureSpec, InputSpec, TableSpec

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def keras_runner(model: Any) -> Runner:
    """A Keras table model as ``dict of numpy columns -> dict of numpy outputs``."""
    from tfpilot.export.runtime import keras_table_runner

    return keras_table_runner(model)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v.strip() == "")


def rows_from(rows: Any) -> list[Mapping[str, Any]]:
    """Rows as a list of mappings: from a DataFrame, a dict of columns, one dict, or a list of dicts."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a pandas DataFrame
        return rows.to_dict(orient="records")
    if isinstance(rows, Mapping):
        values = list(rows.values())
        if values and all(isinstance(v, (list, tuple, np.ndarray)) for v in values):
            n = {len(v) for v in values}
            if len(n) != 1:
                raise InputError(f"the columns have different lengths ({sorted(n)}): give one value per row in each")
            return [{k: rows[k][i] for k in rows} for i in range(n.pop())]
        return [rows]
    if isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
        if not all(isinstance(r, Mapping) for r in rows):
            raise InputError("a table model takes rows: dicts of column -> value, or a pandas DataFrame")
        return list(rows)
    raise InputError(f"a table model takes rows (dicts or a DataFrame), not {type(rows).__name__}")


class TablePredictor:
    """Predictions of a table model (Keras, or an exported artifact's runner).

    Args:
        runner: ``dict of numpy columns -> dict of numpy outputs`` (see :func:`keras_runner`).
        spec: the model's :class:`~tfpilot.spec.TableSpec`.
        batch_size: rows per call.
        base_dir: the folder relative image paths start from (default: the working directory).
        model: the Keras model, when there is one.

    Attributes:
        oov_: after :meth:`prepare`: category column -> how many values were unseen in training.
    """

    def __init__(self, runner: Runner, spec: TableSpec, batch_size: int = 256, base_dir: str | Path | None = None,
                 model: Any = None) -> None:
        self.runner = runner
        self.spec = spec
        self.batch_size = batch_size
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.model = model
        self.oov_: dict[str, int] = {}

    @property
    def input_spec(self) -> TableSpec:
        return self.spec

    @property
    def class_names(self) -> dict[str, list[str]]:
        """Output name -> its classes (category and binary heads)."""
        return {o.name: list(o.classes) for o in self.spec.outputs if o.classes}

    @classmethod
    def from_artifact(cls, found: Any, **kwargs: Any) -> TablePredictor:
        """An exported artifact (``tfpilot.export.backends.resolve``'s result) of a table model."""
        from tfpilot.export.runtime import table_runner

        return cls(table_runner(found.backend, found.path, found.bundle), found.bundle.input_spec, **kwargs)

    @classmethod
    def from_run(cls, run_dir: str | Path, **kwargs: Any) -> TablePredictor:
        from tfpilot.runs import Run

        run = Run(run_dir)
        model = run.load_model()
        return cls(keras_runner(model), TableSpec.from_dict(run.labels["input"]), model=model, **kwargs)

    # -- rows -> model batch -------------------------------------------------------------------
    def prepare(self, rows: Any, base_dir: str | Path | None = None) -> dict[str, np.ndarray]:
        """The model batch of ``rows``: column key -> uint8 images / strings / float32 (NaN = missing)."""
        rows = rows_from(rows)
        if not rows:
            raise InputError("no rows given")
        base = Path(base_dir) if base_dir is not None else self.base_dir
        names = [c.name for c in self.spec.inputs]
        for i, row in enumerate(rows):
            absent = [n for n in names if n not in row and column_key_in(row, n) is None]
            if absent:
                extra = sorted(set(map(str, row)) - set(names))
                hint = "".join(did_you_mean(a, extra) for a in absent[:1])
                raise InputError(f"row {i + 1} has no column {absent[0]!r}.{hint} The model takes: {', '.join(names)}")
        out: dict[str, np.ndarray] = {}
        self.oov_ = {}
        for c in self.spec.inputs:
            cells = [row[column_key_in(row, c.name) or c.name] for row in rows]
            out[c.key] = self._column(c, cells, base)
        return out

    def _column(self, c: FeatureSpec, cells: list[Any], base: Path | None) -> np.ndarray:
        if c.kind == "image":
            images = Predictor(None, [], InputSpec.image(*c.shape))
            arrays = []
            for i, v in enumerate(cells):
                if _missing(v):
                    raise InputError(f"row {i + 1}: no image in column {c.name!r}")
                if isinstance(v, (str, Path)) and base is not None and not Path(v).is_absolute():
                    v = base / v
                arrays.append(images._image(v, f"row {i + 1}, column {c.name!r}"))
            return np.stack(arrays)
        if c.kind == "number":
            vals = np.empty(len(cells), np.float32)
            for i, v in enumerate(cells):
                if _missing(v):
                    vals[i] = np.nan
                    continue
                try:
                    vals[i] = float(v)
                except (TypeError, ValueError):
                    raise InputError(f"row {i + 1}: column {c.name!r} takes numbers; got {str(v)[:30]!r}") from None
            return vals
        if c.kind == "text":
            return np.array(["" if _missing(v) else str(v) for v in cells], dtype=object)
        vals = np.array([_category(v) for v in cells], dtype=object)
        known = set(c.classes)
        n = int(sum(1 for v in vals if v and v not in known))
        if n:
            self.oov_[c.name] = n
        return vals

    # -- prediction ------------------------------------------------------------------------------
    def predict_raw(self, rows: Any, base_dir: str | Path | None = None) -> dict[str, np.ndarray]:
        """Every head's raw outputs by output key: (N, C) probabilities, (N,) sigmoid or values."""
        batch = self.prepare(rows, base_dir)
        n = len(next(iter(batch.values())))
        parts: dict[str, list[np.ndarray]] = {}
        for i in range(0, n, self.batch_size):
            out = self.runner({k: v[i : i + self.batch_size] for k, v in batch.items()})
            for k, v in out.items():
                parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def predict(self, rows: Any, top_k: int = 3, base_dir: str | Path | None = None) -> list[dict[str, Any]]:
        """Per row: output name -> a number, or ``{"label", "score", "top_k"}`` for class heads."""
        return self.format(self.predict_raw(rows, base_dir), top_k)

    def format(self, raw: Mapping[str, np.ndarray], top_k: int = 3) -> list[dict[str, Any]]:
        n = len(next(iter(raw.values())))
        out: list[dict[str, Any]] = [{} for _ in range(n)]
        for o in self.spec.outputs:
            v = raw[o.key]
            for i in range(n):
                if o.kind == "number":
                    out[i][o.name] = float(v[i])
                    continue
                probs = np.array([1.0 - v[i], v[i]]) if o.kind == "binary" else v[i]
                order = np.argsort(-probs)[: max(1, min(top_k, len(probs)))]
                top = [{"label": o.classes[j], "score": float(probs[j])} for j in order]
                out[i][o.name] = {"label": top[0]["label"], "score": top[0]["score"], "top_k": top}
        return out

    def predict_frame(self, rows: Any, base_dir: str | Path | None = None) -> Any:
        """A DataFrame with one column per head (the label or value) and ``<head>_score`` for class heads."""
        import pandas as pd

        data: dict[str, list[Any]] = {}
        for row in self.predict(rows, top_k=1, base_dir=base_dir):
            for name, v in row.items():
                if isinstance(v, dict):
                    data.setdefault(name, []).append(v["label"])
                    data.setdefault(f"{name}_score", []).append(v["score"])
                else:
                    data.setdefault(name, []).append(v)
        return pd.DataFrame(data)


def column_key_in(row: Mapping[str, Any], name: str) -> str | None:
    """The key of ``row`` holding column ``name`` (its name, or its model key), or None."""
    if name in row:
        return name
    from tfpilot.spec import column_key

    key = column_key(name)
    return key if key in row else None


def _category(v: Any) -> str:
    if _missing(v):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()

__all__ = ["TablePredictor", "column_key_in", "is_table_run", "keras_runner", "rows_from"]
