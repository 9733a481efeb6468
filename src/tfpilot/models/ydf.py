"""Decision forests in the zoo: YDF gradient-boosted trees (``ydf_gbt``) and random forests
(``ydf_rf``), table models like ``multitask``.

A builder returns a ``keras.Model`` over the table's named raw inputs with one
:class:`~tfpilot.models.ydf_layers.ForestHead` per head: one YDF model per head, reading the
number, category, text and date columns directly (text as its set of words, a date as its year,
month, day of week and days since a reference date). Image columns are
taken by the model's signature but left out of the forests (the training log says so).

``model.params`` are the learner's hyper-parameters, checked by :class:`GBTParams` /
:class:`RFParams` (unknown keys are errors; unset ones keep YDF's defaults). The forests are
trained by :mod:`tfpilot.training.ydf_fit` (YDF's learner, not ``model.fit``), on the run's
recorded training split, with the validation split for early stopping.

Example:
    >>> from tfpilot.spec import FeatureSpec, TableSpec
    >>> spec = TableSpec((FeatureSpec("size", "number"), FeatureSpec("colour", "category")),
    ...                  (FeatureSpec("kind", "category", classes=("a", "b", "c")),))
    >>> model = ydf_gbt(spec, num_trees=50)
    >>> [(h.name, h.learner, h.hyperparameters) for h in forest_heads(model)]
    [('kind', 'GRADIENT_BOOSTED_TREES', {'num_trees': 50})]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import keras
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tfpilot.errors import UserError
from tfpilot.models.multitask import table_input
from tfpilot.models.registry import register_model
from tfpilot.models.ydf_layers import FOREST_KINDS, ForestHead, forest_heads
from tfpilot.spec import TableSpec

__all__ = ["FOREST", "GBTParams", "RFParams", "forest_heads", "is_forest", "ydf_gbt", "ydf_rf"]

#: The registry tag of a decision-forest table model: it leaves a table's image columns out
#: (``"forest" in MODELS.info(name).tags``).
FOREST = "forest"


def is_forest(name: str) -> bool:
    """Whether the registered model ``name`` is a decision forest (tagged :data:`FOREST`): it leaves a
    table's image columns out and takes a learner's time limit, not epochs.

    Example:
        >>> is_forest("ydf_gbt"), is_forest("multitask"), is_forest("no_such_model")
        (True, False, False)
    """
    from tfpilot.models.registry import MODELS

    return name in MODELS and FOREST in MODELS.info(name).tags


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_trees: int | None = Field(None, gt=0, description="Trees (GBT: the most, early stopping may use fewer).")
    max_depth: int | None = Field(None, gt=0, description="Depth of a tree.")
    min_examples: int | None = Field(None, gt=0, description="Fewest training rows in a leaf.")
    num_candidate_attributes_ratio: float | None = Field(
        None, gt=0, le=1, description="Share of the columns tried at each split.")
    growing_strategy: Literal["LOCAL", "BEST_FIRST_GLOBAL"] | None = None
    max_num_nodes: int | None = Field(None, gt=0, description="Nodes of a tree (BEST_FIRST_GLOBAL).")
    num_threads: int | None = Field(None, gt=0, description="Training threads (default: the CPU's cores).")
    categorical_algorithm: Literal["CART", "ONE_HOT", "RANDOM"] | None = None
    split_axis: Literal["AXIS_ALIGNED", "SPARSE_OBLIQUE"] | None = None
    sparse_oblique_normalization: Literal["NONE", "STANDARD_DEVIATION", "MIN_MAX"] | None = None
    sparse_oblique_num_projections_exponent: float | None = Field(None, gt=0)
    maximum_training_duration_seconds: float | None = Field(
        None, gt=0, description="Stop growing trees after this long (the leaderboard's time limit sets it).")


class GBTParams(_Params):
    """``ydf_gbt``'s ``model.params``: keyword arguments of ``ydf.GradientBoostedTreesLearner``."""

    shrinkage: float | None = Field(None, gt=0, le=1, description="The learning rate of boosting.")
    subsample: float | None = Field(None, gt=0, le=1)
    l1_regularization: float | None = Field(None, ge=0)
    l2_regularization: float | None = Field(None, ge=0)
    early_stopping: Literal["NONE", "MIN_LOSS_FINAL", "LOSS_INCREASE"] | None = None
    early_stopping_num_trees_look_ahead: int | None = Field(None, gt=0)
    validation_ratio: float | None = Field(
        None, ge=0, lt=1, description="Share of the training rows YDF holds out for early stopping when the run has "
        "no validation split (YDF's default 0.1); 0: every training row grows trees (no early stopping).")
    num_trees_by_head: dict[str, int] | None = Field(
        None, description="Trees of each head's forest, by output name (overrides num_trees for those heads): the "
        "leaderboard's refit sets the trees each head's early stopping kept.")

    @field_validator("num_trees_by_head")
    @classmethod
    def _positive_trees(cls, v: dict[str, int] | None) -> dict[str, int] | None:
        if v is not None and any(n <= 0 for n in v.values()):
            raise ValueError(f"num_trees_by_head: every count must be positive, got {v}")
        return v


class RFParams(_Params):
    """``ydf_rf``'s ``model.params``: keyword arguments of ``ydf.RandomForestLearner``."""

    winner_take_all: bool | None = None
    bootstrap_training_dataset: bool | None = None


def _shared(categorical_algorithm: str | None, split_axis: str | None, sparse_oblique_normalization: str | None,
            sparse_oblique_num_projections_exponent: float | None,
            maximum_training_duration_seconds: float | None) -> dict[str, Any]:
    """The hyper-parameters both learners take besides the trees' shape (YDF's ``benchmark_rank1``
    template sets the first four; the leaderboard's time limit the last)."""
    return dict(categorical_algorithm=categorical_algorithm, split_axis=split_axis,
                sparse_oblique_normalization=sparse_oblique_normalization,
                sparse_oblique_num_projections_exponent=sparse_oblique_num_projections_exponent,
                maximum_training_duration_seconds=maximum_training_duration_seconds)


def _forests(spec: TableSpec, learner: str, schema: type[_Params], params: Mapping[str, Any], name: str) -> Any:
    """The keras model: every raw input, one :class:`ForestHead` per head."""
    try:
        hyper = schema(**params).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise UserError(f"model.params of {name}: {exc}") from None
    if not spec.inputs or not spec.outputs:
        raise UserError("a table model needs at least one input and one output column")
    features = {c.key: c.kind for c in spec.inputs if c.kind in FOREST_KINDS}
    if not features:
        raise UserError(f"{name} reads number, category, text and date columns; the table's inputs are "
                        f"{', '.join(f'{c.name} ({c.kind})' for c in spec.inputs)}")
    dates = {c.key: getattr(c, "format", "") for c in spec.inputs if c.kind == "date"}
    inputs = {c.key: table_input(c) for c in spec.inputs}
    outputs = {o.key: ForestHead(o.to_dict(), features, learner, head_hyperparameters(hyper, o.name, spec), dates,
                                 name=o.key)(inputs)
               for o in spec.outputs}
    return keras.Model(inputs, outputs, name=name)


def head_hyperparameters(hyper: Mapping[str, Any], head: str, spec: TableSpec) -> dict[str, Any]:
    """The learner's hyper-parameters of one head: ``num_trees_by_head[head]``, where given, is its
    ``num_trees``.

    Args:
        hyper: the model's checked params (None values left out).
        head: the head's output name.
        spec: the table's spec (every name of ``num_trees_by_head`` must be one of its outputs).

    Example:
        >>> from tfpilot.spec import FeatureSpec, TableSpec
        >>> spec = TableSpec((FeatureSpec("x", "number"),), (FeatureSpec("y", "number"),))
        >>> head_hyperparameters({"num_trees": 300, "num_trees_by_head": {"y": 54}}, "y", spec)
        {'num_trees': 54}
    """
    out = dict(hyper)
    by_head = out.pop("num_trees_by_head", None) or {}
    unknown = sorted(set(by_head) - {o.name for o in spec.outputs})
    if unknown:
        raise UserError(f"num_trees_by_head names {', '.join(unknown)}, not outputs of the table "
                        f"({', '.join(o.name for o in spec.outputs)})")
    if head in by_head:
        out["num_trees"] = int(by_head[head])
    return out


@register_model("ydf_gbt", task="table", tags=(FOREST,), description="YDF gradient-boosted trees: one forest per head")
def ydf_gbt(input_spec: TableSpec, num_classes: int = 0, encoders: Mapping[str, Any] | None = None,
            num_trees: int | None = None, max_depth: int | None = None, min_examples: int | None = None,
            num_candidate_attributes_ratio: float | None = None, growing_strategy: str | None = None,
            max_num_nodes: int | None = None, num_threads: int | None = None, shrinkage: float | None = None,
            subsample: float | None = None, l1_regularization: float | None = None,
            l2_regularization: float | None = None, early_stopping: str | None = None,
            early_stopping_num_trees_look_ahead: int | None = None, categorical_algorithm: str | None = None,
            split_axis: str | None = None, sparse_oblique_normalization: str | None = None,
            sparse_oblique_num_projections_exponent: float | None = None,
            maximum_training_duration_seconds: float | None = None, validation_ratio: float | None = None,
            num_trees_by_head: Mapping[str, int] | None = None) -> Any:
    """Gradient-boosted trees (``ydf.GradientBoostedTreesLearner``), one model per head.

    Args:
        input_spec: the table's inputs and heads.
        num_classes: unused (the heads' classes are in ``input_spec.outputs``).
        encoders: unused (forests read the raw columns).
        num_trees, ...: the learner's hyper-parameters (:class:`GBTParams`); None keeps YDF's default
            (300 trees of depth 6, shrinkage 0.1, early stopping on the validation split's loss; a run
            without one: on ``validation_ratio`` (0.1) of the training rows, which then grow no tree).
    """
    params = dict(num_trees=num_trees, max_depth=max_depth, min_examples=min_examples,
                  num_candidate_attributes_ratio=num_candidate_attributes_ratio, growing_strategy=growing_strategy,
                  max_num_nodes=max_num_nodes, num_threads=num_threads, shrinkage=shrinkage, subsample=subsample,
                  l1_regularization=l1_regularization, l2_regularization=l2_regularization,
                  early_stopping=early_stopping,
                  early_stopping_num_trees_look_ahead=early_stopping_num_trees_look_ahead,
                  validation_ratio=validation_ratio,
                  num_trees_by_head=dict(num_trees_by_head) if num_trees_by_head is not None else None,
                  **_shared(categorical_algorithm, split_axis, sparse_oblique_normalization,
                            sparse_oblique_num_projections_exponent, maximum_training_duration_seconds))
    return _forests(input_spec, "GRADIENT_BOOSTED_TREES", GBTParams, params, "ydf_gbt")


@register_model("ydf_rf", task="table", tags=(FOREST,), description="YDF random forest: one forest per head")
def ydf_rf(input_spec: TableSpec, num_classes: int = 0, encoders: Mapping[str, Any] | None = None,
           num_trees: int | None = None, max_depth: int | None = None, min_examples: int | None = None,
           num_candidate_attributes_ratio: float | None = None, growing_strategy: str | None = None,
           max_num_nodes: int | None = None, num_threads: int | None = None, winner_take_all: bool | None = None,
           bootstrap_training_dataset: bool | None = None, categorical_algorithm: str | None = None,
           split_axis: str | None = None, sparse_oblique_normalization: str | None = None,
           sparse_oblique_num_projections_exponent: float | None = None,
           maximum_training_duration_seconds: float | None = None) -> Any:
    """A random forest (``ydf.RandomForestLearner``), one model per head.

    Args:
        input_spec: the table's inputs and heads.
        num_classes: unused (the heads' classes are in ``input_spec.outputs``).
        encoders: unused (forests read the raw columns).
        num_trees, ...: the learner's hyper-parameters (:class:`RFParams`); None keeps YDF's default
            (300 trees of depth 16).
    """
    params = dict(num_trees=num_trees, max_depth=max_depth, min_examples=min_examples,
                  num_candidate_attributes_ratio=num_candidate_attributes_ratio, growing_strategy=growing_strategy,
                  max_num_nodes=max_num_nodes, num_threads=num_threads, winner_take_all=winner_take_all,
                  bootstrap_training_dataset=bootstrap_training_dataset,
                  **_shared(categorical_algorithm, split_axis, sparse_oblique_normalization,
                            sparse_oblique_num_projections_exponent, maximum_training_duration_seconds))
    return _forests(input_spec, "RANDOM_FOREST", RFParams, params, "ydf_rf")
