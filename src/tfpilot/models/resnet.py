"""Residual networks: seed 001 §4.1's ResNet and seed 004's functional mini ResNet."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from tfpilot.models.common import classifier_head, image_input
from tfpilot.models.registry import register_model
from tfpilot.spec import InputSpec


def _seed001_block(x: Any, filters: int, stride: int = 1, conv_shortcut: bool = True) -> Any:
    """Seed 001's residual block: two 3x3 convs with BN; projection shortcut with BN."""
    y = layers.Conv2D(filters, 3, strides=stride, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(filters, 3, padding="same")(y)
    y = layers.BatchNormalization()(y)
    if conv_shortcut:
        shortcut = layers.Conv2D(filters, 1, strides=stride, padding="same")(x)
        shortcut = layers.BatchNormalization()(shortcut)
    else:
        shortcut = x
    y = layers.add([y, shortcut])
    return layers.Activation("relu")(y)


@register_model("resnet")
def resnet(input_spec: InputSpec, num_classes: int) -> keras.Model:
    """Seed 001 §4.1: a 3x3 stem and nine residual blocks (64, 128, 256), GAP, Dense 512."""
    inputs, x = image_input(input_spec)
    x = layers.Conv2D(64, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = _seed001_block(x, 64, conv_shortcut=False)
    x = _seed001_block(x, 64)
    x = _seed001_block(x, 64)
    for filters in (128, 256):
        x = _seed001_block(x, filters, stride=2)
        x = _seed001_block(x, filters)
        x = _seed001_block(x, filters)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="resnet")


def _seed004_block(x: Any, filters: int, kernel_size: int = 3, stride: int = 1) -> Any:
    """Seed 004's residual block: F(x) + x, with a 1x1 projection when shapes differ."""
    shortcut = x
    x = layers.Conv2D(filters, kernel_size, strides=stride, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(filters, kernel_size, padding="same")(x)
    x = layers.BatchNormalization()(x)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, padding="same")(shortcut)
    x = layers.Add()([x, shortcut])
    return layers.ReLU()(x)


@register_model("mini_resnet")
def mini_resnet(input_spec: InputSpec, num_classes: int) -> keras.Model:
    """Seed 004's functional MiniResNet: 7x7/2 stem, max-pool, blocks 64, 128/2, 256/2, GAP."""
    inputs, x = image_input(input_spec)
    x = layers.Conv2D(64, 7, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = _seed004_block(x, 64)
    x = _seed004_block(x, 128, stride=2)
    x = _seed004_block(x, 256, stride=2)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="mini_resnet")
