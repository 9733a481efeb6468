"""The ``onnx`` format (tf2onnx, as Keras 3's ONNX export) and the ONNX Runtime backend, for
classifiers and table models alike (inputs by name; a table model's heads by key).

The model is converted in float32 (see :func:`~tfpilot.export.source.float32_model`;
ONNX Runtime rejects the mixed bf16/fp16 graph). The bundle is stored in the model's
``metadata_props`` under ``tfpilot_bundle``, and the class names alone under
``class_names`` (JSON list), so ``onnx.load(f).metadata_props`` shows them.

Images go in as uint8 (N, H, W, C) at the model's size, preprocessing inside. Text and
category inputs: ONNX has no string ops, so -- as for TFLite -- the file takes token ids /
lookups and tfpilot's loader applies ``preprocess.keras`` (+ ``vocab.txt``) beside it.

Example:
    >>> import onnxruntime as ort
    >>> session = ort.InferenceSession("runs/mnist/export/onnx/model.onnx")  # doctest: +SKIP
    >>> {p.key: p.value for p in __import__("onnx").load("model.onnx").metadata_props}["class_names"]  # doctest: +SKIP
    '["0", "1", ...]'
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any


from tfpilot.errors import UserError
from tfpilot.export.backends import Backend, bundle_beside, register_backend
from tfpilot.export.bundle import METADATA_KEY, Bundle
from tfpilot.export.formats import register_exporter
from tfpilot.export.runtime import OneHead, numeric_network, onnx_runner

FILENAME = "model.onnx"



def write_metadata(path: Path, values: dict[str, str]) -> None:
    """Set ``metadata_props`` entries of the ONNX model at ``path`` (in place)."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props}
    props.update(values)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


@register_exporter("onnx", backend="onnx", description="ONNX (tf2onnx), for ONNX Runtime")
def export_onnx(source: Any, folder: Path) -> Bundle:
    """Convert the model to ONNX in ``folder`` with the bundle in its metadata."""
    import tensorflow as tf
    from keras.src.export.tf2onnx_lib import patch_tf2onnx
    from keras.src.utils.module_utils import tf2onnx
    from tf2onnx import tf_loader

    network, fields = numeric_network(source, folder)
    path = folder / FILENAME
    signature = network.signature()
    patch_tf2onnx()  # numpy 2 support, as Keras' own ONNX export does
    # tf2onnx warns about np.object under numpy 2 (harmless) and prints.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*np.object")
        try:
            # Only the signature's inputs are inputs: tf2onnx's from_function would make the constants
            # the model captures (e.g. a Normalization layer's mean) inputs of the ONNX graph too.
            traced = tf.function(network, input_signature=signature).get_concrete_function()
            inputs = [t.name for t in traced.inputs[: len(signature)]]  # the captured values follow
            outputs = [t.name for t in traced.outputs]
            names = dict(zip(inputs, (s.name for s in signature)))
            if isinstance(traced.structured_outputs, dict):  # a table model's heads, flattened in key order
                names.update(zip(outputs, sorted(traced.structured_outputs)))
            graph = tf_loader.from_function(traced, inputs, outputs)
            tf2onnx.convert.from_graph_def(graph, input_names=inputs, output_names=outputs, tensors_to_rename=names,
                                           output_path=str(path))
        except Exception as exc:
            raise UserError(
                f"ONNX conversion of {network.model.name!r} failed ({type(exc).__name__}: {str(exc)[-400:]}). "
                "Export it as saved_model or tflite instead."
            ) from exc
    bundle = source.bundle("onnx", FILENAME, precision="float32", **fields)
    write_metadata(path, {METADATA_KEY: bundle.to_json(), "class_names": json.dumps(bundle.class_names)})
    bundle.write(folder)
    return bundle


def read_bundle(path: Path) -> Bundle:
    """The bundle in the model's ``metadata_props`` (else bundle.json beside it)."""
    import onnx

    file = path if path.is_file() else path / FILENAME
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:
        raise UserError(f"{file} is not a readable ONNX model: {exc}") from None
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY in props:
        return Bundle.from_json(props[METADATA_KEY])
    return bundle_beside(file)


def open_onnx(path: Path, bundle: Bundle, threads: int | None = None) -> OneHead:
    """A classifier's ONNX model as the ``Predictor``'s callable (see :func:`~tfpilot.export.runtime.onnx_runner`)."""
    return OneHead(onnx_runner(path, bundle, threads), path if path.is_file() else path / FILENAME, bundle)


#: The former name of :func:`open_onnx`.
OnnxRunner = open_onnx

register_backend("onnx", Backend(FILENAME, (".onnx",), open_onnx, read_bundle), description="ONNX Runtime")
