"""``airbench``: a small CIFAR net built for CPU time-to-accuracy (``configs/cifar10_fast.yaml``).

After Keller Jordan's airbench and hlb-CIFAR10 (Tysam&co): a frozen 2x2 patch-whitening
convolution, then three groups of [conv 3x3 -> max-pool 2 -> BN -> ReLU -> conv 3x3 -> BN ->
ReLU], global max-pooling and a scaled linear softmax head. airbench94's widths (64/256/256) cost
about 0.24 GFLOP a forward pass, too much for two CPU cores; the default 32/64/128 is about a sixth of
that. The BatchNorm is :class:`~tfpilot.models.airbench_layers.FusedBatchNorm` (Keras'
BatchNormalization doubled the CPU step time here).

The whitening kernel is computed from training images by :func:`adapt_whitening` (the
trainer calls it once, before training, on a seeded sample of the training split).

Example:
    >>> from tfpilot.models import create_model
    >>> from tfpilot.spec import InputSpec
    >>> model = create_model("airbench", InputSpec.image(32, 32, 3), 10)
    >>> model.count_params()
    296002
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from tfpilot.errors import UserError
from tfpilot.models.airbench_layers import FusedBatchNorm, PatchWhitening
from tfpilot.models.common import classifier_head, image_input
from tfpilot.models.registry import register_model
from tfpilot.spec import InputSpec

log = logging.getLogger(__name__)


def _conv_group(x: Any, filters: int, index: int, bn_momentum: float, bn_epsilon: float, activation: str) -> Any:
    """conv 3x3 -> max-pool 2 -> BN -> act -> conv 3x3 -> BN -> act."""
    name = f"group{index}"
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = FusedBatchNorm(bn_momentum, bn_epsilon, name=f"{name}_bn1")(x)
    x = layers.Activation(activation, name=f"{name}_act1")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(x)
    x = FusedBatchNorm(bn_momentum, bn_epsilon, name=f"{name}_bn2")(x)
    return layers.Activation(activation, name=f"{name}_act2")(x)


@register_model("airbench")
def airbench(
    input_spec: InputSpec,
    num_classes: int,
    widths: Sequence[int] = (32, 64, 128),
    whiten_patch: int = 2,
    whiten_epsilon: float = 5e-4,
    whiten_bias: bool = True,
    bn_momentum: float = 0.6,
    bn_epsilon: float = 1e-5,
    activation: str = "relu",
    logit_scale: float = 1.0 / 9.0,
) -> keras.Model:
    """A patch-whitened conv net for small images (airbench / hlb-CIFAR10, CPU-sized).

    Args:
        input_spec: the raw uint8 image input.
        num_classes: softmax outputs.
        widths: filters of each conv group (each halves the resolution).
        whiten_patch: side of the whitening patches (0: no whitening layer).
        whiten_epsilon: added to the patch covariance's eigenvalues.
        whiten_bias: train the whitening layer's bias. False freezes it at its adapted value
            (centred patches), and training skips the gradient with respect to the first conv
            group's input: the costliest backward kernel of the net (about 15% of a step).
        bn_momentum: BatchNorm moving-average momentum (Keras convention; 0.6 tracks a short
            high-learning-rate run).
        bn_epsilon: BatchNorm variance epsilon.
        activation: activation after the whitening layer and every BatchNorm ("relu", "gelu").
        logit_scale: the pooled features are multiplied by this before the head (a temperature:
            airbench's 1/9).

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> model = airbench(InputSpec.image(32, 32, 3), 10, widths=(16, 32, 64))
        >>> model.output.shape
        (None, 10)
    """
    if not widths:
        raise UserError("airbench needs at least one conv group: give widths, e.g. [32, 64, 128]")
    inputs, x = image_input(input_spec)
    if whiten_patch:
        x = PatchWhitening(whiten_patch, whiten_epsilon, trainable_bias=whiten_bias, name="whiten")(x)
        x = layers.Activation(activation, name="whiten_act")(x)
    for i, filters in enumerate(widths):
        x = _conv_group(x, int(filters), i + 1, bn_momentum, bn_epsilon, activation)
    x = layers.GlobalMaxPooling2D(name="pool")(x)
    if logit_scale != 1.0:
        x = layers.Rescaling(logit_scale, name="logit_scale")(x)
    return keras.Model(inputs, classifier_head(x, num_classes), name="airbench")


def whitening_layers(model: Any) -> list[PatchWhitening]:
    """The :class:`PatchWhitening` layers of ``model`` (nested models included)."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, PatchWhitening)]


def adapt_whitening(model: Any, images: Any, examples: int = 5000, seed: int = 0) -> int:
    """Set every whitening layer's kernel from a seeded sample of training ``images``.

    Each layer is adapted on what it receives in the model (the sample run through the layers
    before it), so the in-model preprocessing is accounted for. A no-op for models without one.

    Args:
        model: a built functional ``keras.Model``.
        images: the training split's raw images (N, H, W, C), uint8; None for a split kept as
            file paths (then the layers keep their untrained kernel, and a warning says so).
        examples: at most this many images are used.
        seed: the sample's seed.

    Returns:
        How many layers were adapted.

    Example:
        >>> import numpy as np
        >>> from tfpilot.spec import InputSpec
        >>> model = airbench(InputSpec.image(16, 16, 3), 3, widths=(8,))
        >>> adapt_whitening(model, np.zeros((4, 16, 16, 3), "uint8") + np.arange(16, dtype="uint8")[:, None, None])
        1
    """
    found = whitening_layers(model)
    if not found:
        return 0
    if images is None:
        log.warning("the training split is kept as file paths, so the whitening layer was not adapted: "
                    "it starts as an identity patch filter (set data.cache=memory to adapt it)")
        return 0
    images = np.asarray(images)
    index = np.random.default_rng(seed).permutation(len(images))[:examples]
    sample = images[np.sort(index)]
    for layer in found:
        upstream = keras.Model(model.inputs, layer.input)
        layer.adapt(np.asarray(upstream.predict(sample, batch_size=500, verbose=0)))
        log.info("adapted %s on %d training images", layer.name, len(sample))
    return len(found)
