"""Progressive fine-tuning: open the top of a frozen backbone for a second training stage.

Stage 1 trains the new head on a frozen backbone (how :mod:`tfpilot.models.transfer`
builds models). Stage 2 calls :func:`unfreeze` and recompiles with a lower learning rate
(recompiling is required: Keras fixes the trainable weights at compile time).

BatchNormalization layers always stay frozen: in Keras 3 a frozen BatchNormalization
layer runs in inference mode (pretrained statistics) even inside ``fit()``, while an
unfrozen one would re-estimate its statistics from small fine-tuning batches and wreck
the pretrained features.

Example:
    >>> from tfpilot.models import create_model
    >>> from tfpilot.models.finetune import unfreeze
    >>> from tfpilot.spec import InputSpec
    >>> model = create_model("mobilenet_v2", InputSpec.image(32, 32, 3), 10, weights="none",
    ...                      alpha=0.35)  # doctest: +SKIP
    >>> unfreeze(model, layers=10)  # doctest: +SKIP
    ['block_16_project', 'Conv_1']
"""

from __future__ import annotations

from typing import Any

import keras

from tfpilot.registry import did_you_mean

BACKBONE = "backbone"


def find_backbone(model: Any, name: str = BACKBONE) -> keras.Model:
    """The nested model named ``name`` ("backbone") inside ``model``.

    Raises:
        ValueError: ``model`` has no nested model of that name.

    Example:
        >>> find_backbone(model).name  # doctest: +SKIP
        'backbone'
    """
    for layer in getattr(model, "layers", []):
        if layer.name == name and isinstance(layer, keras.Model):
            return layer
    raise ValueError(
        f"model {getattr(model, 'name', model)!r} has no nested backbone model named {name!r}: fine-tuning "
        "works on transfer-learning models (mobilenet_v2, efficientnet_b0, resnet50, vgg16; see `tfpilot models`)"
    )


def _children(backbone: keras.Model) -> list[Any]:
    return [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]


def unfreeze(model: Any, layers: int | None = None, from_layer: str | None = None) -> list[str]:
    """Make the top of the backbone trainable; BatchNormalization layers stay frozen.

    Layers are counted as in the Keras fine-tuning guide and the seeds
    (``base_model.layers[-N:]``): every layer of the backbone, with or without weights.
    Layers below the cut are (re)frozen, so calling it again with a different N works.
    Recompile the model afterwards (with a lower learning rate).

    Args:
        model: a model with a nested "backbone" (see :mod:`tfpilot.models.transfer`).
        layers: unfreeze the top ``layers`` layers of the backbone.
        from_layer: unfreeze this layer of the backbone and every one after it.
            With neither, the whole backbone is unfrozen (BatchNormalization excepted).

    Returns:
        The names of the layers whose weights are now trainable, in backbone order.

    Raises:
        ValueError: no backbone, a backbone that trains from scratch (``weights: none``:
            nothing to fine-tune), both ``layers`` and ``from_layer`` given, a negative or
            too large ``layers``, or an unknown ``from_layer`` (with a did-you-mean).

    Example:
        >>> unfreeze(model, from_layer="Conv_1")  # doctest: +SKIP
        ['Conv_1']
    """
    backbone = find_backbone(model)
    children = _children(backbone)
    if backbone.trainable and any(c.trainable for c in children if isinstance(c, keras.layers.BatchNormalization)):
        raise ValueError(
            "the backbone already trains whole, from scratch (weights: none), with ordinary BatchNorm: there "
            "is no pretrained backbone to fine-tune. Disable train.fine_tune, or start from pretrained weights "
            "(weights: imagenet or a weights file)."
        )
    if layers is not None and from_layer is not None:
        raise ValueError("unfreeze: give either layers (the top N) or from_layer (a layer name), not both")
    if from_layer is not None:
        names = [layer.name for layer in children]
        if from_layer not in names:
            raise ValueError(
                f"the backbone ({backbone.name}, {len(names)} layers) has no layer {from_layer!r}."
                f"{did_you_mean(from_layer, names)} Its last layers: {', '.join(names[-8:])}."
            )
        start = names.index(from_layer)
    elif layers is not None:
        if isinstance(layers, bool) or int(layers) != layers or not 0 <= int(layers) <= len(children):
            raise ValueError(
                f"unfreeze: layers must be an integer from 0 to {len(children)} (the backbone's layer count), "
                f"got {layers!r}; leave it unset to unfreeze the whole backbone"
            )
        start = len(children) - int(layers)
    else:
        start = 0
    backbone.trainable = True  # sets every sublayer trainable; now freeze what stays frozen
    opened = []
    for i, layer in enumerate(children):
        train = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = train
        if train and layer.trainable_weights:
            opened.append(layer.name)
    return opened


def freeze(model: Any) -> None:
    """Freeze the whole backbone again (stage 1 state).

    Example:
        >>> freeze(model); find_backbone(model).trainable_weights  # doctest: +SKIP
        []
    """
    find_backbone(model).trainable = False


def trainable_layers(model: Any) -> list[str]:
    """Names of the backbone's layers that currently have trainable weights.

    Example:
        >>> trainable_layers(model)  # doctest: +SKIP
        []
    """
    return [layer.name for layer in _children(find_backbone(model)) if layer.trainable_weights]
