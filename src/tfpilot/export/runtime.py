"""Shared pieces of the backends: shaping a batch for a model input, the loader-side
text preprocessing, the callable wrapper the ``Predictor`` runs, and the runners of table
models (``dict of numpy columns -> dict of numpy outputs``).

Example:
    >>> import numpy as np
    >>> text_batch(["a b", "c"], input_shape=(None, 1)).shape
    (2, 1)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.export.bundle import Bundle

PREPROCESS_FILE = "preprocess.keras"
VOCAB_FILE = "vocab.txt"


def text_batch(x: Any, input_shape: Sequence[Any] = (None,)) -> np.ndarray:
    """Strings as a numpy object array shaped for a string input of ``input_shape``."""
    if isinstance(x, (str, bytes)):
        x = [x]
    flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(x, dtype=object).reshape(-1)]
    arr = np.asarray(flat, dtype=object)
    return arr.reshape((-1, *[1] * (len(input_shape) - 1))) if len(input_shape) > 1 else arr


class KerasModel:
    """A Keras model as a backend callable: raw batch in, numpy out.

    Args:
        model: a Keras model taking raw inputs.
        format: the artifact format, for reports.
        path: where it was loaded from, if anywhere.
        bundle: its bundle, if any.
        probabilities: cast the output to float32 probabilities (False: return it as it is,
            densified -- for the loader-side text preprocessing, whose output is token ids
            or an n-gram vector).
    """

    def __init__(self, model: Any, format: str = "keras", path: Path | None = None, bundle: Bundle | None = None,
                 probabilities: bool = True) -> None:
        self.model = model
        self.format = format
        self.path = path
        self.bundle = bundle
        self.probabilities = probabilities
        self._string_input = bool(model.inputs) and str(model.inputs[0].dtype) == "string"

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        import tensorflow as tf

        if self._string_input:
            x = tf.constant(text_batch(x, self.model.inputs[0].shape).astype(str))
        out = self.model(x, training=False)
        if isinstance(out, tf.SparseTensor):
            out = tf.sparse.to_dense(out)
        return np.asarray(out, dtype=np.float32) if self.probabilities else np.asarray(out)


def save_loader_preprocess(split: Any, folder: Path) -> dict[str, str]:
    """Write a text model's string part (``preprocess.keras``) and vocabulary beside an artifact."""
    split.preprocess.save(folder / PREPROCESS_FILE)
    files = {"preprocess": PREPROCESS_FILE}
    if split.vocabulary:
        (folder / VOCAB_FILE).write_text("\n".join(t.replace("\n", " ") for t in split.vocabulary) + "\n",
                                         encoding="utf-8")
        files["vocabulary"] = VOCAB_FILE
    return files


def load_loader_preprocess(artifact: Path, bundle: Bundle) -> KerasModel | None:
    """The loader-side preprocessing named in ``bundle.loader_files`` (or None)."""
    name = bundle.loader_files.get("preprocess")
    if not name:
        return None
    from tfpilot.runs import load_model  # with tfpilot's serializable classes

    path = (artifact.parent if artifact.is_file() else artifact) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: this {bundle.format} artifact takes token ids, and tfpilot turns "
            f"strings into ids with {name}; copy it along with the artifact"
        )
    return KerasModel(load_model(path, safe_mode=True), "preprocess", path, probabilities=False)


def numeric_network(source: Any, folder: Path) -> tuple[Any, dict[str, Any]]:
    """The float32 network a converter (TFLite, ONNX) gets, and the bundle fields saying so.

    Image models convert whole. A text model's string step cannot go into these formats: it
    is saved beside the artifact (:func:`save_loader_preprocess`) for tfpilot's loader, and
    the converter gets the numeric network that takes token ids / n-gram vectors.
    """
    if source.input_spec.kind != "text":
        return source.float32_model(), {}
    split = source.text_split()
    network = split.network
    files = save_loader_preprocess(split, folder)
    fields = dict(
        loader_files=files,
        preprocessing_where=f"tfpilot's loader, {files['preprocess']}",
        input={"name": network.inputs[0].name, "dtype": str(network.inputs[0].dtype),
               "shape": [None, *network.inputs[0].shape[1:]],
               "note": text_input_note(network.inputs[0], files)},
    )
    return network, fields


def text_input_note(network_input: Any, files: dict[str, str]) -> str:
    """What a split text artifact takes, for its bundle."""
    shape = ", ".join(str(d) for d in network_input.shape[1:])
    integer = "int" in str(network_input.dtype)
    what = f"int64 token ids (N, {shape})" if integer else f"{network_input.dtype} n-gram vectors (N, {shape})"
    vocab = (f" (vocabulary: {files['vocabulary']}, id = 0-based line number; an empty first line is padding, "
             "[UNK] is unknown)" if "vocabulary" in files else "")
    return (f"{what} from the text encoder saved in {files['preprocess']}{vocab}; tfpilot.load() applies it, "
            "so pass raw strings there")

#: A table model (or its artifact) as a function of named columns to named outputs.
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
