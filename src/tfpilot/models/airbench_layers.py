"""Layers of the CPU-fast CIFAR net (:mod:`tfpilot.models.airbench`): a frozen patch-whitening
convolution and a BatchNormalization that runs as one fused kernel on TensorFlow.

Both are registered serializable and round-trip through ``get_config`` / ``from_config``; their
statistics (the whitening kernel, the moving mean and variance) are weights, saved in ``.keras``.

Example:
    >>> import numpy as np
    >>> layer = PatchWhitening(patch_size=2)
    >>> images = np.random.default_rng(0).random((64, 8, 8, 3)).astype("float32")
    >>> layer.adapt(images)
    >>> layer(images).shape
    TensorShape([64, 7, 7, 24])
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from tfpilot.registry import serializable


def image_patches(images: np.ndarray, patch_size: int) -> np.ndarray:
    """Every ``patch_size`` x ``patch_size`` patch (stride 1) of ``images``, flattened.

    Args:
        images: float array (N, H, W, C).
        patch_size: the patch's side.

    Returns:
        (N * (H - p + 1) * (W - p + 1), p * p * C), each row in the (row, column, channel)
        order of a Conv2D kernel's first three axes.

    Example:
        >>> image_patches(np.zeros((2, 4, 4, 3)), 2).shape
        (18, 12)
    """
    h, w = images.shape[1] - patch_size + 1, images.shape[2] - patch_size + 1
    # the p * p shifted views side by side: contiguous channel runs, copied once
    shifted = [images[:, i:i + h, j:j + w, :] for i in range(patch_size) for j in range(patch_size)]
    return np.concatenate(shifted, axis=-1).reshape(-1, patch_size * patch_size * images.shape[-1])


@serializable
class PatchWhitening(layers.Layer):
    """A frozen ``patch_size`` x ``patch_size`` convolution that whitens image patches
    (the first layer of airbench / hlb-CIFAR10).

    :meth:`adapt` sets the kernel from the eigenvectors ``V`` and eigenvalues ``l`` of the training
    patches' covariance: filters ``V / sqrt(l + eps)`` and their negatives (so the ReLU after it
    keeps both signs), ``2 * p * p * C`` outputs in all; the bias starts at ``-kernel . mean``
    (centred patches) and is trained. Before ``adapt`` the kernel picks single pixels (+ and -),
    so the layer works untrained too. ``valid`` padding: the output is ``p - 1`` pixels smaller.

    Args:
        patch_size: side of the patches (2 in airbench).
        epsilon: added to the eigenvalues (bounds the gain of near-constant directions).
        trainable_bias: train the bias (the kernel is always frozen).

    Example:
        >>> layer = PatchWhitening(patch_size=2, epsilon=5e-4)
        >>> layer.get_config()["patch_size"], layer.get_config()["epsilon"]
        (2, 0.0005)
    """

    def __init__(self, patch_size: int = 2, epsilon: float = 5e-4, trainable_bias: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.epsilon = float(epsilon)
        self.trainable_bias = bool(trainable_bias)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        channels = int(input_shape[-1])
        p, dim = self.patch_size, self.patch_size * self.patch_size * channels
        eye = np.eye(dim, dtype="float32").reshape(p, p, channels, dim)
        self.kernel = self.add_weight(name="kernel", shape=(p, p, channels, 2 * dim),
                                      initializer=keras.initializers.Constant(np.concatenate([eye, -eye], -1)),
                                      trainable=False)
        self.bias = self.add_weight(name="bias", shape=(2 * dim,), initializer="zeros",
                                    trainable=self.trainable_bias)

    def adapt(self, images: Any) -> None:
        """Set the kernel (and the bias) from ``images``' patches.

        Args:
            images: float images (N, H, W, C) as this layer receives them (after the model's
                preprocessing); a few thousand training images are plenty.
        """
        images = np.asarray(images, dtype="float32")
        if not self.built:
            self.build(images.shape)
        # one float32 copy of the patches (5,000 CIFAR images: 4.8M x 12), centred in place on
        # a float64 mean; the Gram matrix of centred values is accurate in float32 and is one
        # BLAS call (float64 copies and a second centred array took 3.7 s of the clock here)
        patches = image_patches(images, self.patch_size)
        mean = patches.mean(axis=0, dtype="float64")
        patches -= mean.astype("float32")
        cov = (patches.T @ patches).astype("float64") / max(len(patches) - 1, 1)
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        filters = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0.0) + self.epsilon)  # columns
        filters = np.concatenate([filters, -filters], axis=1)  # (dim, 2 * dim)
        p, channels = self.patch_size, images.shape[-1]
        self.kernel.assign(filters.reshape(p, p, channels, -1).astype("float32"))
        self.bias.assign((-(mean @ filters)).astype("float32"))

    def call(self, inputs: Any) -> Any:
        kernel = ops.cast(self.kernel, inputs.dtype)
        x = ops.conv(inputs, kernel, strides=1, padding="valid")
        return x + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        n, h, w, c = input_shape
        shrink = self.patch_size - 1
        return (n, None if h is None else h - shrink, None if w is None else w - shrink,
                2 * self.patch_size * self.patch_size * c)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(patch_size=self.patch_size, epsilon=self.epsilon, trainable_bias=self.trainable_bias)
        return config


@serializable
class FusedBatchNorm(layers.Layer):
    """BatchNormalization over the last axis that runs as one fused kernel on TensorFlow.

    Keras' ``BatchNormalization`` computes moments and normalises in separate ops; on CPU that
    cost as much as the convolutions of the CIFAR net (training 2x slower; this one: 1.15x the
    no-BN step). On TensorFlow this layer calls ``FusedBatchNormV3`` (oneDNN on CPU); other
    backends get the same arithmetic from ``keras.ops``. Moving statistics follow Keras'
    convention: ``moving = moving * momentum + batch * (1 - momentum)``.

    Args:
        momentum: moving-average momentum (airbench: 0.6 -- short runs need fast statistics).
        epsilon: added to the variance.
        center: learn an offset (beta).
        scale: learn a gain (gamma); airbench keeps it fixed at 1.

    Example:
        >>> import numpy as np
        >>> bn = FusedBatchNorm(momentum=0.6)
        >>> x = np.random.default_rng(0).normal(3.0, 2.0, (8, 4, 4, 2)).astype("float32")
        >>> y = np.asarray(bn(x, training=True))
        >>> bool(abs(y.mean()) < 1e-4), bool(abs(y.std() - 1.0) < 1e-2)
        (True, True)
    """

    def __init__(self, momentum: float = 0.6, epsilon: float = 1e-5, center: bool = True, scale: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        c = (int(input_shape[-1]),)
        # float32 under mixed precision too (autocast off): the statistics and the affine parameters
        # of a fused batch norm are float32 whatever the activations' dtype
        self.gamma = self.add_weight(name="gamma", shape=c, initializer="ones", trainable=self.scale, autocast=False)
        self.beta = self.add_weight(name="beta", shape=c, initializer="zeros", trainable=self.center, autocast=False)
        self.moving_mean = self.add_weight(name="moving_mean", shape=c, initializer="zeros", trainable=False,
                                           autocast=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=c, initializer="ones", trainable=False,
                                               autocast=False)

    def _update(self, mean: Any, variance: Any) -> None:
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + ops.cast(mean, "float32") * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + ops.cast(variance, "float32") * (1.0 - m))

    def call(self, inputs: Any, training: bool = False) -> Any:
        if keras.backend.backend() == "tensorflow" and len(inputs.shape) == 4:
            return self._call_fused(inputs, training)
        axes = list(range(len(inputs.shape) - 1))
        if training:
            mean, variance = ops.moments(ops.cast(inputs, "float32"), axes)
            self._update(mean, variance)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        y = ops.batch_normalization(ops.cast(inputs, "float32"), mean, variance, axis=-1,
                                    offset=self.beta, scale=self.gamma, epsilon=self.epsilon)
        return ops.cast(y, inputs.dtype)

    def _call_fused(self, inputs: Any, training: bool) -> Any:
        import tensorflow as tf

        gamma, beta = ops.cast(self.gamma, "float32"), ops.cast(self.beta, "float32")
        if training:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(inputs, gamma, beta, epsilon=self.epsilon,
                                                                 is_training=True)
            self._update(mean, variance)
            return y
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(inputs, gamma, beta, mean=self.moving_mean,
                                                   variance=self.moving_variance, epsilon=self.epsilon,
                                                   is_training=False)
        return y

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(momentum=self.momentum, epsilon=self.epsilon, center=self.center, scale=self.scale)
        return config
