"""Exporting a table model (several named inputs, a head per output).

Formats (``RUN/export/<format>/``, each with ``bundle.json``; the bundle's ``input_spec`` is
the model's :class:`~tfpilot.spec.TableSpec`):

* ``keras`` -- ``model.keras`` without the optimizer state.
* ``saved_model`` -- signatures with *named* inputs and outputs, for TF Serving:
  ``serving_default`` takes each column by its key -- images as uint8 (N, H, W, C) of any
  size (resized inside), texts and categories as strings (N,), numbers as float32 (N,)
  (NaN = missing) -- and returns each head by its key (category: probabilities (N, C);
  binary: P(classes[1]) (N,); number: values (N,)) plus ``<key>_label``, the top class
  name, for class heads. ``serving_bytes`` (models with images) takes encoded image
  files (N,) instead of pixels -- what TF Serving's ``{"b64": ...}`` sends. ``metadata``
  returns the bundle.
* ``tflite``, ``tflite-fp16``, ``tflite-dynamic`` -- the numeric part of the model:
  TFLite's builtin ops hold no strings, so the string layers (each text column's
  tokeniser, each category's ``StringLookup``) are cut off and saved beside as
  ``preprocess.keras``, which tfpilot's loader runs first (as for text classifiers).
  The file's signature ``serving_default`` takes the images and numbers raw and the
  string columns as the token ids / one-hot or index vectors ``preprocess.keras`` makes.

Not for table models yet: ``tflite-int8`` (calibrating several inputs) and ``onnx``;
``export`` reports them as failed with that reason and writes the rest.

Example:
    >>> from tfpilot.export.table_export import export_table
    >>> result = export_table("runs/multitask-table", ["saved_model", "tflite"])  # doctest: +SKIP
    >>> [a.format for a in result.artifacts]  # doctest: +SKIP
    ['saved_model', 'tflite']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfpilot.export.bundle import BUNDLE_FILE, METADATA_KEY, Bundle, describe_preprocessing
from tfpilot.spec import TableSpec

TABLE_FORMATS = ("keras", "saved_model", "tflite", "tflite-fp16", "tflite-dynamic")
#: Formats refused for table models, with the reason.
UNSUPPORTED = {
    "tflite-int8": "full-integer int8 is not available for table models yet (several inputs to calibrate); "
                   "use tflite-dynamic (int8 weights) or tflite-fp16",
    "onnx": "ONNX export is not available for table models yet; use saved_model or tflite",
}
PREPROCESS_FILE = "preprocess.keras"


def _string_keys(spec: TableSpec) -> list[str]:
    return [c.key for c in spec.inputs if c.kind in ("text", "category")]


def _boundary_layer(model: Any, spec: TableSpec, key: str) -> Any:
    kind = spec.input(key).kind
    return model.get_layer(f"{key}_tokens" if kind == "text" else f"{key}_lookup")


def split_table_model(model: Any, spec: TableSpec) -> tuple[Any | None, Any]:
    """``(preprocess, network)``: the string layers of each text/category column, and the
    numeric rest of the model (string columns enter it as the tensors the string layers make).

    ``preprocess`` is None when the model has no string input.
    """
    import keras

    strings = _string_keys(spec)
    if not strings:
        return None, model
    boundary = {k: _boundary_layer(model, spec, k).output for k in strings}
    preprocess = keras.Model({k: model.input[k] for k in strings}, boundary, name="preprocess")
    # The numeric network takes a list in the order of spec.input_keys: raw images and
    # numbers, and each string column as its string layer's output (dense, tf-idf too).
    cut = [boundary.get(k, model.input[k]) for k in spec.input_keys]
    inner = keras.Model(cut, model.output, name=f"{model.name}_inner")
    fresh = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=f"{k}_value")
             for k, t in zip(spec.input_keys, cut)]
    return preprocess, keras.Model(fresh, inner(fresh), name=f"{model.name}_network")


def _io_description(spec: TableSpec, numeric: bool = False, network: Any = None) -> tuple[dict, dict]:
    inputs = {}
    for c in spec.inputs:
        if numeric and network is not None and c.kind in ("text", "category"):
            t = network.inputs[spec.input_keys.index(c.key)]
            inputs[c.key] = {"column": c.name, "kind": c.kind, "dtype": str(t.dtype), "shape": [None, *t.shape[1:]],
                             "note": f"{PREPROCESS_FILE}'s output for this column (tfpilot's loader runs it)"}
        elif c.kind == "image":
            inputs[c.key] = {"column": c.name, "kind": "image", "dtype": "uint8",
                             "shape": [None, None, None, c.shape[2]] if not numeric else [None, *c.shape],
                             "note": "raw pixels" + (" of any size, resized inside" if not numeric else "")}
        else:
            inputs[c.key] = {"column": c.name, "kind": c.kind, "dtype": c.dtype, "shape": [None],
                             "note": "NaN = missing" if c.kind == "number" else "raw strings"}
    outputs = {}
    for o in spec.outputs:
        if o.kind == "category":
            outputs[o.key] = {"column": o.name, "kind": o.kind, "dtype": "float32", "shape": [None, len(o.classes)],
                              "classes": list(o.classes), "meaning": "class probabilities (softmax)"}
        elif o.kind == "binary":
            outputs[o.key] = {"column": o.name, "kind": o.kind, "dtype": "float32", "shape": [None],
                              "classes": list(o.classes), "meaning": f"P({o.classes[1]!r}) (sigmoid)"}
        else:
            outputs[o.key] = {"column": o.name, "kind": o.kind, "dtype": "float32", "shape": [None],
                              "meaning": "the predicted value, in the column's units"}
    return inputs, outputs


def _bundle(fmt: str, file: str, model: Any, spec: TableSpec, run_path: Path | None, precision: str,
            numeric: bool = False, network: Any = None, where: str = "inside the artifact") -> Bundle:
    inputs, outputs = _io_description(spec, numeric, network)
    steps = [{**s, "where": where if s["step"] in ("TextEncoder", "StringLookup") else "inside the artifact"}
             for s in describe_preprocessing(model)]
    return Bundle(format=fmt, file=file, class_names=[], input_spec=spec,
                  input={"signature": "serving_default", "inputs": inputs},
                  output={"signature": "serving_default", "outputs": outputs}, preprocessing=steps,
                  loader_files={"preprocess": PREPROCESS_FILE} if where != "inside the artifact" else {},
                  precision=precision, source_run=str(run_path) if run_path else None, model="multitask")


# -- the formats ---------------------------------------------------------------------------------
def _keras(model: Any, spec: TableSpec, folder: Path, run_path: Path | None) -> Bundle:
    model.save(folder / "model.keras")
    bundle = _bundle("keras", "model.keras", model, spec, run_path, "as trained")
    bundle.write(folder)
    return bundle


def _serving_module(model: Any, spec: TableSpec, bundle: Bundle, folder: Path) -> Any:
    import tensorflow as tf

    from tfpilot.data.images import decode_and_resize
    from tfpilot.export.saved_model import _resize_batch

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="tfpilot_table_serving")
            self.model = model
            self.bundle_json = tf.constant(bundle.to_json())
            self.bundle_asset = tf.saved_model.Asset(str(folder / BUNDLE_FILE))
            self.classes = {o.key: tf.constant(list(o.classes)) for o in spec.outputs if o.classes}

        def outputs(self, x: dict[str, Any]) -> dict[str, Any]:
            out = self.model(x, training=False)
            result = {}
            for o in spec.outputs:
                v = tf.cast(out[o.key], tf.float32)
                result[o.key] = v
                if o.kind == "category":
                    result[f"{o.key}_label"] = tf.gather(self.classes[o.key], tf.argmax(v, axis=-1))
                elif o.kind == "binary":
                    result[f"{o.key}_label"] = tf.gather(self.classes[o.key], tf.cast(v > 0.5, tf.int32))
            return result

    module = Serving()

    def signature(image_dtype: Any) -> list[Any]:
        specs = []
        for c in spec.inputs:
            if c.kind == "image":
                shape = [None, None, None, c.shape[2]] if image_dtype == tf.uint8 else [None]
                specs.append(tf.TensorSpec(shape, image_dtype, name=c.key))
            else:
                specs.append(tf.TensorSpec([None], tf.float32 if c.kind == "number" else tf.string, name=c.key))
        return specs

    keys = spec.input_keys

    def pixels(args: Sequence[Any]) -> dict[str, Any]:
        x = dict(zip(keys, args))
        for c in spec.inputs:
            if c.kind == "image":
                x[c.key] = _resize_batch(x[c.key], c.shape[:2])
        return x

    def encoded(args: Sequence[Any]) -> dict[str, Any]:
        x = dict(zip(keys, args))
        for c in spec.inputs:
            if c.kind == "image":
                h, w, ch = c.shape
                x[c.key] = tf.map_fn(lambda b, h=h, w=w, ch=ch: decode_and_resize(b, ch, (h, w)), x[c.key],
                                     fn_output_signature=tf.TensorSpec([h, w, ch], tf.uint8))
        return x

    serve = tf.function(lambda *args: module.outputs(pixels(args)), input_signature=signature(tf.uint8))
    module.serve = serve
    if any(c.kind == "image" for c in spec.inputs):
        module.serve_bytes = tf.function(lambda *args: module.outputs(encoded(args)),
                                         input_signature=signature(tf.string))
    module.metadata = tf.function(lambda: {"bundle": module.bundle_json, "bundle_file": module.bundle_asset.asset_path},
                                  input_signature=[])
    return module


def _saved_model(model: Any, spec: TableSpec, folder: Path, run_path: Path | None) -> Bundle:
    import tensorflow as tf

    bundle = _bundle("saved_model", ".", model, spec, run_path, "float32")
    bundle.output["outputs"].update({f"{o.key}_label": {"column": o.name, "dtype": "string", "shape": [None],
                                                       "meaning": "the top class name"}
                                     for o in spec.outputs if o.classes})
    bundle.input["signatures"] = {"serving_default": "images as uint8 pixels",
                                  "serving_bytes": "images as encoded files (JPEG/PNG/BMP/GIF)",
                                  "metadata": "the bundle"}
    bundle.write(folder)
    module = _serving_module(model, spec, bundle, folder)
    signatures = {"serving_default": module.serve, "metadata": module.metadata}
    if hasattr(module, "serve_bytes"):
        signatures["serving_bytes"] = module.serve_bytes
    tf.saved_model.save(module, str(folder), signatures=signatures)
    return bundle


def _tflite(fmt: str, model: Any, spec: TableSpec, folder: Path, run_path: Path | None) -> Bundle:
    import tensorflow as tf

    from tfpilot.export.tflite import _dynamic, _fp16, _fp32, embed_metadata

    from tfpilot.export.source import float32_model

    preprocess, network = split_table_model(model, spec)  # cut first: float32 clones share the string layers
    network = float32_model(network)
    where = f"beside it ({PREPROCESS_FILE}, run by tfpilot's loader)" if preprocess is not None else "inside the artifact"
    configure = {"tflite": _fp32, "tflite-fp16": _fp16, "tflite-dynamic": _dynamic}[fmt]
    keys = spec.input_keys

    inputs = network.inputs if preprocess is not None else [network.input[k] for k in keys]
    signature = [tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=k) for k, t in zip(keys, inputs)]

    def serve(*args: Any) -> dict[str, Any]:
        out = network(list(args) if preprocess is not None else dict(zip(keys, args)), training=False)
        return {k: tf.cast(v, tf.float32) for k, v in out.items()}

    data, precision = convert_network(network, serve, signature, configure)
    bundle = _bundle(fmt, "model.tflite", model, spec, run_path, precision, numeric=True, network=network, where=where)
    if preprocess is not None:
        preprocess.save(folder / PREPROCESS_FILE)
    (folder / "model.tflite").write_bytes(embed_metadata(data, METADATA_KEY, bundle.to_json().encode("utf-8")))
    bundle.write(folder)
    return bundle


def convert_network(network: Any, fn: Any, input_signature: list[Any], configure: Any) -> tuple[bytes, str]:
    """TFLite bytes of ``fn`` (named inputs, a dict of outputs) over ``network``'s weights.

    The function is written out as a SavedModel signature first (Keras' ``ExportArchive``
    tracks every variable), then converted from it, so the file holds the weights as
    constants and keeps the input and output names.
    """
    import contextlib
    import io
    import tempfile
    import warnings

    import keras
    import tensorflow as tf

    from tfpilot.export.tflite import _first_lines, captured_stderr

    with tempfile.TemporaryDirectory(prefix="tfpilot-tflite-") as tmp, contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings(), captured_stderr() as lines:
        warnings.filterwarnings("ignore")
        archive = keras.export.ExportArchive()
        archive.track(network)
        archive.add_endpoint("serving_default", fn, input_signature=input_signature)
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        precision = configure(converter, None)
        try:
            data, error = converter.convert(), None
        except Exception as exc:  # noqa: BLE001 -- the converter raises many kinds; reported below
            data, error = b"", exc
    if error is not None:
        errors = [ln for ln in lines if "error:" in ln] or str(error).splitlines()
        raise ValueError(f"TFLite could not convert the table model ({type(error).__name__}): "
                         f"{_first_lines(errors)} Export it as saved_model instead.") from error
    return data, precision


def table_formats(formats: str | Sequence[str]) -> list[str]:
    """The formats to write: ``all`` means every format available for table models.

    Example:
        >>> table_formats("all")
        ['keras', 'saved_model', 'tflite', 'tflite-fp16', 'tflite-dynamic']
    """
    from tfpilot.export.exporter import resolve_formats

    names = [formats] if isinstance(formats, str) else list(formats)
    wanted = [n for n in names if n != "all"]
    out = resolve_formats(wanted) if wanted else []
    if "all" in names:
        out = [f for f in TABLE_FORMATS if f not in out] + out
    order = {f: i for i, f in enumerate((*TABLE_FORMATS, *UNSUPPORTED))}
    return sorted(out, key=lambda f: order.get(f, len(order)))


def export_table(run_dir: str | Path, formats: str | Sequence[str] = "all", out_dir: str | Path | None = None) -> Any:
    """Export a table run to ``formats`` (each into ``out_dir/<format>``, default ``RUN/export``).

    Returns:
        an :class:`~tfpilot.export.exporter.ExportResult`; formats not available for table
        models are in its ``failed`` with the reason.

    Raises:
        ExportError: when some formats could not be written (the result holds the rest).
    """
    from tfpilot.export.exporter import ExportError, ExportResult, _written, write_artifact
    from tfpilot.export.source import float32_model, inference_model
    from tfpilot.runs import Run

    run = Run(run_dir)
    if not run.model_path.is_file():
        raise FileNotFoundError(f"{run.path} has no model.keras: give a finished tfpilot run directory")
    spec = TableSpec.from_dict(run.labels["input"])
    names = table_formats(formats)
    trained = inference_model(run.load_model())
    numeric = float32_model(trained) if "saved_model" in names else None
    out = Path(out_dir) if out_dir is not None else run.path / "export"
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out)
    for name in names:
        if name in UNSUPPORTED:
            result.failed[name] = UNSUPPORTED[name]
            continue

        def build(folder: Path, name: str = name) -> Bundle:
            if name == "keras":
                return _keras(trained, spec, folder, run.path.resolve())
            if name == "saved_model":
                return _saved_model(numeric, spec, folder, run.path.resolve())
            return _tflite(name, trained, spec, folder, run.path.resolve())

        artifact = write_artifact(name, out / name, build, result)
        if artifact is not None:
            result.artifacts.append(artifact)
    if result.failed:
        raise ExportError(" ".join(f"{k}: {v}" for k, v in result.failed.items()) + _written(result), result)
    return result
