"""The ``saved_model`` format: a SavedModel for TensorFlow Serving (and ``tf.saved_model.load``).

Signatures (``saved_model_cli show --dir DIR --all`` lists them):

* ``serving_default`` -- images: ``images`` uint8 (N, H, W, C) of *any* H x W (resized
  inside with the same bilinear + antialias resize as training); text: ``text`` string (N,).
  Outputs ``probabilities`` (N, C) float32, ``class_ids`` (N,) int64, ``classes`` (N,)
  string (the top-1 class name) and ``scores`` (N,) float32.
* ``serving_bytes`` (images only) -- ``image_bytes`` string (N,): encoded JPEG/PNG/BMP/GIF
  files, decoded inside; TF Serving's REST API takes them as ``{"b64": ...}``.
* ``metadata`` -- no inputs; returns ``class_names`` and ``bundle`` (the bundle's JSON).

``assets/bundle.json`` and ``assets/labels.txt`` are registered SavedModel assets. The
network computes in float32 (see :func:`~tfpilot.export.source.float32_model`).

Example:
    >>> import tensorflow as tf
    >>> served = tf.saved_model.load("runs/mnist/export/saved_model")  # doctest: +SKIP
    >>> served.signatures["serving_default"](images=tf.zeros([1, 28, 28, 1], tf.uint8))["classes"]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from tfpilot.export.backends import Backend, register_backend
from tfpilot.export.bundle import BUNDLE_FILE, Bundle
from tfpilot.export.formats import register_exporter
from tfpilot.export.runtime import OneHead, saved_model_runner

LABELS_FILE = "labels.txt"
OUTPUT = "probabilities"


def _resize_batch(images: Any, size: tuple[int, int]) -> Any:
    """tf: uint8 (N, H, W, C) -> uint8 (N, h, w, C); the training pipeline's resize."""
    import tensorflow as tf

    shape = tf.shape(images)
    same = tf.logical_and(tf.equal(shape[1], size[0]), tf.equal(shape[2], size[1]))

    def resize() -> Any:
        r = tf.image.resize(images, size, method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(r), 0, 255), tf.uint8)

    out = tf.cond(same, lambda: images, resize)
    return tf.ensure_shape(out, [None, size[0], size[1], images.shape[-1]])


def _call(model: Any, spec: Any, x: dict[str, Any]) -> dict[str, Any]:
    """``model`` on named inputs -> named heads (a classifier's one tensor in and out included)."""
    import tensorflow as tf

    single = not isinstance(model.input, dict)
    for k, t in zip(spec.input_keys, model.inputs) if single else model.input.items():
        if t.dtype == "string":  # shape strings (N,) as the input takes them, e.g. (N, 1)
            x[k] = tf.reshape(x[k], [-1] + [1] * (len(t.shape) - 1))
    out = model(x[spec.input_keys[0]] if single else x, training=False)
    return out if isinstance(out, dict) else {spec.output_keys[0]: out}


def _serving_module(source: Any, bundle: Bundle, folder: Path) -> Any:
    """A ``tf.Module`` holding the float32 model, its assets and its signature functions: a
    classifier's ``probabilities``/``class_ids``/``classes``/``scores``, or each head by its key
    plus ``<key>_label`` (class heads)."""
    import tensorflow as tf

    from tfpilot.data.images import decode_and_resize

    spec = source.spec

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="tfpilot_serving")
            self.model = source.float32_model()
            self.bundle_json = tf.constant(bundle.to_json())
            self.bundle_asset = tf.saved_model.Asset(str(folder / BUNDLE_FILE))
            self.classes = {o.key: tf.constant(list(o.classes)) for o in spec.outputs if o.classes}
            if source.classifier:
                self.labels_asset = tf.saved_model.Asset(str(folder / LABELS_FILE))

        def outputs(self, x: dict[str, Any]) -> dict[str, Any]:
            out = {k: tf.cast(v, tf.float32) for k, v in _call(self.model, spec, x).items()}
            if source.classifier:
                return _classes(out[spec.output_keys[0]], self.classes[spec.output_keys[0]])
            for o in spec.outputs:
                if o.classes:
                    top = tf.argmax(out[o.key], -1) if o.kind == "category" else tf.cast(out[o.key] > 0.5, tf.int32)
                    out[f"{o.key}_label"] = tf.gather(self.classes[o.key], top)
            return out

    module = Serving()
    meta = {"bundle": module.bundle_json, "bundle_file": module.bundle_asset.asset_path}
    if source.classifier:
        meta.update(class_names=module.classes[spec.output_keys[0]], labels_file=module.labels_asset.asset_path)
    module.metadata = tf.function(lambda: meta, input_signature=[])
    images = [c for c in spec.inputs if c.kind == "image"]

    def signature(encoded: bool) -> list[Any]:
        dtypes = {"image": tf.string if encoded else tf.uint8, "number": tf.float32}
        return [tf.TensorSpec([None, None, None, c.shape[2]] if c.kind == "image" and not encoded else [None],
                              dtypes.get(c.kind, tf.string),
                              name="image_bytes" if encoded and source.classifier else c.key) for c in spec.inputs]

    def pixels(args: Any) -> dict[str, Any]:
        x = dict(zip(spec.input_keys, args))
        return {**x, **{c.key: _resize_batch(x[c.key], c.shape[:2]) for c in images}}

    def decoded(args: Any) -> dict[str, Any]:
        x = dict(zip(spec.input_keys, args))
        return {**x, **{c.key: tf.map_fn(lambda b, c=c: decode_and_resize(b, c.shape[2], c.shape[:2]), x[c.key],
                                         fn_output_signature=tf.TensorSpec(c.shape, tf.uint8)) for c in images}}

    module.serve = tf.function(lambda *args: module.outputs(pixels(args)), input_signature=signature(False))
    if images:
        module.serve_bytes = tf.function(lambda *args: module.outputs(decoded(args)), input_signature=signature(True))
    return module


def _classes(probs: Any, class_names: Any) -> dict[str, Any]:
    """A classifier's outputs from its probabilities (one sigmoid unit: P(class 1), given both columns)."""
    import tensorflow as tf

    if probs.shape[-1] == 1:
        probs = tf.concat([1.0 - probs, probs], axis=-1)
    ids = tf.argmax(probs, axis=-1)
    return {OUTPUT: probs, "class_ids": ids, "classes": tf.gather(class_names, ids), "scores": tf.reduce_max(probs, -1)}


def _description(source: Any) -> dict[str, Any]:
    """The bundle's input and output of the SavedModel's ``serving_default``."""
    spec = source.input_spec
    if not source.classifier:
        return {}
    note = ("uint8 pixels (N, H, W, " + str(spec.shape[-1]) + ") of any H x W, resized inside; or "
            "signature serving_bytes: encoded image files (N,)") if spec.kind == "image" else "raw strings (N,)"
    return dict(input={"name": "images" if spec.kind == "image" else "text", "dtype": spec.dtype,
                       "shape": [None, None, None, spec.shape[-1]] if spec.kind == "image" else [None], "note": note},
                output={"name": OUTPUT, "dtype": "float32", "shape": [None, len(source.class_names)],
                        "meaning": "class probabilities, one column per class_names entry; also class_ids, "
                                   "classes (top-1 name) and scores", "signature": "serving_default"})


@register_exporter("saved_model", backend="saved_model",
                   description="TensorFlow SavedModel with serving signatures (TF Serving)")
def export_saved_model(source: Any, folder: Path) -> Bundle:
    """Write a SavedModel into ``folder`` (float32, preprocessing and class names inside)."""
    import tensorflow as tf

    bundle = source.bundle("saved_model", ".", precision="float32", **_description(source))
    if not source.classifier:
        bundle.output["outputs"].update({f"{o.key}_label": {"column": o.name, "dtype": "string", "shape": [None],
                                                           "meaning": "the top class name"}
                                         for o in source.spec.outputs if o.classes})
        bundle.input["signatures"] = {"serving_default": "images as uint8 pixels",
                                      "serving_bytes": "images as encoded files (JPEG/PNG/BMP/GIF)",
                                      "metadata": "the bundle"}
    bundle.write(folder)
    if source.classifier:
        (folder / LABELS_FILE).write_text("\n".join(bundle.class_names) + "\n", encoding="utf-8")
    module = _serving_module(source, bundle, folder)
    signatures = {"serving_default": module.serve, "metadata": module.metadata}
    if hasattr(module, "serve_bytes"):
        signatures["serving_bytes"] = module.serve_bytes
    # Track every variable the signatures read that the model's weights do not already
    # cover -- e.g. an LSTM's dropout seed state -- as Keras' own ExportArchive does.
    known: set[int] = set()
    try:
        for obj in tf.train.TrackableView(module).descendants():
            known.add(id(obj))
            if hasattr(obj, "value") and not callable(obj.value):  # a Keras variable wraps a tf.Variable
                known.add(id(obj.value))
    except TypeError:  # cannot walk the object graph: track them all (some stored twice)
        known = set()
    extra: dict[int, Any] = {}
    for fn in signatures.values():
        for v in fn.get_concrete_function().variables:
            if id(v) not in known:
                extra.setdefault(id(v), v)
    module.signature_variables = list(extra.values())
    tf.saved_model.save(module, str(folder), signatures=signatures)
    (folder / LABELS_FILE).unlink(missing_ok=True)  # it now lives in assets/ (bundle.json stays beside too)
    return bundle


def read_bundle(path: Path) -> Bundle:
    """``assets/bundle.json`` of the SavedModel (else bundle.json beside it)."""
    folder = path.parent if path.is_file() else path
    inside = folder / "assets" / BUNDLE_FILE
    if inside.is_file():
        return Bundle.from_json(inside.read_text(encoding="utf-8"))
    return Bundle.read(folder)


def open_saved_model(path: Path, bundle: Bundle) -> OneHead:
    """A classifier's SavedModel as the ``Predictor``'s callable (its ``serving_default`` signature)."""
    return OneHead(saved_model_runner(path, bundle), path, bundle)


#: The former name of :func:`open_saved_model`.
SavedModelRunner = open_saved_model

register_backend("saved_model", Backend("saved_model.pb", (), open_saved_model, read_bundle),
                 description="TensorFlow SavedModel (tf.saved_model.load)")
