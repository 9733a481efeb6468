"""Temperature scaling inside the model: a fitted temperature divides a class head's logits.

A head's probabilities ``p`` come from logits ``z`` (softmax, or one sigmoid unit). Since
``log softmax(z) = z - logsumexp(z)``, ``softmax(log p / T) = softmax(z / T)``: the layer takes
the head's probabilities, so it sits on top of any model's head, and gives those of the logits
divided by ``T`` (for a sigmoid, ``sigmoid(logit(p) / T)``). ``T > 1`` softens an over-confident
head, ``T < 1`` sharpens an under-confident one; argmax and the 0.5 threshold never move. The
temperature is a non-trainable weight saved with the model, so every export (.keras,
SavedModel, TFLite, ONNX) and every served answer uses it.

:func:`with_temperatures` puts a layer on each named class head of a trained model (or sets
the ones already there); :func:`scale_probabilities` is the same function in NumPy, which
fitting and the report use on outputs already computed.

Example:
    >>> import numpy as np
    >>> layer = TemperatureScaling(mode="softmax", temperature=2.0)
    >>> [round(float(v), 4) for v in np.asarray(layer(np.array([[0.8, 0.2]], "float32")))[0]]
    [0.6667, 0.3333]
    >>> np.round(scale_probabilities(np.array([[0.8, 0.2]]), 2.0, "category"), 4).tolist()
    [[0.6667, 0.3333]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from tfpilot.metrics.calibration import EPS, TINY, mode_of, scale_probabilities
from tfpilot.registry import serializable

__all__ = ["TemperatureScaling", "scale_probabilities", "temperatures", "with_temperatures"]

#: The layer on head ``key`` is named ``key + SUFFIX``.
SUFFIX = "_temperature"
MODES = ("softmax", "sigmoid")


@serializable
class TemperatureScaling(layers.Layer):
    """A class head's probabilities with its logits divided by a temperature (float32).

    Args:
        mode: "softmax" (probabilities over the last axis) or "sigmoid" (P(positive), any shape).
        temperature: the starting temperature (> 0); fitting sets the weight afterwards.

    Example:
        >>> import numpy as np
        >>> layer = TemperatureScaling(mode="sigmoid", temperature=0.5)
        >>> round(float(np.asarray(layer(np.array([0.75], "float32")))[0]), 4)
        0.9
    """

    def __init__(self, mode: str = "softmax", temperature: float = 1.0, **kwargs: Any) -> None:
        kwargs["dtype"] = "float32"  # heads compute in float32 under mixed precision; so does this
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not temperature > 0:
            raise ValueError(f"the temperature must be positive, not {temperature}")
        self.mode = mode
        self.initial = float(temperature)

    def build(self, input_shape: Any) -> None:
        self.temperature = self.add_weight(name="temperature", shape=(), trainable=False,
                                           initializer=keras.initializers.Constant(self.initial))

    def call(self, probs: Any) -> Any:
        p = ops.cast(probs, "float32")
        inverse = 1.0 / self.temperature  # a constant to converters: a product, which int8 TFLite has (DIV not)
        if self.mode == "softmax":
            return ops.softmax(ops.log(ops.maximum(p, TINY)) * inverse, axis=-1)
        p = ops.clip(p, EPS, 1.0 - EPS)
        return ops.sigmoid((ops.log(p) - ops.log(1.0 - p)) * inverse)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        value = float(np.asarray(self.temperature)) if self.built else self.initial
        return {**super().get_config(), "mode": self.mode, "temperature": value}


def temperatures(model: Any) -> dict[str, float]:
    """Head key -> the temperature of its :class:`TemperatureScaling` layer (none: {}).

    Example:
        >>> temperatures(run.load_model())  # doctest: +SKIP
        {'label': 0.6123}
    """
    return {layer.name[: -len(SUFFIX)]: float(np.asarray(layer.temperature))
            for layer in getattr(model, "layers", []) if isinstance(layer, TemperatureScaling)}


def with_temperatures(model: Any, values: Mapping[str, float], kinds: Mapping[str, str]) -> Any:
    """``model`` with a :class:`TemperatureScaling` layer on each head of ``values``.

    A model that already has the layers gets their weights set (the same model is returned);
    otherwise a functional model over the same layers (weights shared, outputs in the same
    structure and names) ends each head in one. The result is not compiled.

    Args:
        model: a trained functional Keras model: one output (a classifier's head), or a dict of
            named heads (a table model's).
        values: head key -> temperature.
        kinds: head key -> its kind ("category" or "binary").

    Raises:
        ValueError: the model has no graph to extend (a subclassed model), or no head ``key``.
    """
    have = {layer.name: layer for layer in getattr(model, "layers", []) if isinstance(layer, TemperatureScaling)}
    if have:
        for key, value in values.items():
            layer = have.get(key + SUFFIX)
            if layer is None:
                raise ValueError(f"{model.name!r} has temperature layers, but none on head {key!r}")
            layer.temperature.assign(float(value))
        return model
    if not hasattr(model, "inputs") or getattr(model, "outputs", None) is None:
        raise ValueError(f"{model.name!r} is not a functional model: there is no graph to end its heads in a "
                         "temperature layer (train with train.calibration: none)")
    out = model.output

    def scaled(key: str, tensor: Any) -> Any:
        return TemperatureScaling(mode_of(kinds[key]), float(values[key]), name=key + SUFFIX)(tensor)

    if isinstance(out, dict):
        missing = sorted(set(values) - set(out))
        if missing:
            raise ValueError(f"{model.name!r} has no head {', '.join(missing)} (its heads: {', '.join(out)})")
        outputs: Any = {k: scaled(k, t) if k in values else t for k, t in out.items()}
    else:
        (key,) = values
        outputs = scaled(key, out)
    return keras.Model(model.input, outputs, name=model.name)
