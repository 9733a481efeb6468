"""Training-time augmentation from Keras' preprocessing layers, applied in the tf.data
pipeline to training batches only -- never to validation/test data or the saved model.

Example:
    >>> from tfpilot.config.schema import AugmentConfig
    >>> from tfpilot.training.augment import build_augmenter
    >>> aug = build_augmenter(AugmentConfig(flip="horizontal", mixup=0.2), channels=3, seed=0)
    >>> aug.mixes_labels
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfpilot.config.schema import AugmentConfig


@dataclass
class Augmenter:
    """Applies pixel augmentations, then MixUp/CutMix, to a batch of raw uint8 images.

    Args:
        pixel_layers: Keras random layers applied in order (on float pixels in [0, 255]).
        mix_layers: MixUp/CutMix layers (need one-hot labels; produce soft labels).
    """

    pixel_layers: list[Any] = field(default_factory=list)
    mix_layers: list[Any] = field(default_factory=list)

    @property
    def mixes_labels(self) -> bool:
        return bool(self.mix_layers)

    def __call__(self, images: Any, labels: Any) -> tuple[Any, Any]:
        import tensorflow as tf

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


def build_augmenter(cfg: AugmentConfig, channels: int, seed: int = 42) -> Augmenter | None:
    """The configured augmentations, or None when none is enabled.

    Args:
        cfg: the ``data.augment`` section.
        channels: image channels (RandAugment needs RGB).
        seed: base seed of the random layers.
    """
    import keras

    if not cfg.enabled:
        return None
    px: list[Any] = []
    if cfg.flip != "none":
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
            raise ValueError("data.augment.randaugment needs RGB images; set data.color_mode=rgb or turn it off")
        px.append(keras.layers.RandAugment(value_range=(0, 255), seed=seed + 6))
    mix: list[Any] = []
    if cfg.mixup:
        mix.append(keras.layers.MixUp(alpha=cfg.mixup, seed=seed + 7))
    if cfg.cutmix:
        mix.append(keras.layers.CutMix(factor=cfg.cutmix, seed=seed + 8))
    return Augmenter(px, mix)
