"""The pretrained backbones' own input scaling, as a layer inside the model.

Each ``keras.applications`` family expects pixels scaled its own way (its
``preprocess_input``). :class:`BackbonePreprocessing` does that scaling in ``keras.ops``
inside the saved model, so a transfer-learning model still takes raw uint8 pixels.

Example:
    >>> import numpy as np
    >>> layer = BackbonePreprocessing("tf")
    >>> np.asarray(layer(np.array([[[[0.0, 127.5, 255.0]]]], "float32"))).ravel().tolist()
    [-1.0, 0.0, 1.0]
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from tfpilot.registry import serializable

#: ImageNet channel means (RGB order, 0-255 pixels) used by the "caffe" mode.
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
#: ImageNet channel means and standard deviations (RGB, 0-1 pixels) used by the "torch" mode.
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)

MODES = ("tf", "caffe", "torch", "none")


@serializable
class BackbonePreprocessing(layers.Layer):
    """RGB pixels in [0, 255] -> what a ``keras.applications`` backbone was trained on.

    The modes are those of ``keras.applications.imagenet_utils.preprocess_input``:

    * ``"tf"`` (MobileNetV2, Xception, ...): scale to [-1, 1].
    * ``"caffe"`` (ResNet50, VGG16): RGB -> BGR, then subtract the ImageNet BGR means (no scaling).
    * ``"torch"`` (DenseNet): scale to [0, 1], then standardize with the ImageNet mean/std.
    * ``"none"`` (EfficientNet, ConvNeXt: the backbone rescales itself): unchanged.

    Computes in float32 (exact mean subtraction) unless a ``dtype`` is given.

    Args:
        mode: one of "tf", "caffe", "torch", "none".

    Example:
        >>> import numpy as np
        >>> out = BackbonePreprocessing("caffe")(np.full((1, 1, 1, 3), 100.0, "float32"))
        >>> [round(v, 3) for v in np.asarray(out).ravel().tolist()]
        [-3.939, -16.779, -23.68]
    """

    def __init__(self, mode: str = "tf", **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"BackbonePreprocessing mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode

    def call(self, inputs: Any) -> Any:
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            mean_bgr = ops.convert_to_tensor(CAFFE_MEAN_RGB[::-1], dtype=x.dtype)
            return ops.flip(x, axis=-1) - mean_bgr
        if self.mode == "torch":
            mean = ops.convert_to_tensor(TORCH_MEAN, dtype=x.dtype)
            std = ops.convert_to_tensor(TORCH_STD, dtype=x.dtype)
            return (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(mode=self.mode)
        return config
