"""The :class:`Predictor`: raw inputs in, class names with probabilities out.

It accepts what a practitioner has at hand -- file paths, encoded bytes, PIL images,
NumPy arrays of any size -- and prepares them with the same decode/resize function as
the training pipeline, so predictions match training exactly.

Example:
    >>> import tfpilot
    >>> predictor = tfpilot.load("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> predictor.predict(["digit.png"])[0]["label"]  # doctest: +SKIP
    '7'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.metrics import to_probabilities
from tfpilot.spec import InputSpec


class InputError(ValueError):
    """An input could not be turned into what the model takes; the message says why."""


def _is_single_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype != object


def _texts(inputs: Any) -> np.ndarray:
    """A str, or a list / array of str (bytes are decoded as UTF-8) -> a 1-D object array of str."""
    if isinstance(inputs, (str, bytes, np.str_)):
        inputs = [inputs]
    elif isinstance(inputs, np.ndarray):
        inputs = inputs.reshape(-1).tolist()
    elif not isinstance(inputs, Sequence):
        raise InputError(f"a text model takes a string or a list of strings, not {type(inputs).__name__}")
    if len(inputs) == 0:
        raise InputError("no inputs given")
    out = np.empty(len(inputs), dtype=object)
    for i, t in enumerate(inputs):
        if isinstance(t, bytes):
            t = t.decode("utf-8", errors="replace")
        if not isinstance(t, str):
            raise InputError(f"item {i}: a text model takes strings, got {type(t).__name__} ({t!r:.40})")
        out[i] = str(t)
    return out


class Predictor:
    """Predictions over a Keras model that takes raw inputs.

    Args:
        model: a ``keras.Model`` (raw input -> class probabilities).
        class_names: the names of the output classes, in order.
        input_spec: what the model takes (see :class:`~tfpilot.spec.InputSpec`).
        batch_size: examples per model call.
    """

    def __init__(self, model: Any, class_names: Sequence[str], input_spec: InputSpec, batch_size: int = 256) -> None:
        self.model = model
        self.class_names = list(class_names)
        self.input_spec = input_spec
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run_dir: str | Path, **kwargs: Any) -> Predictor:
        """Load the model and labels of a run directory."""
        from tfpilot.runs import Run

        run = Run(run_dir)
        labels = run.labels
        return cls(run.load_model(), labels["class_names"], InputSpec.from_dict(labels["input"]), **kwargs)

    # -- input preparation ---------------------------------------------------------------
    def prepare(self, inputs: Any) -> np.ndarray:
        """Turn ``inputs`` into the batch the model takes (uint8 N,H,W,C for images, a 1-D
        object array of str for text)."""
        if self.input_spec.kind == "text":
            return _texts(inputs)
        if self.input_spec.kind != "image":
            raise InputError(f"this predictor's input kind {self.input_spec.kind!r} is not supported here")
        if _is_single_array(inputs):
            if inputs.dtype == np.uint8 and inputs.shape[-3:] == tuple(self.input_spec.shape) and inputs.ndim in (3, 4):
                # Already what the model takes (the per-image path would return it unchanged):
                # skip its per-image checks, ~15 us a call, a third of a TFLite int8 call here.
                return inputs[None] if inputs.ndim == 3 else inputs
            # (H,W) and (H,W,C) are one image; (N,H,W) and (N,H,W,C) are a batch.
            one = inputs.ndim == 2 or (inputs.ndim == 3 and inputs.shape[-1] in (1, 3, 4))
            if inputs.ndim not in (2, 3, 4):
                raise InputError(f"expected an image (H,W[,C]) or a batch (N,H,W[,C]); got shape {inputs.shape}")
            inputs = [inputs] if one else list(inputs)
        if isinstance(inputs, (str, Path, bytes)) or not isinstance(inputs, Sequence | np.ndarray):
            inputs = [inputs]
        if len(inputs) == 0:
            raise InputError("no inputs given")
        return np.stack([self._image(x, f"item {i}") for i, x in enumerate(inputs)])

    def _image(self, x: Any, where: str) -> np.ndarray:
        import tensorflow as tf

        from tfpilot.data.images import decode_and_resize, decode_error

        h, w, c = self.input_spec.shape
        if isinstance(x, (str, Path)):
            p = Path(x)
            if not p.is_file():
                raise InputError(f"{where}: {p} is not a file")
            x = p.read_bytes()
            where = str(p)
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
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.shape[-1] not in (1, 3):
            raise InputError(f"{where}: images need 1, 3 or 4 channels; got {arr.shape[-1]}")
        if np.issubdtype(arr.dtype, np.floating):
            if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 255 or not np.isfinite(arr).all()):
                raise InputError(f"{where}: pixel values must be finite and within [0, 255]")
            if arr.size and arr.max() <= 1.0 and np.any(arr != np.round(arr)):
                raise InputError(
                    f"{where}: the pixels look scaled to [0, 1]; tfpilot models take raw 0-255 "
                    "pixels (the scaling is inside the model): pass (x * 255).astype('uint8')"
                )
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8) if arr.dtype != np.uint8 else arr
        if arr.shape[-1] != c:
            arr = tf.image.rgb_to_grayscale(arr).numpy() if c == 1 else np.repeat(arr, 3, axis=-1)
        if arr.shape[:2] != (h, w):
            r = tf.image.resize(arr, (h, w), method="bilinear", antialias=True)
            arr = tf.cast(tf.clip_by_value(tf.round(r), 0, 255), tf.uint8).numpy()
        return arr

    # -- prediction ----------------------------------------------------------------------
    def predict_proba(self, inputs: Any) -> np.ndarray:
        """Class probabilities, shape (N, num_classes)."""
        batch = self.prepare(inputs)
        outs = [np.asarray(self.model(batch[i : i + self.batch_size], training=False))
                for i in range(0, len(batch), self.batch_size)]
        return to_probabilities(np.concatenate(outs))

    def predict(self, inputs: Any, top_k: int = 5) -> list[dict[str, Any]]:
        """For each input: ``{"label", "score", "top_k": [{"label", "score"}, ...]}``."""
        return self.format(self.predict_proba(inputs), top_k)

    def format(self, probs: np.ndarray, top_k: int = 5) -> list[dict[str, Any]]:
        k = max(1, min(top_k, probs.shape[1]))
        out = []
        for row in probs:
            order = np.argsort(-row)[:k]
            top = [{"label": self.class_names[i], "score": float(row[i])} for i in order]
            out.append({"label": top[0]["label"], "score": top[0]["score"], "top_k": top})
        return out


def load(path: str | Path, backend: str | None = None, **kwargs: Any) -> Predictor:
    """A :class:`Predictor` for a run directory (or a ``model.keras`` inside one), or for an
    exported artifact: ``.keras``, SavedModel, ``.tflite`` (LiteRT) or ``.onnx`` (ONNX Runtime).

    Args:
        path: a run directory, a folder written by ``tfpilot export``, or an artifact.
        backend: keras, saved_model, tflite or onnx (default: detected from ``path``); for a
            run directory, another backend (or an export format such as "tflite-int8")
            selects ``RUN/export/<format>``.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".keras" and (path.parent / "labels.json").is_file():
        path = path.parent
    if backend in (None, "keras") and (path / "labels.json").is_file():
        return Predictor.from_run(path, **kwargs)
    from tfpilot.export.backends import resolve

    found = resolve(path, backend)
    return Predictor(found.open(), found.bundle.class_names, found.bundle.input_spec, **kwargs)
