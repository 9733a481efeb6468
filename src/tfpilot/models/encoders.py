"""Per-column encoders of a table model: raw column values in, one feature vector out.

* image -- any image model of the zoo, without its classifier head (transfer-learning
  backbones included): the tensor that fed its ``predictions`` layer;
* text -- any text model of the zoo, headless the same way; its :class:`TextEncoder`
  is adapted on the column's training texts only;
* number -- :class:`~tfpilot.models.table_layers.ImputeMissing` (training mean, plus a
  missing-indicator) then a Keras ``Normalization`` adapted on the training split;
* category -- ``StringLookup`` over the training vocabulary with one out-of-vocabulary
  bucket, then one-hot or an ``Embedding``;
* date -- :class:`~tfpilot.models.date_layers.DateFeatures`: year, month, day of week and
  days since a reference date, read from the raw string by the column's format and
  standardised on the training split (plus a missing-indicator).

Every encoder works on a raw ``keras.Input``, so the saved model takes raw values.

Example:
    >>> import keras
    >>> from tfpilot.spec import FeatureSpec
    >>> col = FeatureSpec("colour", "category", classes=("red", "blue"))
    >>> inp = keras.Input(shape=(), dtype="string", name="colour")
    >>> encode_column(col, inp, {}).shape  # 2 values + the unknown bucket, one-hot
    (None, 3)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from tfpilot.errors import UserError
from tfpilot.models.table_layers import ImputeMissing
from tfpilot.spec import FeatureSpec, InputSpec

#: Default zoo models for image and text columns (see ``features.inputs[].encoder.model``).
DEFAULT_MODELS = {"image": "small_cnn", "text": "ngram_mlp"}
#: Default parameters of the default text encoder: a small n-gram vocabulary and hidden layer.
DEFAULT_TEXT_PARAMS = {"ngram_mlp": {"vocab_size": 20_000, "hidden_units": [64], "dropout": 0.2}}
#: Categories with at most this many values are one-hot encoded under ``mode: auto``.
ONE_HOT_MAX = 10


def headless(model: Any, name: str) -> Any:
    """A zoo classifier without its head: its input -> the input of its ``predictions`` layer.

    Raises:
        ValueError: when the model has no layer named ``predictions`` (every zoo model has).
    """
    try:
        head = model.get_layer("predictions")
    except ValueError:
        raise UserError(f"model {model.name!r} has no 'predictions' layer to cut its head at; "
                        "a zoo model used as an encoder must end in classifier_head()") from None
    return keras.Model(model.inputs, head.input, name=name)


def zoo_encoder(column: FeatureSpec, model_name: str | None, params: dict[str, Any]) -> Any:
    """The headless zoo model for an image or text column, named ``<key>_encoder``."""
    from tfpilot.models.registry import create_model

    name = model_name or DEFAULT_MODELS[column.kind]
    if model_name is None:  # the defaults, sized for a column beside others
        params = {**DEFAULT_TEXT_PARAMS.get(name, {}), **params}
    spec = InputSpec.image(*column.shape) if column.kind == "image" else InputSpec.text()
    return headless(create_model(name, spec, 2, **params), f"{column.key}_encoder")


def split_text_encoder(encoder: Any, key: str) -> tuple[Any, Any | None]:
    """A headless text model cut where the strings end: ``(TextEncoder, numeric network)``.

    The :class:`~tfpilot.models.text_layers.TextEncoder` is rebuilt under the name
    ``<key>_tokens`` and applied at the top level of the table model (so the string part
    of the graph is one layer per text column, which export cuts off); the rest of the zoo
    model becomes the nested ``<key>_encoder`` model (token ids / n-gram vector in).
    """
    from tfpilot.models.text_layers import TextEncoder

    found = [layer for layer in encoder.layers if isinstance(layer, TextEncoder)]
    if len(found) != 1:
        raise ValueError(f"text encoder {encoder.name!r} must hold exactly one TextEncoder, found {len(found)}")
    old = found[0]
    tokens = TextEncoder.from_config({**old.get_config(), "name": f"{key}_tokens"})
    boundary = old.output
    if encoder.output is boundary:
        return tokens, None
    inner = keras.Model(boundary, encoder.output, name=f"{key}_network")
    ids = keras.Input(shape=tuple(boundary.shape[1:]), dtype=boundary.dtype, sparse=bool(getattr(boundary, "sparse", False)),
                      name=f"{key}_ids")
    return tokens, keras.Model(ids, inner(ids), name=f"{key}_encoder")


def embedding_dim(n: int) -> int:
    """fast.ai's rule of thumb for a category of ``n`` values: min(16, round(1.6 n^0.56)), at least 2."""
    return max(2, min(16, round(1.6 * n ** 0.56)))


def encode_column(column: FeatureSpec, inp: Any, encoder: dict[str, Any]) -> Any:
    """The feature vector of one input column.

    Args:
        column: the input's spec (kind, key, shape; ``classes``: a category's vocabulary).
        inp: its ``keras.Input``.
        encoder: ``features.inputs[].encoder`` as a dict (model, params, mode, embedding_dim).
    """
    k = column.key
    if column.kind == "image":
        return zoo_encoder(column, encoder.get("model"), dict(encoder.get("params") or {}))(inp)
    if column.kind == "text":
        tokens, network = split_text_encoder(zoo_encoder(column, encoder.get("model"),
                                                         dict(encoder.get("params") or {})), k)
        x = tokens(inp)
        return x if network is None else network(x)
    if column.kind == "number":
        x = ImputeMissing(name=f"{k}_impute")(inp)
        return layers.Normalization(axis=-1, name=f"{k}_norm")(x)
    if column.kind == "date":
        from tfpilot.models.date_layers import DateFeatures

        return DateFeatures(date_format=column.format, name=f"{k}_date")(inp)
    if column.kind == "category":
        vocab = list(column.classes)
        if not vocab:
            raise UserError(f"category column {column.name!r} has no vocabulary (no training values)")
        mode = encoder.get("mode") or "auto"
        dim = encoder.get("embedding_dim")
        if mode == "auto":
            mode = "one_hot" if len(vocab) <= ONE_HOT_MAX and dim is None else "embedding"
        if mode == "one_hot":
            return layers.StringLookup(vocabulary=vocab, num_oov_indices=1, output_mode="one_hot",
                                       name=f"{k}_lookup")(inp)
        ids = layers.StringLookup(vocabulary=vocab, num_oov_indices=1, name=f"{k}_lookup")(inp)
        width = int(dim or embedding_dim(len(vocab) + 1))
        return layers.Embedding(len(vocab) + 1, width, name=f"{k}_embedding")(ids)
    raise ValueError(f"column {column.name!r}: no encoder for kind {column.kind!r}")

