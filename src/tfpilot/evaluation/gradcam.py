"""Grad-CAM: where in an image a CNN looked for the class it predicted.

Works for Sequential models, functional models and transfer-learning models whose
backbone is a nested model (``Sequential([backbone, GlobalAveragePooling2D(), Dense])``
or ``Model(inputs, head(backbone(preprocess(inputs))))``): the last convolutional feature
map is found wherever it is nested, and a two-output model ``input -> (feature map,
probabilities)`` is wired around it that shares the trained layers (no copy of weights).

The gradient is taken of the *centred logit* of the class, ``log p_c - mean_j log p_j``
(equal to ``z_c - mean_j z_j`` for a softmax over logits ``z``). Unlike ``p_c`` itself it
does not vanish when the model is confident, and it needs no access to the layer
before the softmax, so it works for any model that ends in probabilities.

Example:
    >>> from tfpilot.evaluation.gradcam import GradCAM, overlay
    >>> cam = GradCAM(model)  # doctest: +SKIP
    >>> heat = cam.heatmaps(images)  # (N, H, W) in [0, 1], at the images' size  # doctest: +SKIP
    >>> picture = overlay(images[0], heat[0])  # uint8 RGB  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.errors import UserError

#: Keras preprocessing layers (Rescaling, Resizing...) never count as the explained feature map.
_PREPROCESSING_MODULES = ("keras.src.layers.preprocessing",)


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _is_conv(layer: Any) -> bool:
    from keras import layers

    return isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose, layers.DepthwiseConv2D, layers.SeparableConv2D))


def _output_shape(layer: Any) -> tuple[Any, ...] | None:
    try:
        out = layer.output  # the tensor of the first call: the model's own graph
    except (AttributeError, ValueError):
        return None
    shape = getattr(out, "shape", None)
    return tuple(shape) if shape is not None else None


def _is_spatial(shape: tuple[Any, ...] | None) -> bool:
    return shape is not None and len(shape) == 4 and all(d is None or d > 1 for d in shape[1:3])


def flatten_layers(model: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every non-model layer of ``model`` in forward order, as paths through nested models.

    Args:
        model: a Keras model (nested models are expanded in place).
        prefix: the path of ``model`` itself (used by the recursion).

    Returns:
        A list of tuples ``(outer_layer, ..., layer)``.
    """
    import keras

    out: list[tuple[Any, ...]] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if _is_model(layer):
            out += flatten_layers(layer, (*prefix, layer))
        else:
            out.append((*prefix, layer))
    return out


def find_target_layer(model: Any) -> tuple[Any, ...]:
    """The path to the feature map Grad-CAM uses: the last convolution, followed through the
    BatchNorm / activation / add layers after it that keep its shape.

    Args:
        model: a Keras model, possibly with nested backbone models.

    Raises:
        ValueError: when the model has no convolution with a spatial output.
    """
    flat = flatten_layers(model)
    convs = [i for i, path in enumerate(flat) if _is_conv(path[-1]) and _is_spatial(_output_shape(path[-1]))]
    if not convs:
        raise UserError(
            f"model {model.name!r} has no convolutional layer with a spatial output, so Grad-CAM "
            "has no feature map to explain: it needs a CNN (an MLP or a text model has none)"
        )
    i = convs[-1]
    shape = _output_shape(flat[i][-1])
    while i + 1 < len(flat):
        nxt = flat[i + 1][-1]
        if _output_shape(nxt) != shape or type(nxt).__module__.startswith(_PREPROCESSING_MODULES):
            break
        i += 1
    return flat[i]


def resolve_layer(model: Any, layer: str | Sequence[str]) -> tuple[Any, ...]:
    """A layer path from a name: ``"conv2d_3"`` (searched in nested models too) or
    ``"backbone/conv5"`` (an explicit path)."""
    names = layer.split("/") if isinstance(layer, str) else list(layer)
    if len(names) == 1:
        for path in flatten_layers(model):
            if path[-1].name == names[0]:
                return path
        known = [p[-1].name for p in flatten_layers(model) if _is_spatial(_output_shape(p[-1]))]
        raise UserError(f"model {model.name!r} has no layer {names[0]!r}; layers with a feature map: "
                        f"{', '.join(known) or '(none)'}")
    path, current = [], model
    for name in names:
        current = current.get_layer(name)
        path.append(current)
    return tuple(path)


def _expose(model: Any, path: tuple[Any, ...]) -> Any:
    """A functional model ``input -> [feature map of path[-1], model output]`` sharing the
    layers of ``model``; ``path[0]`` is a layer of ``model`` (a nested model or the target)."""
    import keras

    captured: list[Any] = []

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer is not path[0]:
            return layer(*args, **kwargs)
        if len(path) == 1:
            feature = out = layer(*args, **kwargs)
        else:
            feature, out = _expose(layer, path[1:])(*args, **kwargs)
        captured.append(feature)
        return out

    if isinstance(model, keras.Sequential):
        if not model.inputs:
            raise UserError(f"model {model.name!r} is not built: call it on data (or give it an Input) first")
        source = model.inputs[0]
        inputs = keras.Input(batch_shape=source.shape, dtype=source.dtype)
        x = inputs
        for layer in model.layers:
            x = call(layer, x)
        outputs = x
    else:
        clone = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
        inputs, outputs = clone.inputs, clone.outputs
        outputs = outputs[0] if len(outputs) == 1 else outputs
    if not captured:
        raise ValueError(f"layer {path[0].name!r} is not called in model {model.name!r}")
    return keras.Model(inputs, [captured[0], outputs], name=f"{model.name}_gradcam")


def _target_scores(probs: Any, class_index: Any) -> Any:
    """Centred logit of ``class_index`` per example, from probabilities (N, C) or (N, 1)."""
    import tensorflow as tf

    probs = tf.cast(probs, tf.float32)
    eps = 1e-7
    if probs.shape[-1] == 1:  # sigmoid: logit of the positive class, negated for class 0
        p = tf.clip_by_value(probs[:, 0], eps, 1.0 - eps)
        logit = tf.math.log(p) - tf.math.log(1.0 - p)
        return tf.where(tf.equal(class_index, 1), logit, -logit)
    logp = tf.math.log(tf.clip_by_value(probs, eps, 1.0))
    centred = logp - tf.reduce_mean(logp, axis=-1, keepdims=True)
    return tf.gather(centred, class_index, axis=1, batch_dims=1)


class GradCAM:
    """Grad-CAM heatmaps for an image classifier.

    Args:
        model: a Keras model taking images (tfpilot models take raw uint8 pixels) and
            returning class probabilities.
        layer: the feature map to explain: a layer name (searched in nested models too),
            a path ``"backbone/conv5"``, or None for the last convolution.
        batch_size: images per gradient computation.

    Attributes (after the first call):
        layer_path_: names from the outer model to the explained layer.
        feature_shape_: (height, width) of its feature map (the heatmap's native resolution).
        grad_model_: the two-output model ``input -> (feature map, probabilities)``.

    Example:
        >>> cam = GradCAM(model)  # doctest: +SKIP
        >>> heat = cam.heatmaps(images)  # doctest: +SKIP
        >>> heat.shape == images.shape[:3], float(heat.max()) <= 1.0  # doctest: +SKIP
        (True, True)
    """

    def __init__(self, model: Any, layer: str | Sequence[str] | None = None, batch_size: int = 32) -> None:
        self.model = model
        self.layer = layer
        self.batch_size = batch_size

    def _build(self) -> GradCAM:
        if getattr(self, "grad_model_", None) is None:
            path = find_target_layer(self.model) if self.layer is None else resolve_layer(self.model, self.layer)
            self.layer_path_ = [layer.name for layer in path]
            self.grad_model_ = _expose(self.model, path)
            self.feature_shape_ = tuple(int(d) for d in self.grad_model_.outputs[0].shape[1:3])
        return self

    def compute(self, images: np.ndarray, class_index: Sequence[int] | np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps and probabilities for a batch.

        Args:
            images: a batch the model takes, (N, H, W, C).
            class_index: the class to explain per image; default: the predicted class.

        Returns:
            ``(heatmaps, probs)``: heatmaps (N, H, W) in [0, 1] at the images' size (1 where
            the class evidence is strongest; all zeros when nothing supports the class), and
            the model's probabilities (N, C).
        """
        images = np.asarray(images)
        if images.ndim != 4:
            raise UserError(f"Grad-CAM takes a batch of images (N, H, W, C); got shape {images.shape}")
        self._build()
        heats, probs = [], []
        for start in range(0, len(images), self.batch_size):
            idx = None if class_index is None else np.asarray(class_index)[start : start + self.batch_size]
            h, p = self._batch(images[start : start + self.batch_size], idx)
            heats.append(h)
            probs.append(p)
        return np.concatenate(heats), np.concatenate(probs)

    def heatmaps(self, images: np.ndarray, class_index: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Heatmaps (N, H, W) in [0, 1]; see :meth:`compute`."""
        return self.compute(images, class_index)[0]

    def _batch(self, images: np.ndarray, class_index: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf

        x = tf.convert_to_tensor(images)
        with tf.GradientTape() as tape:
            feature, probs = self.grad_model_(x, training=False)
            tape.watch(feature)
            p = tf.cast(probs, tf.float32)
            if class_index is None:
                cls = tf.argmax(p, axis=-1) if p.shape[-1] > 1 else tf.cast(p[:, 0] >= 0.5, tf.int64)
            else:
                cls = tf.convert_to_tensor(np.asarray(class_index, dtype=np.int64))
            score = _target_scores(p, cls)
        grads = tape.gradient(score, feature)
        if grads is None:
            raise UserError(f"the output does not depend on layer {self.layer_path_[-1]!r}; choose another layer")
        feature = tf.cast(feature, tf.float32)
        weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * feature, axis=-1))[..., None]
        cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0]
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        cam = tf.where(peak > 0, cam / tf.maximum(peak, 1e-12), tf.zeros_like(cam))
        probs_np = p.numpy()
        if probs_np.shape[-1] == 1:
            probs_np = np.concatenate([1.0 - probs_np, probs_np], axis=1)
        return np.clip(cam.numpy(), 0.0, 1.0), probs_np


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45, cmap: str = "jet") -> np.ndarray:
    """Blend a heatmap (H, W) in [0, 1] over an image (H, W[, C]) uint8; returns uint8 RGB.

    Args:
        image: the input image, grayscale or RGB, uint8.
        heatmap: values in [0, 1] at the image's size.
        alpha: weight of the heatmap colours.
        cmap: a matplotlib colormap name.

    Example:
        >>> import numpy as np
        >>> overlay(np.zeros((4, 4, 1), np.uint8), np.ones((4, 4))).shape
        (4, 4, 3)
    """
    from matplotlib import colormaps

    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.shape != img.shape[:2]:
        raise ValueError(f"heatmap shape {heat.shape} does not match the image's {img.shape[:2]}")
    colours = colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    return np.clip((1.0 - alpha) * img.astype(np.float64) + alpha * colours, 0, 255).astype(np.uint8)


def gradcam(
    run: str | Path,
    images: Any,
    out_dir: str | Path | None = None,
    layer: str | None = None,
    class_name: str | None = None,
) -> list[dict[str, Any]]:
    """Grad-CAM overlays for images, with a trained run's model.

    Args:
        run: a run directory.
        images: image files, a folder's files, arrays or PIL images (what
            :meth:`tfpilot.inference.Predictor.prepare` takes).
        out_dir: where to write ``<name>_gradcam.png`` (input | overlay) per image; None
            writes nothing.
        layer: the layer to explain (default: the last convolution).
        class_name: explain this class instead of the predicted one.

    Returns:
        For each image: ``{"input", "label", "score", "explained", "heatmap", "path"}``.

    Example:
        >>> import tfpilot
        >>> out = tfpilot.gradcam("runs/cifar", ["cat.jpg"], out_dir="cams")  # doctest: +SKIP
        >>> out[0]["path"]  # doctest: +SKIP
        'cams/cat_gradcam.png'
    """
    from tfpilot.inference import load

    predictor = load(run)
    if predictor.input_spec.kind != "image":
        raise UserError(f"Grad-CAM explains image models; this run's model takes {predictor.input_spec.kind}")
    if isinstance(images, (list, tuple)) or (isinstance(images, np.ndarray) and images.ndim == 4):
        items = list(images)
    else:
        items = [images]
    batch = predictor.prepare(items)
    class_index = None
    if class_name is not None:
        if class_name not in predictor.class_names:
            raise UserError(f"unknown class {class_name!r}; the model's classes: {', '.join(predictor.class_names)}")
        class_index = np.full(len(batch), predictor.class_names.index(class_name))
    heat, probs = GradCAM(predictor.model, layer=layer).compute(batch, class_index)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    results = []
    for i, (img, h, p) in enumerate(zip(batch, heat, probs)):
        pred = int(np.argmax(p))
        explained = pred if class_index is None else int(class_index[i])
        name = Path(items[i]).stem if isinstance(items[i], (str, Path)) else f"image_{i:03d}"
        result = {"input": str(items[i]) if isinstance(items[i], (str, Path)) else name,
                  "label": predictor.class_names[pred], "score": float(p[pred]),
                  "explained": predictor.class_names[explained], "heatmap": h, "path": None}
        if out is not None:
            path = _unique(out / f"{name}_gradcam.png")
            _save_pair(img, h, path)
            result["path"] = str(path)
        results.append(result)
    return results


def _unique(path: Path) -> Path:
    n, candidate = 1, path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return candidate


def _save_pair(image: np.ndarray, heatmap: np.ndarray, path: Path, min_size: int = 224) -> None:
    """Write ``input | overlay`` side by side, upscaled (nearest) to at least ``min_size``."""
    from PIL import Image

    rgb = overlay(image, np.zeros(image.shape[:2]), alpha=0.0)
    pair = np.concatenate([rgb, np.full((rgb.shape[0], max(1, rgb.shape[1] // 16), 3), 255, np.uint8),
                           overlay(image, heatmap)], axis=1)
    scale = max(1, int(np.ceil(min_size / max(image.shape[:2]))))
    picture = Image.fromarray(pair)
    if scale > 1:
        picture = picture.resize((pair.shape[1] * scale, pair.shape[0] * scale), Image.NEAREST)
    picture.save(path)
