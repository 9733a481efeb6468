"""Running a table model's artifacts: ``dict of numpy columns -> dict of numpy outputs`` for
the keras, saved_model and tflite backends (see :mod:`tfpilot.export.table_export`).

Example:
    >>> from tfpilot.export.backends import resolve
    >>> found = resolve("runs/multitask-table/export/tflite")  # doctest: +SKIP
    >>> run = table_runner(found.backend, found.path, found.bundle)  # doctest: +SKIP
    >>> sorted(run(batch))  # doctest: +SKIP
    ['kind', 'price']
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.export.bundle import Bundle

Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _tensors(batch: dict[str, np.ndarray]) -> dict[str, Any]:
    import tensorflow as tf

    return {k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in batch.items()}


def _numpy(out: Any) -> np.ndarray:
    import tensorflow as tf

    if isinstance(out, tf.SparseTensor):
        out = tf.sparse.to_dense(out)
    return np.asarray(out)


def keras_table_runner(model: Any) -> Runner:
    """A Keras table model as a runner (strings go in as tf strings)."""
    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: _numpy(v).astype(np.float32) for k, v in model(_tensors(batch), training=False).items()}

    return run


def saved_model_runner(path: Path, bundle: Bundle) -> Runner:
    """The SavedModel's ``serving_default`` signature, keeping only the heads' outputs."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    heads = bundle.input_spec.output_keys

    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = signature(**_tensors(batch))
        return {k: out[k].numpy().astype(np.float32) for k in heads}

    return run


def tflite_runner(path: Path, bundle: Bundle, num_threads: int | None = None) -> Runner:
    """The ``.tflite`` file's ``serving_default`` signature, after ``preprocess.keras`` (strings -> numbers)."""
    from tfpilot.export.tflite import make_interpreter
    from tfpilot.runs import load_model

    file = path if path.is_file() else path / "model.tflite"
    preprocess_file = file.parent / bundle.loader_files.get("preprocess", "preprocess.keras")
    preprocess = load_model(preprocess_file) if bundle.loader_files and preprocess_file.is_file() else None
    interpreter = make_interpreter(file, num_threads)
    runner = interpreter.get_signature_runner("serving_default")
    dtypes = {k: d["dtype"] for k, d in runner.get_input_details().items()}
    lock = threading.Lock()
    strings = [k for k in dtypes if bundle.input_spec.input(k).kind in ("text", "category")]

    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = dict(batch)
        if preprocess is not None:
            done = preprocess(_tensors({k: x[k] for k in strings}), training=False)
            x.update({k: _numpy(v) for k, v in done.items()})
        feed = {k: np.ascontiguousarray(np.asarray(x[k]).astype(dtypes[k], copy=False)) for k in dtypes}
        with lock:
            out = runner(**feed)
        return {k: np.asarray(v, dtype=np.float32).copy() for k, v in out.items()}

    return run


def table_runner(backend: str, path: Path, bundle: Bundle) -> Runner:
    """The runner of a table model's artifact for ``backend`` (keras, saved_model or tflite)."""
    if backend == "keras":
        from tfpilot.runs import load_model

        file = path if path.is_file() else path / "model.keras"
        return keras_table_runner(load_model(file))
    if backend == "saved_model":
        return saved_model_runner(path, bundle)
    if backend == "tflite":
        return tflite_runner(path, bundle)
    raise ValueError(f"table models run on keras, saved_model or tflite artifacts, not {backend!r}")
