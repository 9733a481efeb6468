"""The :class:`Predictor`: raw inputs in, every head's prediction out -- for any tfpilot model.

Every model takes named inputs and gives named heads (:func:`tfpilot.spec.as_table_spec`);
a classifier is the one-input (``images`` or ``text``), one-head (``label``) case. Each kind
of input is checked and prepared once, whatever the model: an image (a file path -- relative
to ``base_dir`` --, encoded bytes, a PIL image or an array of any size, decoded and resized
like in training), a text, a number (None / NaN / "" = missing: the model imputes it) or a
category (a value unseen in training goes to the out-of-vocabulary bucket and is counted in
``oov_``).

A classifier takes its inputs as they are (``predict(["digit.png"])``) and answers one
``{"label", "score", "top_k"}`` per input; a model of several inputs or heads takes rows
(dicts, or a pandas DataFrame) and answers ``{head: value or {"label", "score", "top_k"}}``.

Example:
    >>> import tfpilot
    >>> predictor = tfpilot.load("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> predictor.predict(["digit.png"])[0]["label"]  # doctest: +SKIP
    '7'
    >>> rows = [{"image": "shirt.jpg", "title": "Blue Shirt"}]
    >>> tfpilot.load("runs/multitask-fashion").predict(rows)  # doctest: +SKIP
    [{'articleType': {'label': 'Shirts', 'score': 0.93, 'top_k': [...]}}]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tfpilot.config.schema import EVAL_BATCH
from tfpilot.errors import UserError
from tfpilot.metrics import to_probabilities
from tfpilot.registry import did_you_mean
from tfpilot.spec import FeatureSpec, InputSpec, TableSpec, as_table_spec, column_key, spec_from_dict

if TYPE_CHECKING:
    from tfpilot.export.runtime import Runner


class InputError(UserError):
    """An input could not be turned into what the model takes; the message says why."""


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v.strip() == "")


# -- one input value of each kind -> what the model takes -------------------------------------------
def image_value(x: Any, shape: Sequence[int], where: str) -> np.ndarray:
    """One image (path, encoded bytes, PIL image or array) as uint8 pixels of ``shape`` (H, W, C).

    Example:
        >>> image_value(np.zeros((4, 6)), (2, 2, 3), "item 0").shape
        (2, 2, 3)
    """
    import tensorflow as tf

    from tfpilot.data.images import decode_and_resize, decode_error

    h, w, c = shape
    if _missing(x):
        raise InputError(f"{where}: no image")
    if isinstance(x, (str, Path)):
        p = Path(x)
        if not p.is_file():
            raise InputError(f"{where}: {p} is not a file")
        x, where = p.read_bytes(), str(p)
    if isinstance(x, bytes):
        try:
            return decode_and_resize(tf.constant(x), c, (h, w)).numpy()
        except (tf.errors.OpError, ValueError) as exc:
            raise decode_error(where, exc, InputError) from None
    if hasattr(x, "mode") and hasattr(x, "size"):  # PIL image
        x = np.asarray(x.convert("L" if c == 1 else "RGB"))
    arr = np.asarray(x)
    if arr.dtype == object or arr.ndim not in (2, 3):
        raise InputError(f"{where}: expected an image array (H,W) or (H,W,C); got shape {arr.shape}")
    arr = arr[..., None] if arr.ndim == 2 else arr[..., :3] if arr.shape[-1] == 4 else arr
    if arr.shape[-1] not in (1, 3):
        raise InputError(f"{where}: images need 1, 3 or 4 channels; got {arr.shape[-1]}")
    if np.issubdtype(arr.dtype, np.floating) and arr.size:
        if np.nanmin(arr) < 0 or np.nanmax(arr) > 255 or not np.isfinite(arr).all():
            raise InputError(f"{where}: pixel values must be finite and within [0, 255]")
        if arr.max() <= 1.0 and np.any(arr != np.round(arr)):
            raise InputError(f"{where}: the pixels look scaled to [0, 1]; tfpilot models take raw 0-255 pixels "
                             "(the scaling is inside the model): pass (x * 255).astype('uint8')")
    arr = np.clip(np.round(arr), 0, 255).astype(np.uint8) if arr.dtype != np.uint8 else arr
    if arr.shape[-1] != c:
        arr = tf.image.rgb_to_grayscale(arr).numpy() if c == 1 else np.repeat(arr, 3, axis=-1)
    if arr.shape[:2] != (h, w):
        r = tf.image.resize(arr, (h, w), method="bilinear", antialias=True)
        arr = tf.cast(tf.clip_by_value(tf.round(r), 0, 255), tf.uint8).numpy()
    return arr


def text_value(v: Any, where: str) -> str:
    """A text (bytes are decoded as UTF-8; missing is "")."""
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if isinstance(v, str) or _missing(v):
        return "" if _missing(v) else str(v)
    raise InputError(f"{where}: a text model takes strings, got {type(v).__name__} ({v!r:.40})")


def number_value(v: Any, where: str) -> float:
    """A number (missing is NaN, which the model imputes)."""
    if _missing(v):
        return np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected a number; got {str(v)[:30]!r}") from None


def category_value(v: Any, where: str) -> str:
    """A category as the string the model looks up (2.0 -> "2"; b"red" -> "red"; missing is "").

    Example:
        >>> [category_value(v, "x") for v in (2.0, b"red", None)]
        ['2', 'red', '']
    """
    if _missing(v):
        return ""
    if isinstance(v, bytes):  # a served request's strings arrive as bytes
        v = v.decode("utf-8", errors="replace")
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


_VALUES: dict[str, Callable[[Any, str], Any]] = {"text": text_value, "number": number_value,
                                                 "category": category_value, "binary": category_value,
                                                 "date": category_value}
_DTYPES = {"image": np.uint8, "number": np.float32}


# -- how inputs arrive ---------------------------------------------------------------------------------
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


def column_key_in(row: Mapping[str, Any], name: str) -> str | None:
    """The key of ``row`` holding column ``name`` (its name, or its model key), or None."""
    if name in row:
        return name
    return column_key(name) if column_key(name) in row else None


def _items(inputs: Any, kind: str) -> list[Any]:
    """A classifier's inputs (one value or a sequence; an image array may be a batch) as a list."""
    if isinstance(inputs, np.ndarray) and inputs.dtype != object and kind == "image":
        # (H,W) and (H,W,C) are one image; (N,H,W) and (N,H,W,C) are a batch.
        if inputs.ndim not in (2, 3, 4):
            raise InputError(f"expected an image (H,W[,C]) or a batch (N,H,W[,C]); got shape {inputs.shape}")
        return [inputs] if inputs.ndim == 2 or (inputs.ndim == 3 and inputs.shape[-1] in (1, 3, 4)) else list(inputs)
    if isinstance(inputs, np.ndarray):
        return inputs.reshape(-1).tolist()
    if isinstance(inputs, (str, Path, bytes)) or not isinstance(inputs, Sequence):
        if kind == "text" and not isinstance(inputs, (str, bytes)):
            raise InputError(f"a text model takes a string or a list of strings, not {type(inputs).__name__}")
        return [inputs]
    return list(inputs)


def top_k_result(probs: np.ndarray, classes: Sequence[str], k: int) -> dict[str, Any]:
    """``{"label", "score", "top_k": [{"label", "score"}, ...]}`` of one row of probabilities.

    Example:
        >>> top_k_result(np.array([0.2, 0.8]), ["a", "b"], 1)["label"]
        'b'
    """
    order = np.argsort(-probs, kind="stable")[: max(1, min(k, len(probs)))]
    top = [{"label": classes[i], "score": float(probs[i])} for i in order]
    return {"label": top[0]["label"], "score": top[0]["score"], "top_k": top}


def _row_column(i: int, name: str) -> str:
    return f"row {i + 1}, column {name!r}"


def classifier_runner(model: Any, input_key: str, head: str) -> Runner:
    """A classifier's callable (``model(batch) -> scores``) as a runner of its named input and head."""
    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {head: to_probabilities(np.asarray(model(batch[input_key], training=False)))}

    return run


class Predictor:
    """Predictions of a tfpilot model (Keras, or an exported artifact's runner).

    Args:
        model: a ``keras.Model`` taking raw inputs, or a backend's callable; None when ``runner`` is given.
        class_names: a classifier's classes, in output order (a table model's are in its spec).
        input_spec: what the model takes: a classifier's :class:`~tfpilot.spec.InputSpec`, or a
            :class:`~tfpilot.spec.TableSpec` of named inputs and heads.
        batch_size: examples per model call.
        base_dir: the folder relative image paths start from (default: the working directory).
        runner: ``dict of numpy inputs -> dict of numpy outputs`` (default: from ``model``).

    Attributes:
        spec: the model's named inputs and heads (a classifier's through ``as_table_spec``).
        oov_: after :meth:`prepare`: category input -> how many values were unseen in training.

    Example:
        >>> from tfpilot.models import create_model  # doctest: +SKIP
        >>> p = Predictor(create_model("mlp", InputSpec.image(8, 8, 1), 3), ["a", "b", "c"], InputSpec.image(8, 8, 1))
        >>> p.predict(np.zeros((8, 8), np.uint8), top_k=2)[0]["label"]  # doctest: +SKIP
        'b'
    """

    def __init__(self, model: Any, class_names: Sequence[str], input_spec: InputSpec | TableSpec,
                 batch_size: int = EVAL_BATCH, base_dir: str | Path | None = None,
                 runner: Runner | None = None) -> None:
        self.model = model
        self.input_spec = input_spec
        self.spec = as_table_spec(input_spec, class_names)
        self.batch_size = batch_size
        self.base_dir = Path(base_dir) if base_dir is not None else None
        if runner is None and self.is_classifier:
            runner = classifier_runner(model, self.spec.input_keys[0], self.spec.output_keys[0])
        if runner is None:
            from tfpilot.export.runtime import keras_table_runner

            runner = keras_table_runner(model)
        self.runner = runner
        self.oov_: dict[str, int] = {}

    @property
    def is_classifier(self) -> bool:
        """Whether the model is a classifier (one raw input, one category head), answered per input."""
        return not isinstance(self.input_spec, TableSpec)

    @property
    def class_names(self) -> Any:
        """A classifier's classes; for a table model, head name -> its classes (category and binary heads)."""
        if self.is_classifier:
            return list(self.spec.outputs[0].classes)
        return {o.name: list(o.classes) for o in self.spec.outputs if o.classes}

    @classmethod
    def from_run(cls, run_dir: str | Path, **kwargs: Any) -> Predictor:
        """Load the model and labels of a run directory (``batch_size`` defaults to the run's
        ``train.evaluation_batch``, which the memory plan lowers for large images)."""
        from tfpilot.config import evaluation_batch
        from tfpilot.runs import Run

        run = Run(run_dir)
        kwargs.setdefault("batch_size", evaluation_batch(run.config_file))
        return cls(run.load_model(), run.labels.get("class_names", ()), spec_from_dict(run.labels["input"]), **kwargs)

    @classmethod
    def from_artifact(cls, found: Any, **kwargs: Any) -> Predictor:
        """An exported artifact (``tfpilot.export.backends.resolve``'s result)."""
        bundle = found.bundle
        if isinstance(bundle.input_spec, TableSpec):
            from tfpilot.export.runtime import table_runner

            return cls(None, (), bundle.input_spec, runner=table_runner(found.backend, found.path, bundle), **kwargs)
        return cls(found.open(), bundle.class_names, bundle.input_spec, **kwargs)

    # -- inputs -> model batch -------------------------------------------------------------------------
    def prepare(self, inputs: Any, base_dir: str | Path | None = None) -> Any:
        """The model batch of ``inputs``: a classifier's one array (uint8 N,H,W,C images, an object
        array of str), else input key -> uint8 images / strings / float32 (NaN = missing)."""
        base = Path(base_dir) if base_dir is not None else self.base_dir
        if not self.is_classifier:
            return self.prepare_columns(self._columns(rows_from(inputs)), base, _row_column)
        feature = self.spec.inputs[0]
        if isinstance(inputs, np.ndarray) and inputs.dtype == np.uint8 and inputs.ndim in (3, 4) \
                and inputs.shape[-3:] == feature.shape:
            # Already what the model takes: skip the per-image checks (~15 us a call, a third of a TFLite int8 call).
            return inputs[None] if inputs.ndim == 3 else inputs
        items = _items(inputs, feature.kind)
        return self.prepare_columns({feature.key: items}, base)[feature.key]

    def prepare_columns(self, columns: Mapping[str, Sequence[Any]], base_dir: Path | None = None,
                        where: Callable[[int, str], str] = lambda i, _: f"item {i}") -> dict[str, np.ndarray]:
        """Each input's values (by key) as the array the model takes; ``where(i, name)`` names a bad value.

        Example:
            >>> spec = TableSpec((FeatureSpec("n", "number"),), (FeatureSpec("y", "number"),))
            >>> Predictor(None, (), spec, runner=dict).prepare_columns({"n": [1, None]})["n"].tolist()
            [1.0, nan]
        """
        out: dict[str, np.ndarray] = {}
        self.oov_ = {}
        for c in self.spec.inputs:
            cells = columns[c.key]
            if not len(cells):
                raise InputError("no inputs given")
            if c.kind == "image":
                at = [base_dir / v if base_dir and isinstance(v, (str, Path)) and not _missing(v) else v for v in cells]
                out[c.key] = np.stack([image_value(v, c.shape, where(i, c.name)) for i, v in enumerate(at)])
                continue
            out[c.key] = np.array([_VALUES[c.kind](v, where(i, c.name)) for i, v in enumerate(cells)],
                                  dtype=_DTYPES.get(c.kind, object))
            self._count_unseen(c, out[c.key])
        return out

    def _columns(self, rows: list[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """Rows -> input key -> values; a row without an input is an error naming it."""
        if not rows:
            raise InputError("no rows given")
        names = [c.name for c in self.spec.inputs]
        for i, row in enumerate(rows):
            absent = [n for n in names if column_key_in(row, n) is None]
            if absent:
                hint = did_you_mean(absent[0], sorted(set(map(str, row)) - set(names)))
                raise InputError(f"row {i + 1} has no column {absent[0]!r}.{hint} The model takes: {', '.join(names)}")
        return {c.key: [row[column_key_in(row, c.name)] for row in rows] for c in self.spec.inputs}

    def _count_unseen(self, c: FeatureSpec, values: np.ndarray) -> None:
        if c.kind in ("category", "binary"):
            n = int(sum(1 for v in values if v and v not in set(c.classes)))
            if n:
                self.oov_[c.name] = n

    # -- prediction ------------------------------------------------------------------------------------
    def predict_raw(self, inputs: Any, base_dir: str | Path | None = None) -> dict[str, np.ndarray]:
        """Every head's raw outputs by key: (N, C) probabilities, (N,) sigmoid or values."""
        batch = self.prepare(inputs, base_dir)
        batch = {self.spec.input_keys[0]: batch} if self.is_classifier else batch
        n = len(next(iter(batch.values())))
        parts: dict[str, list[np.ndarray]] = {}
        for i in range(0, n, self.batch_size):
            for k, v in self.runner({k: v[i : i + self.batch_size] for k, v in batch.items()}).items():
                parts.setdefault(k, []).append(np.asarray(v))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def predict_proba(self, inputs: Any) -> np.ndarray:
        """A classifier's class probabilities, shape (N, num_classes)."""
        return self.predict_raw(inputs)[self.spec.output_keys[0]]

    def predict(self, inputs: Any, top_k: int | None = None,
                base_dir: str | Path | None = None) -> list[dict[str, Any]]:
        """Per input: a classifier's ``{"label", "score", "top_k": [{"label", "score"}, ...]}`` (top 5 by
        default); else head name -> a number, or ``{"label", "score", "top_k"}`` (top 3 by default)."""
        return self.format(self.predict_raw(inputs, base_dir), top_k)

    def format(self, raw: Mapping[str, np.ndarray] | np.ndarray, top_k: int | None = None) -> list[dict[str, Any]]:
        """:meth:`predict`'s answer for raw outputs (a classifier's may be its probabilities alone)."""
        k = top_k if top_k is not None else 5 if self.is_classifier else 3
        raw = {self.spec.output_keys[0]: raw} if isinstance(raw, np.ndarray) else raw
        out: list[dict[str, Any]] = [{} for _ in range(len(next(iter(raw.values()))))]
        for o in self.spec.outputs:
            for row, v in zip(out, raw[o.key]):
                probs = np.array([1.0 - v, v]) if o.kind == "binary" else v
                row[o.name] = float(v) if o.kind == "number" else top_k_result(probs, o.classes, k)
        return [row[self.spec.outputs[0].name] for row in out] if self.is_classifier else out

    def predict_frame(self, inputs: Any, base_dir: str | Path | None = None) -> Any:
        """A DataFrame with one column per head (the label or value) and ``<head>_score`` for class heads."""
        import pandas as pd

        return pd.DataFrame([flat_prediction(r) for r in self.predict(inputs, top_k=1, base_dir=base_dir)])


def flat_prediction(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row's prediction flat: head -> label or value, ``<head>_score`` -> the label's score."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        out.update({k: v["label"], f"{k}_score": round(v["score"], 6)} if isinstance(v, dict) else {k: v})
    return out


def load(path: str | Path, backend: str | None = None, **kwargs: Any) -> Predictor:
    """A :class:`Predictor` for a run directory (or a ``model.keras`` inside one), or for an
    exported artifact: ``.keras``, SavedModel, ``.tflite`` (LiteRT) or ``.onnx`` (ONNX Runtime).

    Args:
        path: a run directory, a folder written by ``tfpilot export``, or an artifact.
        backend: keras, saved_model, tflite or onnx (default: detected from ``path``); for a
            run directory, another backend (or an export format such as "tflite-int8")
            selects ``RUN/export/<format>``.
        kwargs: passed to :class:`Predictor` (``batch_size``, ``base_dir``).

    Example:
        >>> load("runs/mnist", backend="tflite").predict(["digit.png"])[0]["label"]  # doctest: +SKIP
        '7'
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".keras" and (path.parent / "labels.json").is_file():
        path = path.parent
    if backend in (None, "keras") and (path / "labels.json").is_file():
        return Predictor.from_run(path, **kwargs)
    from tfpilot.export.backends import resolve

    return Predictor.from_artifact(resolve(path, backend), **kwargs)
