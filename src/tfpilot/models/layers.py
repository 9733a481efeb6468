"""Custom layers that put preprocessing inside the model, so training and serving agree.

Every layer here is registered serializable and round-trips through ``get_config`` /
``from_config``, so a saved ``.keras`` file loads with ``safe_mode=True``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from tfpilot.registry import serializable


@serializable
class ImagePreprocessing(layers.Layer):
    """Raw uint8 pixels in, model-ready floats out.

    Casts to the compute dtype, converts grayscale <-> RGB to ``channels``, resizes to
    ``target_size`` when the input's size differs, then applies ``x * scale + offset``.

    Args:
        target_size: (height, width) the network expects, or None to keep the input size.
        channels: channels the network expects (1 or 3), or None to keep the input's.
        scale: multiplier applied after the cast (default 1/255).
        offset: added after scaling.
        interpolation: resize interpolation ("bilinear", "nearest", "bicubic", ...).

    Example:
        >>> import numpy as np
        >>> layer = ImagePreprocessing(target_size=(32, 32), channels=3)
        >>> layer(np.zeros((2, 28, 28, 1), "uint8")).shape
        TensorShape([2, 32, 32, 3])
    """

    def __init__(
        self,
        target_size: tuple[int, int] | list[int] | None = None,
        channels: int | None = None,
        scale: float = 1.0 / 255.0,
        offset: float = 0.0,
        interpolation: str = "bilinear",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_size = tuple(int(v) for v in target_size) if target_size else None
        self.channels = int(channels) if channels else None
        self.scale = float(scale)
        self.offset = float(offset)
        self.interpolation = interpolation

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        in_channels = x.shape[-1]
        if self.channels and in_channels and in_channels != self.channels:
            if in_channels == 1 and self.channels == 3:
                x = ops.repeat(x, 3, axis=-1)
            elif in_channels == 3 and self.channels == 1:
                weights = ops.cast(ops.convert_to_tensor([0.2989, 0.5870, 0.1140]), x.dtype)
                x = ops.sum(x * weights, axis=-1, keepdims=True)
            else:
                raise ValueError(f"cannot convert {in_channels} channels to {self.channels}")
        if self.target_size and tuple(x.shape[1:3]) != self.target_size:
            x = ops.image.resize(x, self.target_size, interpolation=self.interpolation)
        if self.scale != 1.0:
            x = x * ops.cast(self.scale, x.dtype)
        if self.offset:
            x = x + ops.cast(self.offset, x.dtype)
        return x

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        h, w = self.target_size or input_shape[1:3]
        return (input_shape[0], h, w, self.channels or input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            target_size=list(self.target_size) if self.target_size else None,
            channels=self.channels,
            scale=self.scale,
            offset=self.offset,
            interpolation=self.interpolation,
        )
        return config

