"""Training-time augmentation from Keras' preprocessing layers, applied in the tf.data
pipeline to training batches only -- never to validation/test data or the saved model --
on every image input of a model (:func:`augment_map`).

Example:
    >>> from tfpilot.config.schema import AugmentConfig
    >>> from tfpilot.training.augment import build_augmenter
    >>> aug = build_augmenter(AugmentConfig(flip="horizontal", mixup=0.2), channels=3, seed=0)
    >>> aug.mixes_labels
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfpilot.config.schema import AugmentConfig
from tfpilot.errors import UserError


@dataclass
class Augmenter:
    """Applies pixel augmentations, then MixUp/CutMix, to a batch of raw uint8 images.

    Args:
        pixel_layers: Keras random layers applied in order (on float pixels in [0, 255]).
        mix_layers: MixUp/CutMix layers (need one-hot labels; produce soft labels).
        crop_padding: the random crop's shift (:func:`random_crop`; 0: no crop).
        crop_flip: the crop also mirrors half the images left-right.
        seed: the crop's op seed.
    """

    pixel_layers: list[Any] = field(default_factory=list)
    mix_layers: list[Any] = field(default_factory=list)
    crop_padding: int = 0
    crop_flip: bool = False
    seed: int = 42

    @property
    def mixes_labels(self) -> bool:
        return bool(self.mix_layers)

    def __call__(self, images: Any, labels: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        if self.crop_padding:
            images = random_crop(images, self.crop_padding, self.seed, flip=self.crop_flip)
        if not self.pixel_layers and not self.mix_layers:
            return images, labels
        x = tf.cast(images, tf.float32)
        for layer in self.pixel_layers:
            x = layer(x, training=True)
        if self.mix_layers:
            labels = tf.cast(labels, tf.float32)
            for layer in self.mix_layers:
                out = layer({"images": x, "labels": labels}, training=True)
                x, labels = out["images"], out["labels"]
        x = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)  # the model's raw-input contract
        return x, labels


def random_crop(images: Any, padding: int, seed: int | None = None, flip: bool = False) -> Any:
    """Reflect-pad a batch by ``padding`` pixels and crop each image at a random offset back to
    its size: every image shifted by up to ``padding`` pixels each way, in whole pixels (any
    dtype; uint8 stays uint8).

    Args:
        images: a batch (N, H, W, C); H and W must exceed ``padding`` (reflection).
        padding: the largest shift, in pixels.
        seed: the op seed of the offsets.
        flip: also mirror each image left-right with probability 1/2, in the same column
            gather (``data.augment.flip: horizontal`` with a crop: no float round trip).

    Example:
        >>> import numpy as np
        >>> x = np.arange(2 * 4 * 4, dtype="uint8").reshape(2, 4, 4, 1)
        >>> tuple(random_crop(x, 1, seed=0).shape)
        (2, 4, 4, 1)
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    n, h, w = tf.shape(images)[0], tf.shape(images)[1], tf.shape(images)[2]
    p = int(padding)

    def crop() -> Any:
        padded = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
        offsets = tf.random.uniform([2, n], 0, 2 * p + 1, dtype=tf.int32, seed=seed)
        rows = offsets[0][:, None] + tf.range(h)[None, :]
        cols = offsets[1][:, None] + tf.range(w)[None, :]
        if flip:
            mirrored = tf.random.uniform([n], 0, 2, dtype=tf.int32, seed=None if seed is None else seed + 1) > 0
            cols = tf.where(mirrored[:, None], tf.reverse(cols, axis=[1]), cols)
        out = tf.gather(padded, rows, axis=1, batch_dims=1)
        return tf.gather(out, cols, axis=2, batch_dims=1)

    # An empty batch (a replica's share of a distributed epoch's last batch) passes: MirrorPad refuses zero rows.
    return tf.ensure_shape(tf.cond(n > 0, crop, lambda: images), images.shape)


def augment_map(cfg: AugmentConfig, spec: Any, seed: int = 42) -> Callable[[Any], Any] | None:
    """The training stream's augmentation of every image input of ``spec``, or None (augmentation
    off, or no image input). A classifier's batches are ``(images, labels)`` (MixUp/CutMix mix
    its labels too); a table's are ``(dict of columns, dict of targets)``: each image column is
    augmented with its own random draws, every other column and the targets pass unchanged.

    Args:
        cfg: the ``data.augment`` section.
        spec: the model's named inputs (:class:`~tfpilot.spec.TableSpec`; a classifier's from
            :func:`~tfpilot.spec.classifier_spec`).
        seed: base seed of the random layers (each further image input: ``seed + 10 * i``).

    Example:
        >>> from tfpilot.spec import FeatureSpec, TableSpec
        >>> spec = TableSpec((FeatureSpec("size", "number"),), (FeatureSpec("y", "number"),))
        >>> augment_map(AugmentConfig(flip="horizontal"), spec) is None  # no image input
        True
    """
    import tensorflow as tf

    images = [f for f in spec.inputs if f.kind == "image"]
    if not cfg.enabled or not images:
        return None
    augmenters = {f.key: build_augmenter(cfg, f.shape[-1], seed + 10 * i, name=f.name) for i, f in enumerate(images)}

    def augment(x: Any, y: Any, *weights: Any) -> tuple[Any, ...]:
        if not isinstance(x, dict):
            return (*augmenters[images[0].key](x, y), *weights)
        return ({k: augmenters[k](v, None)[0] if k in augmenters else v for k, v in x.items()}, y, *weights)

    return lambda ds: ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)


def build_augmenter(cfg: AugmentConfig, channels: int, seed: int = 42, name: str = "images") -> Augmenter | None:
    """The configured augmentations, or None when none is enabled.

    Args:
        cfg: the ``data.augment`` section.
        channels: image channels (RandAugment needs RGB).
        seed: base seed of the random layers.
        name: the image input augmented (named in errors).
    """
    import keras

    if not cfg.enabled:
        return None
    px: list[Any] = []
    crop_flip = cfg.flip == "horizontal" and cfg.crop_padding > 0  # folded into the crop's gather
    if cfg.flip != "none" and not crop_flip:
        px.append(keras.layers.RandomFlip(cfg.flip, seed=seed))
    if cfg.rotation:
        px.append(keras.layers.RandomRotation(cfg.rotation, fill_mode="constant", seed=seed + 1))
    if cfg.zoom:
        px.append(keras.layers.RandomZoom(cfg.zoom, fill_mode="constant", seed=seed + 2))
    if cfg.translation:
        px.append(keras.layers.RandomTranslation(cfg.translation, cfg.translation, fill_mode="constant", seed=seed + 3))
    if cfg.contrast:
        px.append(keras.layers.RandomContrast(cfg.contrast, value_range=(0, 255), seed=seed + 4))
    if cfg.brightness:
        px.append(keras.layers.RandomBrightness(cfg.brightness, value_range=(0, 255), seed=seed + 5))
    if cfg.randaugment:
        if channels != 3:
            raise UserError(f"data.augment.randaugment needs RGB images; image input {name!r} has {channels} "
                            "channel(s): set data.color_mode=rgb or turn it off")
        px.append(keras.layers.RandAugment(value_range=(0, 255), seed=seed + 6))
    mix: list[Any] = []
    if cfg.mixup:
        mix.append(keras.layers.MixUp(alpha=cfg.mixup, seed=seed + 7))
    if cfg.cutmix:
        mix.append(keras.layers.CutMix(factor=cfg.cutmix, seed=seed + 8))
    return Augmenter(px, mix, crop_padding=cfg.crop_padding, crop_flip=crop_flip, seed=seed + 9)
