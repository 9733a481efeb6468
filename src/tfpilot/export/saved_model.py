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

import numpy as np

from tfpilot.export.backends import Backend, register_backend
from tfpilot.export.bundle import BUNDLE_FILE, Bundle
from tfpilot.export.formats import register_exporter

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


def _serving_module(model: Any, bundle: Bundle, folder: Path) -> Any:
    """A ``tf.Module`` holding the model, its assets and its signature functions."""
    import tensorflow as tf

    from tfpilot.data.images import decode_and_resize

    spec = bundle.input_spec
    input_rank = len(model.inputs[0].shape)

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="tfpilot_serving")
            self.model = model
            self.class_names = tf.constant(bundle.class_names)
            self.bundle_json = tf.constant(bundle.to_json())
            self.bundle_asset = tf.saved_model.Asset(str(folder / BUNDLE_FILE))
            self.labels_asset = tf.saved_model.Asset(str(folder / LABELS_FILE))

        def outputs(self, probs: Any) -> dict[str, Any]:
            probs = tf.cast(probs, tf.float32)
            if probs.shape[-1] == 1:  # one sigmoid unit: P(class 1); give both columns
                probs = tf.concat([1.0 - probs, probs], axis=-1)
            ids = tf.argmax(probs, axis=-1)
            return {OUTPUT: probs, "class_ids": ids, "classes": tf.gather(self.class_names, ids),
                    "scores": tf.reduce_max(probs, axis=-1)}

        @tf.function(input_signature=[])
        def metadata(self) -> dict[str, Any]:
            return {"class_names": self.class_names, "bundle": self.bundle_json,
                    "bundle_file": self.bundle_asset.asset_path, "labels_file": self.labels_asset.asset_path}

    module = Serving()
    if spec.kind == "image":
        h, w = spec.image_size
        c = spec.channels

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, c], tf.uint8, name="images")])
        def serve(images: Any) -> dict[str, Any]:
            return module.outputs(module.model(_resize_batch(images, (h, w)), training=False))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_bytes(image_bytes: Any) -> dict[str, Any]:
            images = tf.map_fn(lambda b: decode_and_resize(b, c, (h, w)), image_bytes,
                               fn_output_signature=tf.TensorSpec([h, w, c], tf.uint8))
            return module.outputs(module.model(images, training=False))

        module.serve, module.serve_bytes = serve, serve_bytes
        return module

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(text: Any) -> dict[str, Any]:
        x = tf.reshape(text, [-1] + [1] * (input_rank - 1))
        return module.outputs(module.model(x, training=False))

    module.serve = serve_text
    return module


@register_exporter("saved_model", backend="saved_model",
                   description="TensorFlow SavedModel with serving signatures (TF Serving)")
def export_saved_model(source: Any, folder: Path) -> Bundle:
    """Write a SavedModel into ``folder`` (float32, preprocessing and class names inside)."""
    import tensorflow as tf

    spec = source.input_spec
    note = ("uint8 pixels (N, H, W, " + str(spec.shape[-1]) + ") of any H x W, resized inside; or "
            "signature serving_bytes: encoded image files (N,)") if spec.kind == "image" else "raw strings (N,)"
    bundle = source.bundle(
        "saved_model", ".", precision="float32",
        input={"name": "images" if spec.kind == "image" else "text", "dtype": spec.dtype,
               "shape": [None, None, None, spec.shape[-1]] if spec.kind == "image" else [None], "note": note},
        output={"name": OUTPUT, "dtype": "float32", "shape": [None, len(source.class_names)],
                "meaning": "class probabilities, one column per class_names entry; also class_ids, "
                           "classes (top-1 name) and scores", "signature": "serving_default"},
    )
    bundle.write(folder)
    (folder / LABELS_FILE).write_text("\n".join(bundle.class_names) + "\n", encoding="utf-8")
    module = _serving_module(source.float32_model(), bundle, folder)
    signatures = {"serving_default": module.serve, "metadata": module.metadata}
    if spec.kind == "image":
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
    (folder / LABELS_FILE).unlink()  # it now lives in assets/ (bundle.json stays beside too)
    return bundle


def read_bundle(path: Path) -> Bundle:
    """``assets/bundle.json`` of the SavedModel (else bundle.json beside it)."""
    folder = path.parent if path.is_file() else path
    inside = folder / "assets" / BUNDLE_FILE
    if inside.is_file():
        return Bundle.from_json(inside.read_text(encoding="utf-8"))
    return Bundle.read(folder)


class SavedModelRunner:
    """Runs a SavedModel's ``serving_default`` signature on prepared batches.

    Args:
        path: the SavedModel folder.
        bundle: its bundle.
    """

    def __init__(self, path: Path, bundle: Bundle) -> None:
        import tensorflow as tf

        self.path = path
        self.bundle = bundle
        self.format = bundle.format
        self.loaded = tf.saved_model.load(str(path))
        self.signature = self.loaded.signatures["serving_default"]
        self.input_name = next(iter(self.signature.structured_input_signature[1]))

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        import tensorflow as tf

        if self.bundle.input_spec.kind == "text":
            from tfpilot.export.runtime import text_batch

            x = text_batch(x).astype(str)
        return self.signature(**{self.input_name: tf.constant(x)})[OUTPUT].numpy()


register_backend("saved_model", Backend("saved_model.pb", (), SavedModelRunner, read_bundle),
                 description="TensorFlow SavedModel (tf.saved_model.load)")
