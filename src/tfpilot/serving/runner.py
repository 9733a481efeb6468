"""The model call the server makes: a compiled graph for Keras models, the Predictor otherwise.

``Predictor.predict_proba`` calls a Keras model eagerly, which costs milliseconds of Python
per call. For serving, a Keras model is traced once into a ``tf.function`` whose input
signature has a dynamic batch dimension and the model's own dtype, so every batch size
runs the same graph without retracing. Other backends (SavedModel, TFLite, ONNX) already
run compiled graphs; their ``Predictor.predict_proba`` is used as is.

Example:
    >>> from tfpilot.inference import load  # doctest: +SKIP
    >>> run = make_runner(load("runs/mnist"))  # doctest: +SKIP
    >>> run.warm_up(32)  # doctest: +SKIP
    >>> run(np.zeros((4, 28, 28, 1), "uint8")).shape  # doctest: +SKIP
    (4, 10)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tfpilot.evaluation.metrics import to_probabilities


class Runner:
    """Prepared batch in, probabilities (N, num_classes) out.

    Args:
        fn: the batch -> raw model outputs call.
        example: one valid instance, used to warm up.
        kind: "compiled" (a traced tf.function) or "predictor".
    """

    def __init__(self, fn: Callable[[Any], Any], example: Any, kind: str) -> None:
        self.fn = fn
        self.example = example
        self.kind = kind

    def __call__(self, batch: Any) -> np.ndarray:
        return to_probabilities(np.asarray(self.fn(batch))).astype(np.float32, copy=False)

    def warm_up(self, max_batch: int) -> None:
        """Run batch sizes 1 and ``max_batch`` once, so no request pays for the first call."""
        for n in sorted({1, max_batch}):
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
    """One neutral instance of the input: a black image or a short text."""
    if input_spec.kind == "text":
        return np.array("warm up", dtype=object)
    return np.zeros(input_spec.shape, dtype=dtype or input_spec.dtype)


def make_runner(predictor: Any) -> Runner:
    """The fastest call available for ``predictor`` (see the module docstring)."""
    spec = predictor.input_spec
    model = _keras_model(predictor)
    if model is None:
        if spec.kind == "text":
            return Runner(lambda batch: predictor.predict_proba([str(t) for t in batch]),
                          example_instance(spec), "predictor")
        return Runner(predictor.predict_proba, example_instance(spec), "predictor")
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
    return Runner(call, example, "compiled")
