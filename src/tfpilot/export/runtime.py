"""Shared pieces of the backends: shaping a batch for a model input, the loader-side string
preprocessing, the callable wrapper the ``Predictor`` runs, and the runners of every model
and artifact over its named inputs and heads (``dict of numpy columns -> dict of numpy outputs``).

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

from tfpilot.config.schema import EVAL_BATCH
from tfpilot.errors import NotFoundError, UserError
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


def load_loader_preprocess(artifact: Path, bundle: Bundle) -> KerasModel | None:
    """The loader-side preprocessing named in ``bundle.loader_files`` (or None)."""
    name = bundle.loader_files.get("preprocess")
    if not name:
        return None
    from tfpilot.runs import load_model  # with tfpilot's serializable classes

    path = (artifact.parent if artifact.is_file() else artifact) / name
    if not path.is_file():
        raise NotFoundError(
            f"{path} is missing: this {bundle.format} artifact takes token ids, and tfpilot turns "
            f"strings into ids with {name}; copy it along with the artifact"
        )
    return KerasModel(load_model(path, safe_mode=True), "preprocess", path, probabilities=False)


def numeric_network(source: Any, folder: Path) -> tuple[Any, dict[str, Any]]:
    """The float32 :class:`~tfpilot.export.source.Network` a converter (TFLite, ONNX) gets, and the
    bundle fields saying so.

    A model without string inputs converts whole. The string layers of text and category
    inputs cannot go into these formats: they are saved beside the artifact as ``preprocess.keras``
    (and a text classifier's ``vocab.txt``) for tfpilot's loader, and the converter gets the
    numeric network that takes token ids / lookups for them.
    """
    network = source.network()
    if network.preprocess is None:
        return network, {"network": network}
    network.preprocess.save(folder / PREPROCESS_FILE)
    files = {"preprocess": PREPROCESS_FILE}
    if network.vocabulary:
        (folder / VOCAB_FILE).write_text("\n".join(t.replace("\n", " ") for t in network.vocabulary) + "\n",
                                         encoding="utf-8")
        files["vocabulary"] = VOCAB_FILE
    fields: dict[str, Any] = {"network": network, "loader_files": files}
    if source.classifier:
        first = network.model.inputs[0]
        fields["input"] = {"name": first.name, "dtype": str(first.dtype), "shape": [None, *first.shape[1:]],
                           "note": text_input_note(first, files)}
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


def raw_runner(model: Any) -> Runner:
    """A Keras model of named inputs and outputs as a runner, outputs as they are (strings go in as tf strings)."""
    return lambda batch: {k: _numpy(v) for k, v in model(_tensors(batch), training=False).items()}


def keras_table_runner(model: Any) -> Runner:
    """A Keras table model as a runner of float32 outputs (strings go in as tf strings)."""
    run = raw_runner(model)
    return lambda batch: {k: v.astype(np.float32) for k, v in run(batch).items()}


def _spec(bundle: Bundle) -> Any:
    from tfpilot.spec import as_table_spec

    return as_table_spec(bundle.input_spec, bundle.class_names)


def saved_model_runner(path: Path, bundle: Bundle) -> Runner:
    """The SavedModel's ``serving_default`` signature: a table model's heads by key, a classifier's
    ``probabilities`` as its one head."""
    import tensorflow as tf

    from tfpilot.models.ydf_ops import ensure_ops

    ensure_ops()  # a SavedModel with decision forests calls YDF's ops
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    heads = _spec(bundle).output_keys
    names = heads if bundle.input_spec.kind == "table" else ["probabilities"]

    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = signature(**_tensors(batch))
        return {k: out[n].numpy().astype(np.float32) for k, n in zip(heads, names)}

    return run


def strings_to_numbers(file: Path, bundle: Bundle) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The artifact's ``preprocess.keras`` (see :func:`load_loader_preprocess`) over a batch's string
    columns; the identity for an artifact without one."""
    preprocess = load_loader_preprocess(file, bundle)
    if preprocess is None:
        return dict
    if not isinstance(preprocess.model.input, dict):  # a text classifier's one input
        key = _spec(bundle).input_keys[0]
        return lambda batch: {**batch, key: preprocess(batch[key])}
    run, strings = raw_runner(preprocess.model), list(preprocess.model.input)
    return lambda batch: {**batch, **run({k: batch[k] for k in strings})}


def make_interpreter(model_path: str | Path, num_threads: int | None = None) -> Any:
    """A LiteRT interpreter (``ai_edge_litert``), or ``tf.lite.Interpreter`` without it."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - LiteRT is a dependency
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=str(model_path), num_threads=num_threads)


def tflite_runner(path: Path, bundle: Bundle, num_threads: int | None = None) -> Runner:
    """The ``.tflite`` file's ``serving_default`` signature, after ``preprocess.keras`` (strings -> numbers)."""
    file = path if path.is_file() else path / "model.tflite"
    prepare = strings_to_numbers(file, bundle)
    runner = make_interpreter(file, num_threads).get_signature_runner("serving_default")
    details = runner.get_input_details()
    lock = threading.Lock()

    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = prepare(batch)
        feed = {k: quantized(np.asarray(x[k]), d) for k, d in details.items()}
        with lock:
            out = runner(**feed)
        return {k: dequantized(np.asarray(v), runner.get_output_details()[k]) for k, v in out.items()}

    return run


def quantized(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``x`` as a TFLite input of ``detail`` takes it (float values quantized for an int8 input)."""
    scale, zero = detail["quantization"]
    if scale and np.dtype(detail["dtype"]) in (np.int8, np.uint8) and x.dtype != detail["dtype"]:
        info = np.iinfo(detail["dtype"])
        x = np.clip(np.round(x.astype(np.float32) / scale + zero), info.min, info.max)
    return np.ascontiguousarray(x.astype(detail["dtype"], copy=False))


def dequantized(out: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """A TFLite output of ``detail`` as float32 values (a copy)."""
    scale, zero = detail["quantization"]
    return ((out.astype(np.float32) - zero) * scale if scale else out).astype(np.float32).copy()


def onnx_runner(path: Path, bundle: Bundle, threads: int | None = None) -> Runner:
    """The ONNX model with ONNX Runtime (CPU, ``threads`` intra-op threads), after ``preprocess.keras``
    (strings -> numbers); its outputs by head key."""
    import onnxruntime as ort

    file = path if path.is_file() else path / "model.onnx"
    prepare = strings_to_numbers(file, bundle)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    inputs, spec = session.get_inputs(), _spec(bundle)
    keys = [i.name for i in inputs] if len(inputs) > 1 else spec.input_keys  # one input: the spec's one key
    names = [o.name for o in session.get_outputs()]
    heads = names if set(names) == set(spec.output_keys) else sorted(spec.output_keys)  # tf2onnx: in key order

    def run(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = prepare(batch)
        feed = {i.name: np.asarray(x[k]).astype(ONNX_NUMPY.get(i.type, np.float32), copy=False)
                for i, k in zip(inputs, keys)}
        return {k: np.asarray(v, dtype=np.float32) for k, v in zip(heads, session.run(None, feed))}

    return run


class OneHead:
    """A classifier's artifact as the callable the ``Predictor`` runs (its one input's batch -> its one
    head's probabilities), over the artifact's named :data:`Runner`.

    Args:
        runner: the named runner (e.g. :func:`onnx_runner`).
        path: the artifact.
        bundle: its bundle.
    """

    def __init__(self, runner: Runner, path: Path, bundle: Bundle) -> None:
        self.runner, self.path, self.bundle, self.format = runner, path, bundle, bundle.format
        spec = _spec(bundle)
        self.key, self.head, self.text = spec.input_keys[0], spec.output_keys[0], spec.inputs[0].kind == "text"

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        return self.runner({self.key: text_batch(x) if self.text else np.asarray(x)})[self.head]


ONNX_NUMPY = {"tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
               "tensor(int64)": np.int64, "tensor(float)": np.float32, "tensor(float16)": np.float16}


def table_runner(backend: str, path: Path, bundle: Bundle) -> Runner:
    """The runner of a table model's artifact for ``backend`` (keras, saved_model, tflite or onnx)."""
    if backend == "keras":
        from tfpilot.runs import load_model

        file = path if path.is_file() else path / "model.keras"
        return keras_table_runner(load_model(file))
    if backend == "saved_model":
        return saved_model_runner(path, bundle)
    if backend == "tflite":
        return tflite_runner(path, bundle)
    if backend == "onnx":
        return onnx_runner(path, bundle)
    raise UserError(f"table models run on keras, saved_model, tflite or onnx artifacts, not {backend!r}")


def one_head_runner(model: Callable[..., Any], spec: Any) -> Runner:
    """A classifier's callable (its one input -> probabilities) as a :data:`Runner` of its one input and head."""
    from tfpilot.metrics import to_probabilities

    (key,), (head,) = spec.input_keys, spec.output_keys
    return lambda batch: {head: to_probabilities(np.asarray(model(batch[key], training=False)))}


def keras_runner(model: Any, spec: Any) -> Runner:
    """A Keras model in memory as a :data:`Runner` over ``spec``'s named inputs and heads."""
    return keras_table_runner(model) if isinstance(model.input, dict) else one_head_runner(KerasModel(model), spec)


def named_runner(backend: str, path: Path, bundle: Bundle) -> Runner:
    """Any artifact as a :data:`Runner` over its spec's named inputs and heads: a table model's
    through :func:`table_runner`, a classifier's around its backend's callable."""
    from tfpilot.export.backends import BACKENDS

    if bundle.input_spec.kind == "table":
        return table_runner(backend, path, bundle)
    return one_head_runner(BACKENDS.get(backend).open(path, bundle), _spec(bundle))


def run_batched(runner: Runner, x: dict[str, np.ndarray], batch_size: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """``runner`` over every row of ``x``, ``batch_size`` rows at a time."""
    n = len(next(iter(x.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, n, batch_size):
        for k, v in runner({k: v[i : i + batch_size] for k, v in x.items()}).items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}
