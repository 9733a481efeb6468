"""The model call the server makes: a compiled graph for Keras models, the Predictor otherwise.

``Predictor.predict_proba`` calls a Keras model eagerly, which costs milliseconds of Python
per call. For serving, a Keras model is traced once into a ``tf.function`` whose input
signature has a dynamic batch dimension and the model's own dtype, so every batch size
runs the same graph without retracing. Batches are padded up to a few bucket sizes
(powers of two up to ``max_batch``), all run once at warm-up, so no request pays for a
first-time shape (oneDNN builds its kernels per input shape). Other backends (SavedModel,
TFLite, ONNX) already run compiled graphs; their ``Predictor.predict_proba`` is used as is.

Example:
    >>> from tfpilot.inference import load  # doctest: +SKIP
    >>> run = make_runner(load("runs/mnist"), max_batch=32)  # doctest: +SKIP
    >>> run.warm_up()  # doctest: +SKIP
    >>> run(np.zeros((4, 28, 28, 1), "uint8")).shape  # doctest: +SKIP
    (4, 10)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from tfpilot.metrics import to_probabilities

log = logging.getLogger("tfpilot.serving")


def configure_threads(threads: int | None) -> int:
    """Set TensorFlow's intra-op threads (before its first op runs); returns the number asked for.

    Args:
        threads: None: one less than the CPU count (at least 1), so one core stays free for the
            event loop, JSON and image decoding; 0: TensorFlow's default (every core).
    """
    n = max(1, (os.cpu_count() or 2) - 1) if threads is None else threads
    if n == 0:
        return 0
    import tensorflow as tf

    try:
        if tf.config.threading.get_intra_op_parallelism_threads() != n:
            tf.config.threading.set_intra_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow already ran ops in this process (e.g. in tests)
        log.warning("TensorFlow is already initialised; keeping its thread settings (wanted %d)", n)
    return n


def buckets(max_batch: int) -> tuple[int, ...]:
    """Batch sizes a compiled runner pads to: powers of two below ``max_batch``, and ``max_batch``.

    Example:
        >>> buckets(24)
        (1, 2, 4, 8, 16, 24)
    """
    sizes = {max_batch}
    size = 1
    while size < max_batch:
        sizes.add(size)
        size *= 2
    return tuple(sorted(sizes))


class Runner:
    """Prepared batch in, probabilities (N, num_classes) out.

    Args:
        fn: the batch -> raw model outputs call.
        example: one valid instance, used to warm up and to pad.
        kind: "compiled" (a traced tf.function) or "predictor".
        sizes: batch sizes to pad to (empty: no padding); larger batches run as they are.
        max_batch: the largest batch warmed up when ``sizes`` is empty.
    """

    def __init__(self, fn: Callable[[Any], Any], example: Any, kind: str, sizes: tuple[int, ...] = (),
                 max_batch: int = 32) -> None:
        self.fn = fn
        self.example = example
        self.kind = kind
        self.sizes = tuple(sizes)
        self.max_batch = max_batch

    def __call__(self, batch: Any) -> np.ndarray:
        n = len(batch)
        size = next((s for s in self.sizes if s >= n), n)
        if size > n:
            batch = np.concatenate([batch, np.repeat(batch[:1], size - n, axis=0)])
        return to_probabilities(np.asarray(self.fn(batch))[:n]).astype(np.float32, copy=False)

    def warm_up(self) -> None:
        """Run every bucket size once (or 1 and ``max_batch``), so no request pays for a first call."""
        for n in self.sizes or sorted({1, self.max_batch}):
            self(np.stack([self.example] * n))


def _keras_model(predictor: Any) -> Any:
    """The predictor's ``keras.Model`` when it is a plain single-input Keras model, else None."""
    model = getattr(predictor, "model", None)
    try:
        import keras
    except ImportError:  # pragma: no cover -- keras is a dependency
        return None
    if not isinstance(model, keras.Model):
        return None
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        return None
    return model


def example_instance(input_spec: Any, dtype: str | None = None) -> Any:
    """One neutral instance of an input (an ``InputSpec`` or ``FeatureSpec``): a black image, a
    short text, a known category or a zero."""
    if input_spec.dtype == "string":
        return np.array(next(iter(getattr(input_spec, "classes", ())), "warm up"), dtype=object)
    return np.zeros(input_spec.shape, dtype=dtype or input_spec.dtype)


def make_runner(predictor: Any, max_batch: int = 32, allowed_batch_sizes: tuple[int, ...] = ()) -> Runner:
    """The fastest call available for ``predictor`` (see the module docstring).

    Args:
        predictor: a :class:`~tfpilot.inference.Predictor` (any backend).
        max_batch: the largest batch the server sends.
        allowed_batch_sizes: the sizes a compiled runner pads to (TF Serving's
            ``allowed_batch_sizes``; default: :func:`buckets` of ``max_batch``).
    """
    spec = predictor.input_spec
    model = _keras_model(predictor)
    if model is None:
        return Runner(predictor.predict_proba, example_instance(spec), "predictor", max_batch=max_batch)
    import tensorflow as tf

    inp = model.inputs[0]
    inner = tuple(inp.shape[1:])
    dtype = tf.as_dtype(inp.dtype)

    @tf.function(input_signature=[tf.TensorSpec((None, *inner), dtype)], autograph=False)
    def serve(x: Any) -> Any:
        return model(x, training=False)

    concrete = serve.get_concrete_function()
    reshape = spec.kind == "text" and inner != ()

    def call(batch: Any) -> Any:
        if reshape:
            batch = np.asarray(batch, dtype=object).reshape((len(batch), *inner))
        return concrete(tf.constant(batch, dtype=dtype)).numpy()

    example = example_instance(spec, dtype=None if spec.kind == "text" else dtype.name)
    sizes = tuple(allowed_batch_sizes) or buckets(max_batch)
    return Runner(call, example, "compiled", sizes=sizes, max_batch=max_batch)
