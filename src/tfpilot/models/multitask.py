"""The table model: one encoder per input column, a concatenating MLP combiner, one head per output.

``multitask`` is a registered model (task "table"): ``model.params`` are the combiner's
(``hidden_units``, ``dropout``, ``norm``, ``activation``); the encoders come from
``features.inputs[].encoder`` (see :mod:`tfpilot.models.encoders`). Inputs and outputs
are dicts keyed by the columns' keys, so a multi-output model goes through the same
``model.fit`` as a classifier, with dict losses, loss weights and metrics.

Heads: ``category`` -- softmax over the training classes; ``binary`` -- one sigmoid unit
(P(classes[1])); ``number`` -- one linear unit in standardised units, mapped back to the
column's units by :class:`~tfpilot.models.table_layers.TargetScaling`. Heads compute in
float32 under mixed precision.

Example:
    >>> from tfpilot.spec import FeatureSpec, TableSpec
    >>> spec = TableSpec((FeatureSpec("size", "number"), FeatureSpec("colour", "category", classes=("r", "g"))),
    ...                  (FeatureSpec("price", "number"), FeatureSpec("kind", "category", classes=("a", "b", "c"))))
    >>> model = multitask(spec, hidden_units=[8])
    >>> sorted(model.output_names) if hasattr(model, "output_names") else None
    ['kind', 'price']
    >>> {k: tuple(t.shape) for k, t in sorted(model.output.items())}
    {'kind': (None, 3), 'price': (None,)}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from tfpilot.errors import UserError
from tfpilot.models.encoders import encode_column
from tfpilot.models.registry import register_model
from tfpilot.models.table_layers import ImputeMissing, TargetScaling
from tfpilot.spec import FeatureSpec, TableSpec

log = logging.getLogger(__name__)

NORMS = ("none", "batch", "layer")


def table_input(column: FeatureSpec) -> Any:
    """The raw ``keras.Input`` of a column: uint8 (H, W, C) images, scalar strings or floats."""
    shape = tuple(column.shape) if column.kind == "image" else ()
    return keras.Input(shape=shape, dtype=column.dtype, name=column.key)


def head(column: FeatureSpec, x: Any) -> Any:
    """The output layer(s) of one head, named by the column's key."""
    k = column.key
    if column.kind == "category":
        return layers.Dense(len(column.classes), activation="softmax", dtype="float32", name=k)(x)
    if column.kind == "binary":
        dense = layers.Dense(1, activation="sigmoid", dtype="float32", name=f"{k}_logit")(x)
        return layers.Reshape((), dtype="float32", name=k)(dense)
    if column.kind == "number":
        return TargetScaling(name=k)(layers.Dense(1, dtype="float32", name=f"{k}_linear")(x))
    raise ValueError(f"output {column.name!r}: no head for kind {column.kind!r} (number, category or binary)")


@register_model("multitask", task="table")
def multitask(
    input_spec: TableSpec,
    num_classes: int = 0,
    encoders: Mapping[str, Mapping[str, Any]] | None = None,
    hidden_units: Sequence[int] = (128,),
    dropout: float = 0.1,
    norm: str = "none",
    activation: str = "relu",
    input_dropout: float = 0.0,
) -> keras.Model:
    """Encoders per column -> concatenate -> [Dense -> norm -> activation -> dropout]* -> a head per output.

    Args:
        input_spec: the table's inputs and outputs (:class:`~tfpilot.spec.TableSpec`).
        num_classes: unused (the heads' sizes are in ``input_spec.outputs``).
        encoders: column key -> ``features.inputs[].encoder`` settings (given by the trainer).
        hidden_units: widths of the combiner's Dense layers (empty: the heads sit on the concatenation).
        dropout: dropout after each combiner layer.
        norm: "none", "batch" (BatchNormalization) or "layer" (LayerNormalization) after each Dense.
        activation: the combiner's activation.
        input_dropout: with several inputs, each example loses each input's whole feature vector
            with this probability while training (:class:`~tfpilot.models.multitask_layers.InputDropout`),
            so the combiner learns from every input, not only the strongest.
    """
    if norm not in NORMS:
        raise UserError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
    if not input_spec.inputs or not input_spec.outputs:
        raise UserError("a table model needs at least one input and one output column")
    encoders = encoders or {}
    inputs = {c.key: table_input(c) for c in input_spec.inputs}
    parts = [encode_column(c, inputs[c.key], dict(encoders.get(c.key, {}))) for c in input_spec.inputs]
    if input_dropout and len(parts) > 1:
        from tfpilot.models.multitask_layers import InputDropout

        parts = [InputDropout(float(input_dropout), name=f"{c.key}_input_dropout")(p)
                 for c, p in zip(input_spec.inputs, parts)]
    x = parts[0] if len(parts) == 1 else layers.Concatenate(name="combine")(parts)
    for i, units in enumerate(hidden_units):
        x = layers.Dense(int(units), use_bias=norm == "none", name=f"combiner_dense_{i}")(x)
        if norm == "batch":
            x = layers.BatchNormalization(name=f"combiner_bn_{i}")(x)
        elif norm == "layer":
            x = layers.LayerNormalization(name=f"combiner_ln_{i}")(x)
        x = layers.Activation(activation, name=f"combiner_act_{i}")(x)
        if dropout:
            x = layers.Dropout(float(dropout), name=f"combiner_dropout_{i}")(x)
    outputs = {c.key: head(c, x) for c in input_spec.outputs}
    return keras.Model(inputs, outputs, name="multitask")


@register_model("linear", task="table", description="A linear model per head: logistic / softmax / linear "
                "regression on the encoded columns")
def linear(input_spec: TableSpec, num_classes: int = 0, encoders: Mapping[str, Mapping[str, Any]] | None = None
           ) -> keras.Model:
    """The table model with no hidden layer: each head is a linear function of the encoded columns
    (softmax / logistic regression for class heads, linear regression for number heads), the
    linear candidate of the leaderboard.

    Args:
        input_spec: the table's inputs and outputs.
        num_classes: unused (the heads' sizes are in ``input_spec.outputs``).
        encoders: column key -> ``features.inputs[].encoder`` settings.

    Example:
        >>> from tfpilot.spec import FeatureSpec, TableSpec
        >>> spec = TableSpec((FeatureSpec("size", "number"),), (FeatureSpec("price", "number"),))
        >>> linear(spec).name
        'linear'
    """
    model = multitask(input_spec, encoders=encoders, hidden_units=(), dropout=0.0)
    return keras.Model(model.input, model.output, name="linear")


def adapt_table_model(model: Any, spec: TableSpec, columns: Mapping[str, np.ndarray],
                      targets: Mapping[str, np.ndarray], normalize: Mapping[str, bool]) -> None:
    """Learn every statistic of ``model`` from the training split only.

    Args:
        model: a model built by :func:`multitask`.
        spec: its table spec.
        columns: the training split's raw inputs by column key (texts, floats with NaN).
        targets: the training split's encoded targets by output key.
        normalize: output key -> whether a number head standardises its target.
    """
    for c in spec.inputs:
        if c.kind == "text":
            texts = np.asarray(columns[c.key], dtype=object)
            enc = model.get_layer(f"{c.key}_tokens")
            started = time.perf_counter()
            enc.adapt(texts)
            log.info("adapted the %s text encoder on %d training texts in %.1f s (vocabulary %d)",
                     c.name, len(texts), time.perf_counter() - started, enc.vocabulary_size())
        elif c.kind == "number":
            values = np.asarray(columns[c.key], dtype=np.float32)
            impute: ImputeMissing = model.get_layer(f"{c.key}_impute")
            impute.adapt(values)
            model.get_layer(f"{c.key}_norm").adapt(np.asarray(impute(values)))
        elif c.kind == "date":
            model.get_layer(f"{c.key}_date").adapt(columns[c.key])
    for c in spec.outputs:
        if c.kind == "number" and normalize.get(c.key, True):
            model.get_layer(c.key).adapt(targets[c.key])

