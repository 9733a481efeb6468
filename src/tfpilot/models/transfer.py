"""Transfer learning: ``keras.applications`` backbones under a new classifier head.

Every model here is ``raw uint8 image -> ImagePreprocessing (resize, gray -> RGB) ->
BackbonePreprocessing (the family's own scaling) -> backbone (a nested model named
"backbone") -> global pooling -> [Dense] -> Dropout -> softmax``. The saved model takes
raw pixels like every tfpilot model; Grad-CAM finds the last convolution inside
"backbone".

``weights`` is "imagenet" (downloaded by Keras into ``~/.keras/models`` on first use), a
path to a weights file of the *backbone* (a ``.weights.h5`` saved with
:func:`save_backbone_weights`, or Keras' own ``*_no_top.h5`` ImageNet file copied onto an
offline machine), or "none". A pretrained backbone is built frozen, called with
``training=False`` (stage 1 trains the head; :func:`tfpilot.models.finetune.unfreeze`
opens its top for a second, low-learning-rate stage); with "none" there is nothing to
transfer and the whole network trains from scratch.

Example:
    >>> from tfpilot.models import create_model
    >>> from tfpilot.spec import InputSpec
    >>> model = create_model("mobilenet_v2", InputSpec.image(32, 32, 3), 10,
    ...                      weights="backbone.weights.h5", alpha=0.35)  # doctest: +SKIP
    >>> model.get_layer("backbone").trainable  # doctest: +SKIP
    False
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import keras
from keras import layers

from tfpilot.errors import UserError
from tfpilot.models.common import classifier_head, image_input
from tfpilot.models.finetune import find_backbone, freeze, unfreeze
from tfpilot.models.registry import register_model
from tfpilot.models.transfer_layers import BackbonePreprocessing
from tfpilot.spec import InputSpec

#: The smallest input keras.applications accepts for these backbones.
MIN_IMAGE_SIZE = 32
#: Width multipliers that MobileNetV2 has ImageNet weights for.
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


__all__ = [
    "FAMILIES", "WeightsError", "build_backbone", "find_backbone", "freeze", "resolve_weights",
    "save_backbone_weights", "transfer_model", "unfreeze",
]


class WeightsError(UserError):
    """Backbone weights could not be obtained or do not fit the backbone."""


@dataclass(frozen=True)
class Family:
    """How to build one ``keras.applications`` backbone.

    Args:
        constructor: the attribute of ``keras.applications`` that builds it.
        preprocess: the :class:`BackbonePreprocessing` mode of its ``preprocess_input``.
    """

    constructor: str
    preprocess: str

    def build(self, **kwargs: Any) -> keras.Model:
        return getattr(keras.applications, self.constructor)(**kwargs)


FAMILIES: MappingProxyType[str, Family] = MappingProxyType({
    "mobilenet_v2": Family("MobileNetV2", "tf"),
    "efficientnet_b0": Family("EfficientNetB0", "none"),
    "resnet50": Family("ResNet50", "caffe"),
    "vgg16": Family("VGG16", "caffe"),
})


def resolve_weights(weights: str | Path | None) -> str | Path | None:
    """Normalise the ``weights`` parameter: None (random), "imagenet", or an existing file.

    Example:
        >>> resolve_weights("none") is None, resolve_weights("ImageNet")
        (True, 'imagenet')
    """
    if weights is None or weights is False or str(weights).strip().lower() in ("", "none", "null", "random"):
        return None
    if str(weights).strip().lower() == "imagenet":
        return "imagenet"
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"weights {str(weights)!r}: no such file. Use weights: imagenet (needs internet), weights: none "
            "(train from scratch), or the path of an existing .h5 / .weights.h5 file of the backbone."
        )
    if path.suffix.lower() != ".h5":
        raise WeightsError(
            f"weights {str(path)!r}: expected a Keras weights file ending in .h5 or .weights.h5 "
            "(e.g. saved with tfpilot.models.transfer.save_backbone_weights)."
        )
    return path


def _image_size(input_spec: InputSpec, image_size: int | Sequence[int] | None) -> tuple[int, int]:
    if image_size is None:
        h, w = input_spec.image_size
        return max(int(h), MIN_IMAGE_SIZE), max(int(w), MIN_IMAGE_SIZE)
    if isinstance(image_size, (int, float)):
        size: tuple[int, ...] = (int(image_size), int(image_size))
    else:
        size = tuple(int(v) for v in image_size)
    if len(size) != 2 or min(size) < MIN_IMAGE_SIZE:
        raise UserError(
            f"image_size must be one integer or (height, width), each at least {MIN_IMAGE_SIZE}; got {image_size!r}"
        )
    return size[0], size[1]


def _brief(exc: BaseException, limit: int = 300) -> str:
    """The first few non-empty lines of an exception's message, on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()][:3]
    text = " ".join(lines) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_weights_file(backbone: keras.Model, path: Path, name: str, describe: str) -> None:
    """Load a weights file into ``backbone``, with an error that says it does not fit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns once per unmatched container before raising
            backbone.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 -- any failure here means the file does not fit
        raise WeightsError(
            f"weights file {str(path)!r} does not match the {name} backbone ({describe}): "
            f"{_brief(exc)} -- it must hold the weights of exactly this backbone without its "
            "top (include_top=False, same alpha), e.g. saved with "
            "tfpilot.models.transfer.save_backbone_weights(run_dir, 'backbone.weights.h5') "
            "or Keras' *_no_top.h5 ImageNet file for this network. Or use weights: none."
        ) from exc


def build_backbone(
    name: str, image_size: tuple[int, int], weights: str | Path | None = None, **backbone_kwargs: Any
) -> keras.Model:
    """The ``keras.applications`` backbone ``name`` (no top, no pooling), named "backbone".

    Args:
        name: a key of :data:`FAMILIES` ("mobilenet_v2", "efficientnet_b0", "resnet50", "vgg16").
        image_size: (height, width) of its RGB input.
        weights: None, "imagenet", or a weights file (see :func:`resolve_weights`).
        **backbone_kwargs: extra constructor arguments (e.g. ``alpha`` for MobileNetV2).

    Raises:
        WeightsError: the ImageNet weights could not be downloaded or loaded, or the
            weights file does not fit the backbone.

    Example:
        >>> bb = build_backbone("mobilenet_v2", (32, 32), alpha=0.35)  # doctest: +SKIP
        >>> bb.name, bb.output.shape  # doctest: +SKIP
        ('backbone', (None, 1, 1, 1280))
    """
    family = FAMILIES[name]
    weights = resolve_weights(weights)
    kwargs = dict(include_top=False, input_shape=(*image_size, 3), name="backbone", **backbone_kwargs)
    describe = ", ".join([f"input {image_size[0]}x{image_size[1]}x3"]
                         + [f"{k}={v}" for k, v in backbone_kwargs.items()])
    if weights != "imagenet":
        backbone = family.build(weights=None, **kwargs)
        if weights is not None:
            _load_weights_file(backbone, Path(weights), name, describe)
        return backbone
    if name == "mobilenet_v2" and float(backbone_kwargs.get("alpha", 1.0)) not in MOBILENET_V2_ALPHAS:
        raise WeightsError(
            f"mobilenet_v2 has ImageNet weights only for alpha in {MOBILENET_V2_ALPHAS}, "
            f"not {backbone_kwargs.get('alpha')}: choose one of those, or use weights: none"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "weights for 224x224 will be loaded": fine for any size
            return family.build(weights="imagenet", **kwargs)
    except Exception as exc:  # noqa: BLE001 -- Keras raises a bare Exception for a failed download
        raise WeightsError(
            f"could not get the ImageNet weights of {name}: {_brief(exc)}. "
            "Keras downloads them on first use (into ~/.keras/models/); this machine may have no internet access. "
            "Use weights: none to train from scratch, or copy the backbone's weights file here "
            "(Keras' *_no_top.h5 ImageNet file, or a .weights.h5 saved with save_backbone_weights) "
            "and set weights: /path/to/that/file.h5."
        ) from exc


def transfer_model(
    family: str,
    input_spec: InputSpec,
    num_classes: int,
    weights: str | Path | None = "imagenet",
    image_size: int | Sequence[int] | None = None,
    dropout: float = 0.2,
    dense_units: int = 0,
    pooling: str = "avg",
    freeze_backbone: bool | None = None,
    bn_momentum: float | None = None,
    **backbone_kwargs: Any,
) -> keras.Model:
    """A ``keras.applications`` backbone under a new classifier head (raw uint8 in).

    A *pretrained* backbone (ImageNet or a weights file) is built frozen: stage 1 trains
    the head, :func:`tfpilot.models.finetune.unfreeze` opens its top for stage 2. It is
    called with ``training=False`` and its BatchNormalization layers are never unfrozen,
    so they always normalise with the pretrained statistics.

    A backbone with ``weights: none`` has nothing to transfer: it trains from scratch,
    whole, with ordinary (batch-statistics) BatchNorm. Keras' backbones use a BatchNorm
    momentum of 0.99-0.999, tuned for hundreds of ImageNet epochs; from scratch it is
    set to 0.9 so the moving statistics used at inference catch up within a short run.

    Args:
        family: a key of :data:`FAMILIES`.
        input_spec: the raw image input (any size, 1 or 3 channels).
        num_classes: classes of the softmax.
        weights: "imagenet", "none", or the path of a .h5 / .weights.h5 file of the backbone.
        image_size: the backbone's input (int or (height, width)); default: the data's size,
            at least 32. Images are resized inside the model.
        dropout: dropout before the softmax (0: none).
        dense_units: width of a hidden ReLU Dense layer in the head (0: none).
        pooling: "avg" or "max" global pooling of the backbone's feature map.
        freeze_backbone: None (default): frozen when pretrained, trainable from scratch.
            False with pretrained weights trains it all from the start (BatchNorm still frozen).
        bn_momentum: BatchNorm momentum of a trainable-from-scratch backbone (default 0.9;
            ignored for pretrained backbones, whose BatchNorm stays frozen).
        **backbone_kwargs: extra constructor arguments of the backbone (``alpha``).

    Example:
        >>> model = transfer_model("vgg16", InputSpec.image(28, 28, 1), 10, weights="none")  # doctest: +SKIP
        >>> model.input.dtype, model.output.shape  # doctest: +SKIP
        ('uint8', (None, 10))
    """
    if family not in FAMILIES:
        raise UserError(f"unknown backbone family {family!r}; known: {', '.join(FAMILIES)}")
    if pooling not in ("avg", "max"):
        raise UserError(f"pooling must be 'avg' or 'max', not {pooling!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise UserError(f"dropout must be in [0, 1), got {dropout}")
    if int(dense_units) < 0:
        raise UserError(f"dense_units must be 0 (no hidden layer) or positive, got {dense_units}")
    if bn_momentum is not None and not 0.0 < float(bn_momentum) < 1.0:
        raise UserError(f"bn_momentum must be in (0, 1), got {bn_momentum}")
    size = _image_size(input_spec, image_size)
    weights = resolve_weights(weights)
    pretrained = weights is not None
    backbone = build_backbone(family, size, weights, **backbone_kwargs)
    frozen = pretrained if freeze_backbone is None else bool(freeze_backbone)
    backbone.trainable = not (frozen or pretrained)  # pretrained and not frozen: unfreeze() below
    if not pretrained:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = float(bn_momentum if bn_momentum is not None else 0.9)

    inputs, x = image_input(input_spec, image_size=size, channels=3, scale=1.0)  # 0-255 floats, RGB
    mode = FAMILIES[family].preprocess
    if mode != "none":
        x = BackbonePreprocessing(mode, name="backbone_preprocess")(x)
    # Pretrained: inference-mode BatchNorm (Keras 3's fit() overrides a recorded training=False,
    # so finetune.unfreeze also keeps every BatchNormalization layer frozen, which Keras 3 runs
    # in inference mode). From scratch: ordinary BatchNorm.
    x = backbone(x, training=False) if pretrained else backbone(x)
    pool = layers.GlobalAveragePooling2D if pooling == "avg" else layers.GlobalMaxPooling2D
    x = pool(name="pool")(x)
    if dense_units:
        x = layers.Dense(int(dense_units), activation="relu", name="head_dense")(x)
    if dropout:
        x = layers.Dropout(float(dropout), name="head_dropout")(x)
    model = keras.Model(inputs, classifier_head(x, num_classes), name=family)
    if pretrained and not frozen:
        unfreeze(model)  # everything but BatchNorm
    return model


def save_backbone_weights(model: Any, path: str | Path) -> Path:
    """Save the weights of a model's backbone, to start another model from (``weights: PATH``).

    Args:
        model: a transfer-learning ``keras.Model``, or a run directory holding one.
        path: the file to write; must end in ``.weights.h5``.

    Example:
        >>> save_backbone_weights("runs/mobilenet_v2-cifar10", "cifar_backbone.weights.h5")  # doctest: +SKIP
        PosixPath('cifar_backbone.weights.h5')
    """
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise UserError(f"{str(path)!r}: a backbone weights file must end in .weights.h5")
    if isinstance(model, (str, Path)):
        from tfpilot.runs import Run

        model = Run(model).load_model()
    path.parent.mkdir(parents=True, exist_ok=True)
    find_backbone(model).save_weights(str(path))
    return path


def _builder(name: str, doc: str) -> Callable[..., keras.Model]:
    """A builder for ``name`` with :func:`mobilenet_v2`'s keywords but ``alpha`` (so configs are checked)."""

    def builder(input_spec: InputSpec, num_classes: int, **kwargs: Any) -> keras.Model:
        return transfer_model(name, input_spec, num_classes, **kwargs)

    sig = inspect.signature(mobilenet_v2)
    builder.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.name != "alpha"])
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = doc
    return builder


@register_model("mobilenet_v2")
def mobilenet_v2(
    input_spec: InputSpec,
    num_classes: int,
    weights: str | None = "imagenet",
    image_size: int | list[int] | None = None,
    dropout: float = 0.2,
    dense_units: int = 0,
    pooling: str = "avg",
    freeze_backbone: bool | None = None,
    bn_momentum: float | None = None,
    alpha: float = 1.0,
) -> keras.Model:
    """MobileNetV2 transfer learning (new head on a frozen pretrained backbone; ``alpha`` = width).

    Args:
        weights: "imagenet", "none" (train from scratch), or a .h5 / .weights.h5 file of the backbone.
        image_size: backbone input size (default: the data's, at least 32).
        dropout, dense_units, pooling: the head; freeze_backbone, bn_momentum: see
            :func:`transfer_model`.
        alpha: width multiplier; ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> m = mobilenet_v2(InputSpec.image(32, 32, 3), 10, weights="none", alpha=0.35)  # doctest: +SKIP
        >>> m.count_params()  # doctest: +SKIP
        423018
    """
    return transfer_model("mobilenet_v2", input_spec, num_classes, weights=weights, image_size=image_size,
                          dropout=dropout, dense_units=dense_units, pooling=pooling,
                          freeze_backbone=freeze_backbone, bn_momentum=bn_momentum, alpha=float(alpha))


_DOC = """{title} transfer learning (new head on a frozen pretrained backbone).

    Args:
        weights: "imagenet", "none" (train from scratch), or a .h5 / .weights.h5 file of the backbone.
        image_size: backbone input size (default: the data's, at least 32).
        dropout, dense_units, pooling: the head; freeze_backbone, bn_momentum: see
            :func:`transfer_model`.

    Example:
        >>> from tfpilot.models import create_model
        >>> from tfpilot.spec import InputSpec
        >>> m = create_model("{name}", InputSpec.image(32, 32, 3), 10, weights="none")  # doctest: +SKIP
    """

efficientnet_b0 = register_model("efficientnet_b0")(
    _builder("efficientnet_b0", _DOC.format(title="EfficientNetB0", name="efficientnet_b0")))
resnet50 = register_model("resnet50")(_builder("resnet50", _DOC.format(title="ResNet50", name="resnet50")))
vgg16 = register_model("vgg16")(_builder("vgg16", _DOC.format(title="VGG16", name="vgg16")))
