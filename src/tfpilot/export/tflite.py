"""TFLite formats (run by the LiteRT interpreter) and their backend, for classifiers and table
models alike (one ``serving_default`` signature over the model's named inputs and heads).

* ``tflite`` -- float32.
* ``tflite-fp16`` -- float16 weights (half the size), float32 compute.
* ``tflite-dynamic`` -- dynamic-range quantization: int8 weights, float activations.
* ``tflite-int8`` -- full integer: int8 weights and activations (builtin int8 ops only),
  calibrated on a sample of the training split (a representative dataset of named inputs,
  one per signature input). Raw uint8 pixels stay uint8; the outputs are dequantized to
  float32 by final ops.

Every file carries its bundle as a flatbuffer metadata entry ``tfpilot_bundle`` (see
:func:`read_embedded_bundle`), and ``bundle.json`` beside it. Image artifacts take
uint8 (N, H, W, C) at the model's size. Text and category inputs take token ids / lookups:
TFLite's builtin ops hold no strings, so the string layers are saved beside as
``preprocess.keras`` (+ a text classifier's ``vocab.txt``) and tfpilot's loader applies them
(no Select TF ops needed, so the plain LiteRT runtime runs the file). Models whose layers only convert with a
static batch (Keras 3 LSTM/GRU) are converted with batch size 1, which the runner feeds one
example at a time; full-integer int8 refuses them (TF's calibrator crashes on that graph).

Example:
    >>> import tfpilot
    >>> p = tfpilot.load("runs/mnist/export/tflite-int8/model.tflite")  # doctest: +SKIP
    >>> p.predict_proba(images).shape  # doctest: +SKIP
    (8, 10)
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.errors import UserError
from tfpilot.export.backends import Backend, bundle_beside, register_backend
from tfpilot.export.bundle import METADATA_KEY, Bundle
from tfpilot.export.formats import register_exporter
from tfpilot.export.runtime import dequantized, load_loader_preprocess, make_interpreter, numeric_network, quantized

FILENAME = "model.tflite"


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - LiteRT is a dependency; TF ships the same schema
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def embed_metadata(model_bytes: bytes, key: str, payload: bytes) -> bytes:
    """Return ``model_bytes`` with a metadata entry ``key`` holding ``payload`` (replacing one)."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model_bytes, 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, dtype=np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = key
    entry.buffer = len(model.buffers) - 1
    keep = [m for m in (model.metadata or []) if _text(m.name) != key]
    model.metadata = keep + [entry]
    builder = flatbuffers.Builder(len(model_bytes) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata(model_bytes: bytes, key: str) -> bytes | None:
    """The payload of metadata entry ``key`` of a TFLite model, or None."""
    schema = _schema()
    model = schema.Model.GetRootAs(model_bytes, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if _text(entry.Name()) == key:
            return model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


def _text(name: Any) -> str:
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def read_embedded_bundle(path: str | Path) -> Bundle | None:
    """The bundle inside a ``.tflite`` file, or None if it has none."""
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite model (no TFL3 identifier): re-export it with tfpilot export")
    try:
        payload = read_metadata(data, METADATA_KEY)
    except Exception as exc:  # a truncated flatbuffer raises struct/index errors
        raise UserError(f"{path} is a damaged TFLite file ({type(exc).__name__}): re-export it") from None
    return Bundle.from_json(payload) if payload else None


def read_bundle(path: Path) -> Bundle:
    file = path if path.is_file() else path / FILENAME
    return read_embedded_bundle(file) or bundle_beside(file)


# -- export -------------------------------------------------------------------------------
Configure = Callable[[Any, Any], str]


def _fp32(converter: Any, source: Any) -> str:
    return "float32"


def _fp16(converter: Any, source: Any) -> str:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return "float16 weights"


def _dynamic(converter: Any, source: Any) -> str:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return "int8 weights, float activations"


def _int8(converter: Any, source: Any) -> str:
    import tensorflow as tf

    samples = source.network().feed(source.calibration_data())
    n = len(next(iter(samples.values())))

    def representative() -> Iterator[dict[str, np.ndarray]]:
        for i in range(n):
            yield {k: v[i : i + 1] for k, v in samples.items()}

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return f"int8 weights and activations ({n} calibration examples)"


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Capture the process' stderr (file descriptor 2, where the converter's C++ and MLIR
    diagnostics go) into the yielded list, instead of the terminal."""
    import os
    import sys
    import tempfile

    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def convert(network: Any, configure: Configure, source: Any, batch: int | None = None) -> tuple[bytes, str]:
    """TFLite bytes of a float32 :class:`~tfpilot.export.source.Network`, with ``configure`` setting the options.

    The network is written out as a SavedModel signature ``serving_default`` first (Keras'
    ``ExportArchive``, as ``TFLiteConverter.from_keras_model`` does), so the file keeps the input
    names (and a table model's head names) and takes inputs of any batch size, or ``batch``.
    """
    import tempfile

    import keras
    import tensorflow as tf

    # The converter prints its temporary SavedModel and its diagnostics, and warns that the
    # (uint8, unquantized) raw-pixel input has no statistics -- by design: it is cast inside.
    with tempfile.TemporaryDirectory(prefix="tfpilot-tflite-") as tmp, contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings(), captured_stderr() as log:
        warnings.filterwarnings("ignore")
        archive = keras.export.ExportArchive()
        archive.track(network.model)
        archive.add_endpoint("serving_default", network, input_signature=network.signature(batch))
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        precision = configure(converter, source)
        try:
            data, error = converter.convert(), None
        except Exception as exc:  # noqa: BLE001 -- the converter raises many kinds; reported below
            data, error = b"", exc
    if error is not None:
        errors = [ln for ln in log if "error:" in ln] or str(error).splitlines()
        raise UserError(
            f"TFLite could not convert {network.model.name!r} ({type(error).__name__}): {_first_lines(errors)} "
            "Export it as saved_model or onnx instead."
        ) from error
    return data, precision


def convert_any_batch(network: Any, configure: Configure, source: Any) -> tuple[bytes, str, bool]:
    """Convert with a dynamic batch; if the converter refuses (Keras 3 LSTM/GRU: "TensorListReserve
    requires element_shape to be static"), convert with a batch of 1 instead.

    Returns:
        ``(tflite_bytes, precision, batch_one)``.
    """
    try:
        return (*convert(network, configure, source), False)
    except ValueError as first:
        if configure is _int8 and "TensorList" not in str(first):
            raise
        if configure is _int8:  # TF 2.21's calibrator segfaults on the batch-1 loop of recurrent layers
            raise UserError(
                f"TFLite cannot make {network.model.name!r} full-integer int8: its layers (recurrent ones, "
                "typically) only convert with a fixed batch size, and TFLite's calibrator cannot run that graph. "
                f"Use tflite-dynamic (int8 weights) or tflite-fp16 instead. (Converter: {first})"
            ) from None
        try:
            return (*convert(network, configure, source, batch=1), True)
        except ValueError:
            raise first from None


def _first_lines(lines: list[str], n: int = 2) -> str:
    """The last ``n`` distinct diagnostics, without MLIR's ``loc(...)`` prefixes."""
    out: list[str] = []
    for line in lines:
        text = line.split("error:", 1)[-1].strip()
        if text and text not in out:
            out.append(text)
    return " ".join(out[-n:]) if out else "(no message)"


def _export(fmt: str, configure: Configure) -> Callable[[Any, Path], Bundle]:
    def export_tflite(source: Any, folder: Path) -> Bundle:
        network, fields = numeric_network(source, folder)
        data, precision, batch_one = convert_any_batch(network, configure, source)
        bundle = source.bundle(fmt, FILENAME, precision=precision, **fields)
        if batch_one and source.classifier:
            bundle.input["shape"] = [1, *bundle.input["shape"][1:]]
            bundle.input["note"] = bundle.input["note"].replace("(N, ", "(1, ", 1)
        if batch_one:
            bundle.input["note"] = bundle.input.get("note", "") + (
                " -- one example per call: the batch size is fixed at 1 (this model only converts to builtin "
                "TFLite ops with a static batch, e.g. for recurrent layers)")
        (folder / FILENAME).write_bytes(embed_metadata(data, METADATA_KEY, bundle.to_json().encode("utf-8")))
        bundle.write(folder)
        return bundle

    export_tflite.__name__ = f"export_{fmt.replace('-', '_')}"
    export_tflite.__doc__ = f"Convert the model to {fmt} ({configure.__name__.strip('_')}) in ``folder``."
    return export_tflite


register_exporter("tflite", backend="tflite", description="TFLite, float32")(_export("tflite", _fp32))
register_exporter("tflite-fp16", backend="tflite", description="TFLite, float16 weights")(_export("tflite-fp16", _fp16))
register_exporter("tflite-dynamic", backend="tflite",
                  description="TFLite, dynamic-range int8 weights")(_export("tflite-dynamic", _dynamic))
register_exporter("tflite-int8", backend="tflite",
                  description="TFLite, full integer int8 (calibrated; accuracy-gated)")(_export("tflite-int8", _int8))


# -- runtime ------------------------------------------------------------------------------
class TFLiteRunner:
    """Runs a ``.tflite`` file on prepared batches (thread-safe; resizes to the batch).

    Args:
        path: the ``.tflite`` file (or its folder).
        bundle: its bundle.
        num_threads: interpreter threads (default: the runtime's choice).
    """

    def __init__(self, path: Path, bundle: Bundle, num_threads: int | None = None) -> None:
        self.path = path if path.is_file() else path / FILENAME
        self.bundle = bundle
        self.format = bundle.format
        self.preprocess = load_loader_preprocess(self.path, bundle)
        try:
            self.interpreter = make_interpreter(self.path, num_threads)
        except (ValueError, RuntimeError) as exc:
            raise UserError(f"{self.path}: the TFLite interpreter cannot load it: {exc}") from None
        self._lock = threading.Lock()
        self._shape: tuple[int, ...] | None = None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        batch = int(self._input["shape_signature"][0]) if len(self._input["shape_signature"]) else -1
        #: the batch size the file was converted with, when it is not dynamic
        self.fixed_batch = batch if batch > 0 else None

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        if self.preprocess is not None:
            x = self.preprocess(x)
        x = quantized(np.asarray(x), self._input)  # int8-input files take quantized values
        if self.fixed_batch and len(x) != self.fixed_batch:  # e.g. batch-1 recurrent models
            n = self.fixed_batch
            parts = [self._run(np.resize(x[i : i + n], (n, *x.shape[1:])))[: len(x[i : i + n])]
                     for i in range(0, len(x), n)]
            return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._shape != x.shape:
                self.interpreter.resize_tensor_input(self._input["index"], list(x.shape), strict=False)
                self.interpreter.allocate_tensors()
                self._input = self.interpreter.get_input_details()[0]
                self._output = self.interpreter.get_output_details()[0]
                self._shape = x.shape
            self.interpreter.set_tensor(self._input["index"], x)
            self.interpreter.invoke()
            return dequantized(self.interpreter.get_tensor(self._output["index"]), self._output)


register_backend("tflite", Backend(FILENAME, (".tflite",), TFLiteRunner, read_bundle),
                 description="TFLite / LiteRT interpreter")
