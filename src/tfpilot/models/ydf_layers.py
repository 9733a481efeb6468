"""A decision forest as a Keras layer: one YDF model predicting one head from raw columns.

:class:`ForestHead` holds a trained YDF model (gradient-boosted trees or a random forest) and
calls it through YDF's TensorFlow ops (``model.to_tensorflow_function()``, from ``ydf-tf``), so
a model made of such layers is a ``keras.Model`` over named raw inputs and named heads like
the neural table model: ``model.keras``, evaluation, the Predictor, every SavedModel export and
``tfpilot serve`` take it as they take any model.

* Inputs: number columns (float32, NaN = missing) and category columns (strings, "" = missing)
  go in as they are; text columns as the set of their lower-cased words (:func:`word_set`); date
  columns as four numbers (year, month, day of week, days since a reference date, read by the
  column's format as the neural date encoder reads them: ``tfpilot.models.date_layers``).
  Columns the forest does not use (images) are taken and ignored.
* Output, as :func:`tfpilot.models.multitask.head`: a category head's probabilities (N, C)
  in the order of the head's classes (a class the training split lacked gets 0); a binary
  head's P(classes[1]) (N,); a number head's value (N,).
* Saving: the YDF model's own files go in the ``.keras`` archive (``assets/``,
  :meth:`ForestHead.save_assets`), and the layer's config holds what it was built from.
  A SavedModel export tracks the TensorFlow model resource and its files as SavedModel assets;
  loading one needs YDF's ops registered (:func:`tfpilot.models.ydf_ops.ensure_ops`).

The layer has no weights: training is YDF's own learner (:mod:`tfpilot.training.ydf_fit`),
which gives the layer its model with :meth:`ForestHead.set_forest`.

Example:
    >>> import numpy as np, ydf
    >>> forest = ydf.RandomForestLearner(label="y", task=ydf.Task.REGRESSION, num_trees=5).train(
    ...     {"x": np.arange(20, dtype="float32"), "y": np.arange(20, dtype="float32")})  # doctest: +SKIP
    >>> layer = ForestHead({"name": "y", "kind": "number"}, {"x": "number"})
    >>> layer.set_forest(forest)  # doctest: +SKIP
    >>> layer({"x": np.array([3.0], "float32")}).shape  # doctest: +SKIP
    TensorShape([1])
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import numpy as np
from keras import layers

from tfpilot.errors import UserError
from tfpilot.registry import serializable
from tfpilot.spec import FeatureSpec

#: The column kinds a forest reads directly (images go in through an encoder or are left out).
FOREST_KINDS = ("number", "category", "text", "date")
#: Where in the ``.keras`` archive's assets of the layer the YDF model's files are.
MODEL_DIR = "ydf_model"


class ForestTracingFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning about YDF's forest functions.

    ``to_tensorflow_function()`` gives every forest a ``tf.function`` of the same Python method
    (``ydf_model_to_tf_function.<locals>.CallableModule.__call__``), each traced once for its own
    forest. TensorFlow's retracing detector counts the traces of that method, so a leaderboard's
    fifth forest (the candidates, then their refits) warns "5 out of the last 13 calls ...
    triggered tf.function retracing" with advice that does not apply, twice (TensorFlow's handler
    and the run's log). Every other message passes, other retracing warnings included.

    Example:
        >>> record = logging.LogRecord("tensorflow", logging.WARNING, "", 0, "5 out of the last 5 calls to "
        ...     "<function ydf_model_to_tf_function.<locals>.CallableModule.__call__ at 0x1> triggered "
        ...     "tf.function retracing. Tracing is expensive", None, None)
        >>> ForestTracingFilter().filter(record)
        False
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "ydf_model_to_tf_function" in message)


def quiet_forest_tracing() -> None:
    """Put one :class:`ForestTracingFilter` on the ``tensorflow`` logger (a logger's filter runs
    before its handlers and before the record reaches the root logger's); idempotent."""
    tf_logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, ForestTracingFilter) for f in tf_logger.filters):
        tf_logger.addFilter(ForestTracingFilter())


def word_set(texts: Any) -> Any:
    """tf: strings (N,) -> a ragged (N, None) string tensor of their lower-cased words, the form
    a forest reads a text column in (YDF's CATEGORICAL_SET). The same function makes the
    training values, so training and serving split words alike.

    Example:
        >>> word_set(np.array(["Red  ant, small!"], dtype=object)).to_list()
        [[b'red', b'ant', b'small']]
    """
    import tensorflow as tf

    lowered = tf.strings.lower(tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1]), encoding="utf-8")
    return tf.strings.split(tf.strings.regex_replace(lowered, r"[^\pL\pN]+", " "))


def date_parts(key: str) -> list[str]:
    """The forest's names of a date column's numbers: ``<key>__year``, ``<key>__month``, ...

    Example:
        >>> date_parts("sold")[:2]
        ['sold__year', 'sold__month']
    """
    return [f"{key}__{name}" for name in ("year", "month", "day_of_week", "days")]


def forest_value(kind: str, values: Any) -> Any:
    """tf: one column of raw values -> what the forest's op takes for it (float32, string, words;
    a date's numbers come from :meth:`ForestHead.call`)."""
    import tensorflow as tf

    if kind == "number":
        return tf.reshape(tf.cast(values, tf.float32), [-1])
    if kind == "category":
        return tf.reshape(values, [-1])
    return word_set(values)


@serializable
class ForestHead(layers.Layer):
    """One head of a table model predicted by a YDF decision forest.

    Args:
        head: the head's :meth:`FeatureSpec.to_dict` (its name, kind, key and classes).
        features: column key -> kind ("number", "category", "text" or "date") of every column
            the forest reads.
        date_formats: date column key -> how its strings are written (``%d/%m/%Y``).
        learner: the YDF learner it is trained with ("GRADIENT_BOOSTED_TREES" or "RANDOM_FOREST").
        hyperparameters: the learner's keyword arguments (``model.params``).
    """

    def __init__(self, head: Mapping[str, Any], features: Mapping[str, str], learner: str = "GRADIENT_BOOSTED_TREES",
                 hyperparameters: Mapping[str, Any] | None = None, date_formats: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.head = FeatureSpec.from_dict(dict(head))
        self.features = {str(k): str(v) for k, v in features.items()}
        bad = {k: v for k, v in self.features.items() if v not in FOREST_KINDS}
        if bad:
            raise UserError(f"a forest reads {', '.join(FOREST_KINDS)} columns, not {bad}")
        self.learner = str(learner)
        self.hyperparameters = dict(hyperparameters or {})
        self.date_formats = {str(k): str(v) for k, v in (date_formats or {}).items()}
        self.date_readers = {}  # date key -> the neural date encoder, whose raw features the forest reads
        if self.date_formats:
            from tfpilot.models.date_layers import DateFeatures

            self.date_readers = {k: DateFeatures(date_format=f, name=f"{k}_date_reader")
                                 for k, f in self.date_formats.items()}
        self.forest: Any = None
        self._function: Any = None
        self._class_columns: list[int] = []

    # -- the trained forest ----------------------------------------------------------------
    def set_forest(self, forest: Any) -> None:
        """Give the layer its trained YDF model and build its TensorFlow function.

        Args:
            forest: a YDF model trained on this layer's features with the head as its label
                (class names as labels for a class head).

        Raises:
            ValueError: the forest predicts classes the head does not have.
        """
        self.forest = forest
        if self.head.classes:
            known = [str(c) for c in forest.label_classes()]
            unknown = sorted(set(known) - set(self.head.classes))
            if unknown:
                raise ValueError(f"head {self.head.name!r}: the forest predicts classes {unknown} it does not have")
            self._class_columns = [known.index(c) if c in known else -1 for c in self.head.classes]
        folder = tempfile.mkdtemp(prefix="tfpilot-ydf-")  # the op's files; a SavedModel copies them
        weakref.finalize(self, shutil.rmtree, folder, True)
        quiet_forest_tracing()
        self._function = forest.to_tensorflow_function(temp_dir=folder, squeeze_binary_classification=False)

    @property
    def trained(self) -> bool:
        return self.forest is not None

    # -- Keras ------------------------------------------------------------------------------
    def build(self, input_shape: Any = None) -> None:
        for reader in self.date_readers.values():  # their weights exist from the start; nothing to shape
            reader.build(None)
        self.built = True

    def call(self, inputs: Mapping[str, Any]) -> Any:
        import tensorflow as tf

        if self._function is None:
            raise ValueError(f"head {self.head.name!r}: the forest is not trained yet")
        x = {k: forest_value(kind, inputs[k]) for k, kind in self.features.items() if kind != "date"}
        for k, fmt in self.date_formats.items():
            x.update(zip(date_parts(k), tf.unstack(self.date_readers[k].features(inputs[k]), axis=-1)))
        out = tf.cast(self._function(x), tf.float32)
        if self.head.kind == "number":
            return tf.reshape(out, [-1])
        # columns in the head's class order; a class the forest never saw gets probability 0
        padded = tf.concat([out, tf.zeros_like(out[:, :1])], axis=-1)
        index = [i if i >= 0 else int(out.shape[-1]) for i in self._class_columns]
        probs = tf.gather(padded, index, axis=-1)
        return probs[:, 1] if self.head.kind == "binary" else probs

    def compute_output_spec(self, inputs: Any) -> Any:
        shape = (None, len(self.head.classes)) if self.head.kind == "category" else (None,)
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "head": self.head.to_dict(), "features": dict(self.features),
                "learner": self.learner, "hyperparameters": dict(self.hyperparameters),
                "date_formats": dict(self.date_formats)}

    def save_assets(self, dir_path: str) -> None:
        """Write the YDF model's own files into the ``.keras`` archive."""
        if self.forest is None:
            raise ValueError(f"head {self.head.name!r}: an untrained forest cannot be saved")
        self.forest.save(os.path.join(dir_path, MODEL_DIR))

    def load_assets(self, dir_path: str) -> None:
        """Read the YDF model back from the ``.keras`` archive."""
        import ydf

        with quiet_ydf():
            forest = ydf.load_model(os.path.join(dir_path, MODEL_DIR))
        self.set_forest(forest)


@contextlib.contextmanager
def quiet_ydf() -> Iterator[None]:
    """YDF's own console logs off inside the block (``ydf.verbose(0)``; restored after), so a
    command's standard output holds only its own answer (``tfpilot predict`` prints JSON)."""
    import ydf

    previous = ydf.verbose(0)
    try:
        yield
    finally:
        ydf.verbose(previous)


def forest_heads(model: Any) -> list[ForestHead]:
    """The :class:`ForestHead` layers of ``model``, nested models' included (an ensemble's
    members); none: a neural model.

    Example:
        >>> import keras
        >>> forest_heads(keras.Sequential([keras.layers.Dense(1)]))
        []
    """
    found: list[ForestHead] = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, ForestHead):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(forest_heads(layer))
    return found


def refuse_conversion(model: Any) -> None:
    """Refuse to convert a model with decision forests to TFLite or ONNX.

    Raises:
        UserError: ``model`` has :class:`ForestHead` layers. Their trees run as YDF's own
            TensorFlow ops (``ydf-tf``), which neither the TFLite nor the ONNX converter has.
    """
    reason = conversion_refusal(model)
    if reason:
        raise UserError(f"{reason}. Export keras or saved_model (tfpilot export RUN -f saved_model), which serve them.")


def conversion_refusal(model: Any) -> str | None:
    """Why ``model`` cannot be converted to TFLite or ONNX, or None (it can be tried).

    Example:
        >>> import keras
        >>> conversion_refusal(keras.Sequential([keras.layers.Dense(1)])) is None
        True
    """
    heads = forest_heads(model)
    if not heads:
        return None
    names = sorted({h.head.name for h in heads})
    return (f"{model.name}: the heads {', '.join(names)} are decision forests, which run as YDF's own TensorFlow "
            "ops (ydf-tf); TFLite and ONNX have no such ops")


def training_values(kind: str, values: np.ndarray, date_format: str = "") -> Any:
    """One column of a table split as YDF's learner takes it (the same values :func:`forest_value`
    gives the op at inference); a date column: its (N, 4) numbers."""
    if kind == "date":
        from tfpilot.data.dates import date_features

        return date_features(list(np.asarray(values, dtype=object).reshape(-1)), date_format)
    if kind == "text":
        return [[w.decode("utf-8") for w in row] for row in word_set(values).to_list()]
    if kind == "number":
        return np.asarray(values, dtype=np.float32)
    return np.asarray(values, dtype=object)
