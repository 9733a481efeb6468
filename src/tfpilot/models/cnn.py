"""Plain CNNs: the seeds' architectures, layer for layer, and tfpilot's fast small CNN.

Each seed model keeps the tutorial's layers exactly (so parameter counts match) behind
the in-model preprocessing stem, and ends in a float32 softmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from tfpilot.models.airbench_layers import FusedBatchNorm
from tfpilot.models.common import classifier_head, image_input
from tfpilot.models.registry import register_model
from tfpilot.spec import InputSpec


def _sequential(input_spec: InputSpec, body: list[layers.Layer], num_classes: int, name: str) -> keras.Model:
    inputs, x = image_input(input_spec)
    for layer in body:
        x = layer(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name=name)


@register_model("mnist_cnn")
def mnist_cnn(input_spec: InputSpec, num_classes: int, dropout: float = 0.5) -> keras.Model:
    """Seed 004's MNIST CNN: 3 conv layers, Dense 128, dropout (130,890 params at 28x28x1).

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> mnist_cnn(InputSpec.image(28, 28, 1), 10).count_params()
        130890
    """
    body = [
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(dropout),
    ]
    return _sequential(input_spec, body, num_classes, "mnist_cnn")


@register_model("cnn_bn_gap")
def cnn_bn_gap(input_spec: InputSpec, num_classes: int) -> keras.Model:
    """Seed 001 §3.2: three conv blocks with BatchNorm, global average pooling, Dense 256."""
    body = [
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.25),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.25),
        layers.Conv2D(128, (3, 3), activation="relu"),
        layers.BatchNormalization(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(256, activation="relu"),
        layers.BatchNormalization(),
        layers.Dropout(0.5),
    ]
    return _sequential(input_spec, body, num_classes, "cnn_bn_gap")


@register_model("cifar_cnn")
def cifar_cnn(input_spec: InputSpec, num_classes: int) -> keras.Model:
    """Seed 000 §2.2: two double-conv blocks (32, 64) with dropout, Dense 256."""
    body = [
        layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
        layers.Conv2D(32, (3, 3), activation="relu", padding="same"),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.25),
        layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
        layers.Conv2D(64, (3, 3), activation="relu", padding="same"),
        layers.MaxPooling2D((2, 2)),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(256, activation="relu"),
        layers.Dropout(0.5),
    ]
    return _sequential(input_spec, body, num_classes, "cifar_cnn")


@register_model("cifar_cnn_bn")
def cifar_cnn_bn(input_spec: InputSpec, num_classes: int) -> keras.Model:
    """Seed 001 §6.2: three double-conv blocks with BatchNorm, GAP, Dense 256.

    The seed's in-model augmentation is not part of the network: set augmentation in the
    config instead, so it runs in the training pipeline only and never in exports.
    """
    body = []
    for filters, drop in ((32, 0.2), (64, 0.3)):
        body += [
            layers.Conv2D(filters, (3, 3), padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.Conv2D(filters, (3, 3), padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(drop),
        ]
    body += [
        layers.Conv2D(128, (3, 3), padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(128, (3, 3), padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.GlobalAveragePooling2D(),
        layers.Dense(256, activation="relu"),
        layers.BatchNormalization(),
        layers.Dropout(0.5),
    ]
    return _sequential(input_spec, body, num_classes, "cifar_cnn_bn")


@register_model("small_cnn")
def small_cnn(input_spec: InputSpec, num_classes: int) -> keras.Model:
    """Seed 002's basic CNN: two conv/pool blocks (32, 64), Dense 64."""
    body = [
        layers.Conv2D(32, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(64, activation="relu"),
    ]
    return _sequential(input_spec, body, num_classes, "small_cnn")


@register_model("fast_cnn")
def fast_cnn(
    input_spec: InputSpec,
    num_classes: int,
    filters: Sequence[int] = (24, 48),
    convs_per_stage: int = 2,
    dense_units: int = 128,
    dropout: float = 0.1,
    padding: str = "valid",
    batch_norm: bool = False,
    bn_momentum: float = 0.9,
) -> keras.Model:
    """tfpilot's fast small CNN: per stage [conv 3x3 -> ReLU] x n + 2x2 max-pool, then Dense.

    Built for time-to-accuracy on CPUs (see ``configs/mnist_fast.yaml``): small stages of
    two 3x3 convolutions learn faster per example than seed 004's single wide ones. Its
    BatchNorm (``batch_norm=True``) is :class:`~tfpilot.models.airbench_layers.FusedBatchNorm`
    with Keras' defaults (learned gain and offset, epsilon 1e-3): the same arithmetic as
    Keras' ``BatchNormalization`` in one fused kernel, since on CPU Keras' layer cost about 3x
    the convolutions' time here (docs/benchmarks.md).

    Args:
        filters: filters of each stage (each stage ends with a 2x2 max-pool).
        convs_per_stage: 3x3 convolutions per stage.
        dense_units: width of the hidden Dense layer before the softmax (0: none).
        dropout: dropout before the softmax.
        padding: "valid" (cheaper) or "same".
        batch_norm: BatchNorm after each convolution and the hidden Dense layer.
        bn_momentum: BatchNorm moving-average momentum; 0.9 tracks the fast-moving
            weights of a short, high-learning-rate schedule (Keras' 0.99 lags behind).

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> fast_cnn(InputSpec.image(28, 28, 1), 10).count_params()
        136370
    """

    def block(x, layer):
        if not batch_norm:
            return layers.ReLU()(layer(x))
        x = FusedBatchNorm(momentum=bn_momentum, epsilon=1e-3, scale=True)(layer(x))
        return layers.ReLU()(x)

    inputs, x = image_input(input_spec)
    for f in filters:
        for _ in range(convs_per_stage):
            x = block(x, layers.Conv2D(f, 3, padding=padding, use_bias=not batch_norm))
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    if dense_units:
        x = block(x, layers.Dense(dense_units, use_bias=not batch_norm))
    if dropout:
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="fast_cnn")
