"""Multi-layer perceptrons (seed 003's MNIST MLP, seed 001 §3.1's DNN)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from tfpilot.models.common import classifier_head, image_input
from tfpilot.models.registry import register_model
from tfpilot.spec import InputSpec


@register_model("mlp")
def mlp(
    input_spec: InputSpec,
    num_classes: int,
    hidden_units: Sequence[int] = (128,),
    dropout: float = 0.2,
    batch_norm: bool = False,
) -> keras.Model:
    """Flatten -> [Dense(relu) (-> BatchNorm) -> Dropout]* -> softmax (seed 003 by default).

    Args:
        input_spec: raw image input.
        num_classes: number of output classes.
        hidden_units: width of each hidden layer; seed 001 §3.1 uses (128, 64).
        dropout: dropout after each hidden layer.
        batch_norm: add BatchNormalization after each hidden Dense (seed 001's functional DNN).

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> mlp(InputSpec.image(28, 28, 1), 10).count_params()
        101770
    """
    inputs, x = image_input(input_spec)
    x = layers.Flatten()(x)
    for units in hidden_units:
        x = layers.Dense(units, activation="relu")(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    outputs = classifier_head(x, num_classes)
    return keras.Model(inputs, outputs, name="mlp")
