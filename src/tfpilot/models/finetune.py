"""Progressive fine-tuning: open the top of a frozen backbone for a second training stage
(a table model: of the backbone in each transfer-learning encoder).

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

from tfpilot.errors import UserError
from tfpilot.registry import did_you_mean

BACKBONE = "backbone"


def find_backbones(model: Any, name: str = BACKBONE) -> dict[str, keras.Model]:
    """Every nested model named ``name`` ("backbone") inside ``model``, keyed by the model that
    holds it: a transfer classifier's one, or one per transfer-learning encoder of a table model
    (``photo_encoder``: the image input ``photo``), in layer order.

    Raises:
        ValueError: ``model`` has none; the message names its inputs.

    Example:
        >>> list(find_backbones(table_model))  # doctest: +SKIP
        ['photo_encoder', 'scan_encoder']
    """
    found = _backbones(model, name)
    if not found:
        inputs = ", ".join(str(getattr(t, "name", t)).split(":")[0] for t in getattr(model, "inputs", None) or [])
        raise UserError(
            f"model {getattr(model, 'name', model)!r} has no nested backbone model named {name!r} (inputs: {inputs}): "
            "fine-tuning works on transfer-learning models (mobilenet_v2, efficientnet_b0, resnet50, vgg16; see "
            "`tfpilot models`), in a table model as an input's encoder (features.inputs[].encoder.model)"
        )
    return found


def _backbones(model: Any, name: str) -> dict[str, keras.Model]:
    found: dict[str, keras.Model] = {}
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found.update({model.name: layer} if layer.name == name else _backbones(layer, name))
    return found


def find_backbone(model: Any, name: str = BACKBONE) -> keras.Model:
    """The first nested model named ``name`` ("backbone") inside ``model`` (see :func:`find_backbones`).

    Example:
        >>> find_backbone(model).name  # doctest: +SKIP
        'backbone'
    """
    return next(iter(find_backbones(model, name).values()))


def _children(backbone: keras.Model) -> list[Any]:
    return [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]


def unfreeze(model: Any, layers: int | None = None, from_layer: str | None = None) -> list[str]:
    """Make the top of every backbone trainable; BatchNormalization layers stay frozen.

    Layers are counted as in the Keras fine-tuning guide and the seeds
    (``base_model.layers[-N:]``): every layer of the backbone, with or without weights.
    Layers below the cut are (re)frozen, so calling it again with a different N works.
    A table model with several transfer-learning encoders opens the same top of each.
    Recompile the model afterwards (with a lower learning rate).

    Args:
        model: a model with a nested "backbone" (see :mod:`tfpilot.models.transfer`), or
            a table model whose encoders hold one each.
        layers: unfreeze the top ``layers`` layers of each backbone.
        from_layer: unfreeze this layer of each backbone and every one after it.
            With neither, the whole backbones are unfrozen (BatchNormalization excepted).

    Returns:
        The names of the layers whose weights are now trainable, backbone by backbone.

    Raises:
        ValueError: no backbone, a backbone that trains from scratch (``weights: none``:
            nothing to fine-tune), both ``layers`` and ``from_layer`` given, a negative or
            too large ``layers``, or an unknown ``from_layer`` (with a did-you-mean).

    Example:
        >>> unfreeze(model, from_layer="Conv_1")  # doctest: +SKIP
        ['Conv_1']
    """
    if layers is not None and from_layer is not None:
        raise UserError("unfreeze: give either layers (the top N) or from_layer (a layer name), not both")
    return [name for owner, backbone in find_backbones(model).items()
            for name in _open_top(owner, backbone, layers, from_layer)]


def _open_top(owner: str, backbone: keras.Model, layers: int | None, from_layer: str | None) -> list[str]:
    """:func:`unfreeze` for one backbone (inside the model ``owner``)."""
    children = _children(backbone)
    if backbone.trainable and any(c.trainable for c in children if isinstance(c, keras.layers.BatchNormalization)):
        raise UserError(
            f"the backbone of {owner!r} already trains whole, from scratch (weights: none), with ordinary BatchNorm: "
            "there is no pretrained backbone to fine-tune. Disable train.fine_tune, or start from pretrained "
            "weights (weights: imagenet or a weights file)."
        )
    names = [layer.name for layer in children]
    if from_layer is not None and from_layer not in names:
        raise UserError(
            f"the backbone of {owner!r} ({backbone.name}, {len(names)} layers) has no layer {from_layer!r}."
            f"{did_you_mean(from_layer, names)} Its last layers: {', '.join(names[-8:])}."
        )
    if layers is not None and (isinstance(layers, bool) or int(layers) != layers or not 0 <= layers <= len(names)):
        raise UserError(
            f"unfreeze: layers must be an integer from 0 to {len(names)} (the backbone's layer count), "
            f"got {layers!r}; leave it unset to unfreeze the whole backbone"
        )
    top = len(names) if layers is None else int(layers)
    start = names.index(from_layer) if from_layer is not None else len(names) - top
    backbone.trainable = True  # sets every sublayer trainable; now freeze what stays frozen
    opened = []
    for i, layer in enumerate(children):
        layer.trainable = i >= start and not isinstance(layer, keras.layers.BatchNormalization)
        if layer.trainable and layer.trainable_weights:
            opened.append(layer.name)
    return opened


def freeze(model: Any) -> None:
    """Freeze every backbone whole again (stage 1 state).

    Example:
        >>> freeze(model); find_backbone(model).trainable_weights  # doctest: +SKIP
        []
    """
    for backbone in find_backbones(model).values():
        backbone.trainable = False


def trainable_layers(model: Any) -> list[str]:
    """Names of the backbones' layers that currently have trainable weights, backbone by backbone.

    Example:
        >>> trainable_layers(model)  # doctest: +SKIP
        []
    """
    return [layer.name for b in find_backbones(model).values() for layer in _children(b) if layer.trainable_weights]
