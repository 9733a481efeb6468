"""Building blocks shared by the model families: the raw-input stem and the classifier head."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from tfpilot.errors import UserError
from tfpilot.models.layers import ImagePreprocessing
from tfpilot.spec import InputSpec


def image_input(
    input_spec: InputSpec,
    image_size: tuple[int, int] | list[int] | None = None,
    channels: int | None = None,
    scale: float = 1.0 / 255.0,
    offset: float = 0.0,
) -> tuple[Any, Any]:
    """A uint8 ``keras.Input`` and the in-model preprocessing applied to it.

    Args:
        input_spec: the raw image input (height, width, channels), uint8.
        image_size: (height, width) the network runs at; default: the input's size.
        channels: channels the network runs on; default: the input's.
        scale, offset: pixel scaling after the cast (default: to [0, 1]).

    Returns:
        ``(inputs, x)``: the model input and the preprocessed tensor.
    """
    if input_spec.kind != "image":
        raise UserError(f"an image model needs image input, got {input_spec.kind}")
    inputs = keras.Input(shape=input_spec.shape, dtype="uint8", name="image")
    x = ImagePreprocessing(
        target_size=tuple(image_size) if image_size else None,
        channels=channels,
        scale=scale,
        offset=offset,
        name="preprocess",
    )(inputs)
    return inputs, x


def classifier_head(x: Any, num_classes: int, name: str = "predictions") -> Any:
    """Softmax over ``num_classes``, computed in float32 even under mixed precision."""
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)(x)
