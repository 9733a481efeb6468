"""The ``features`` section: which columns of a table go in, which come out, and how.

Modelled on Ludwig's ``input_features`` / ``output_features``: a list of named columns,
each with a type (``auto`` = inferred from the data when the table is read) and, for
inputs, an encoder; for outputs, a loss, its weight and the metrics' head. A config with
a ``features`` section trains table models (``model.name: auto``: a leaderboard of candidates
and their ensemble; or one named table model); without one, a classifier as before.

Example:
    >>> from tfpilot.config.features import FeaturesConfig
    >>> f = FeaturesConfig.model_validate({"outputs": ["price", {"name": "category", "loss_weight": 0.5}]})
    >>> [(o.name, o.type, o.loss_weight) for o in f.outputs]
    [('price', 'auto', 1.0), ('category', 'auto', 0.5)]
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tfpilot.errors import UnknownNameError, UserError
from tfpilot.registry import LOSSES, MODELS, check_params, did_you_mean

INPUT_TYPES = ("auto", "image", "text", "number", "category", "date")
OUTPUT_TYPES = ("auto", "number", "category", "binary")
#: Default loss of each head type.
DEFAULT_LOSS = {"number": "mse", "category": "crossentropy", "binary": "crossentropy"}
#: Default zoo model used as the (headless) encoder of image and text columns.
DEFAULT_ENCODER = {"image": "small_cnn", "text": "ngram_mlp"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EncoderConfig(_Section):
    """How one input column becomes a vector.

    image / text: ``model`` is any registered zoo model of that task, used without its
    classifier head (``params`` are its builder's keyword arguments). category: ``mode``
    embedding or one_hot (``auto``: one-hot up to 10 values, else an embedding of
    ``embedding_dim``, default min(16, 1.6 * n^0.56)). number: nothing to choose
    (normalised on the training split, missing values imputed with the training mean, plus
    a missing-indicator).
    """

    model: str | None = Field(None, description="image/text: a zoo model used as a headless encoder.")
    params: dict[str, Any] = Field(default_factory=dict, description="image/text: the zoo model's parameters.")
    mode: Literal["auto", "embedding", "one_hot"] = Field("auto", description="category: embedding or one-hot.")
    embedding_dim: int | None = Field(None, gt=0, description="category: the embedding width.")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str | None) -> str | None:
        if v is not None:
            MODELS.info(v)
        return v


class InputFeature(_Section):
    """One input column: its name in the table, its type and its encoder."""

    name: str = Field(description="The column's name in the table.")
    type: Literal["auto", "image", "text", "number", "category", "date"] = Field(
        "auto", description="auto: inferred (number / category / text / image path / date).")
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    format: str | None = Field(
        None, description="date: how the cells are written, with %Y %y %m %d %H %M %S (e.g. %d/%m/%Y or "
        "%Y-%m-%d %H:%M:%S); default: recognised from the data. Setting it makes the column a date.")

    def check_encoder(self, kind: str) -> None:
        """Raise ValueError when the encoder settings do not fit a column of ``kind``."""
        enc, where = self.encoder, f"features.inputs[{self.name}].encoder"
        if kind in ("image", "text"):
            if enc.mode != "auto" or enc.embedding_dim is not None:
                raise UserError(f"{where}: mode/embedding_dim are for category columns; {self.name!r} is {kind}")
            model = enc.model or DEFAULT_ENCODER[kind]
            tags = MODELS.info(model).tags
            if kind not in tags:
                raise UserError(f"{where}.model: {model!r} is not a {kind} model; choose one of: "
                                f"{', '.join(MODELS.list(tag=kind))}")
            check_params(MODELS, model, enc.params, skip=("input_spec", "num_classes"))
        elif enc.model is not None or enc.params:
            raise UserError(f"{where}: model/params are for image and text columns; {self.name!r} is {kind}")
        elif kind in ("number", "date") and (enc.mode != "auto" or enc.embedding_dim is not None):
            raise UserError(f"{where}: {kind} columns take no encoder settings (they are normalised)")
        if self.format is not None and kind != "date":
            raise UserError(f"features.inputs[{self.name}].format is for date columns; {self.name!r} is {kind}")

    @model_validator(mode="after")
    def _fits_type(self) -> InputFeature:
        if self.type != "auto":
            self.check_encoder(self.type)
        return self


class OutputFeature(_Section):
    """One output column (a head): type, loss, loss weight."""

    name: str = Field(description="The column's name in the table.")
    type: Literal["auto", "number", "category", "binary"] = Field(
        "auto", description="auto: number for numeric columns with more than 10 values, else category "
                            "(binary for two values).")
    loss: str | None = Field(None, description="A registered loss (crossentropy, mse, mae, huber, log_cosh, "
                                               "mse_mae, ...); default: crossentropy, or mse for numbers.")
    loss_params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the loss.")
    loss_weight: float = Field(1.0, ge=0, description="The head's weight in the total loss.")
    normalize: bool = Field(True, description="number: train on the target standardised with the training "
                                              "split's mean and std; predictions are given in the column's units.")

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, v: str | None) -> str | None:
        if v is not None:
            LOSSES.info(v)
        return v

    def loss_name(self, kind: str) -> str:
        return self.loss or DEFAULT_LOSS[kind]

    def check_loss(self, kind: str) -> None:
        """Raise ValueError when the loss does not fit a head of ``kind``."""
        name = self.loss_name(kind)
        tags = LOSSES.info(name).tags
        task = "regression" if kind == "number" else "classification"
        if task not in tags:
            fitting = LOSSES.list(tag=task)
            raise UserError(f"features.outputs[{self.name}].loss: {name!r} is not a {task} loss; {self.name!r} is a "
                            f"{kind} head: choose one of {', '.join(fitting)}")
        check_params(LOSSES, name, self.loss_params)

    @model_validator(mode="after")
    def _fits_type(self) -> OutputFeature:
        if self.type != "auto":
            self.check_loss(self.type)
        elif self.loss_params and self.loss is None:
            raise ValueError(f"features.outputs[{self.name}]: loss_params without a loss")
        return self


def _named(items: Any) -> Any:
    """Allow a bare column name for ``{name: COLUMN}``."""
    if isinstance(items, list):
        return [{"name": i} if isinstance(i, str) else i for i in items]
    return items


class FeaturesConfig(_Section):
    """Inputs and outputs of a table model.

    ``inputs`` None means every column that is not an output.
    """

    inputs: list[InputFeature] | None = Field(None, description="Input columns; default: every non-output column.")
    outputs: list[OutputFeature] = Field(min_length=1, description="Output columns (one head each).")

    @field_validator("inputs", "outputs", mode="before")
    @classmethod
    def _bare_names(cls, v: Any) -> Any:
        return _named(v)

    @model_validator(mode="after")
    def _distinct(self) -> FeaturesConfig:
        outs = [o.name for o in self.outputs]
        for role, names in (("outputs", outs), ("inputs", [i.name for i in self.inputs or []])):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"features.{role}: {', '.join(map(repr, dup))} listed more than once")
        both = sorted({i.name for i in self.inputs or []} & set(outs))
        if both:
            raise ValueError(f"features: {', '.join(map(repr, both))} is both an input and an output (a model "
                             "cannot be given what it predicts)")
        return self

    def check_columns(self, columns: list[str]) -> None:
        """Raise KeyError for a feature naming a column the table does not have."""
        for role, feats in (("outputs", self.outputs), ("inputs", self.inputs or [])):
            for f in feats:
                if f.name not in columns:
                    raise UnknownNameError(f"features.{role}: the table has no column {f.name!r}."
                                           f"{did_you_mean(f.name, columns)} Its columns: {', '.join(columns)}.")
