"""The ``tune:`` section: what ``tfpilot tune`` searches and how.

The search space maps dotted config keys to one distribution each. Its keys are checked
against the schema by the tuner before any trial runs (every bound and every choice is
applied to the config and validated); here only the shape of each range is checked.
``tfpilot train`` does not read this section: it belongs to ``tfpilot tune``, and
``DIR/best.yaml`` leaves it out.

Example:
    >>> cfg = TuneConfig.model_validate({"space": {
    ...     "train.optimizer.learning_rate": {"log_uniform": [1e-4, 1e-2]},
    ...     "model.name": {"choice": ["mlp", "cnn"]}}})
    >>> cfg.space["train.optimizer.learning_rate"].kind, cfg.space["model.name"].values
    ('log_uniform', ['mlp', 'cnn'])
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

#: The distributions a space key may name.
KINDS = ("log_uniform", "uniform", "int", "choice")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ParamRange(_Strict):
    """One searched key: exactly one of ``log_uniform: [a, b]``, ``uniform: [a, b]``,
    ``int: [a, b]`` (both ends included) or ``choice: [v1, v2, ...]`` (any YAML values)."""

    log_uniform: tuple[float, float] | None = None
    uniform: tuple[float, float] | None = None
    int_: tuple[int, int] | None = Field(None, alias="int")
    choice: list[Any] | None = Field(None, min_length=1)

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    @model_validator(mode="after")
    def _one_range(self) -> ParamRange:
        given = [k for k in KINDS if self._raw(k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {', '.join(given) or 'none'}), "
                             "e.g. {log_uniform: [1e-4, 1e-2]}")
        if self.kind != "choice":
            low, high = self._raw(self.kind)
            if not low < high:
                raise ValueError(f"{self.kind}: the low end must be below the high end (got [{low}, {high}])")
            if self.kind == "log_uniform" and low <= 0:
                raise ValueError(f"log_uniform: both ends must be positive (got [{low}, {high}])")
        return self

    @model_serializer(mode="wrap")
    def _only_the_range(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    def _raw(self, kind: str) -> Any:
        return self.int_ if kind == "int" else getattr(self, kind)

    @property
    def kind(self) -> str:
        """``log_uniform``, ``uniform``, ``int`` or ``choice``."""
        return next(k for k in KINDS if self._raw(k) is not None)

    @property
    def values(self) -> list[Any]:
        """The values a config may get: both ends of a range, every choice."""
        return list(self._raw(self.kind))

    def to_yaml(self) -> dict[str, Any]:
        return {self.kind: list(self._raw(self.kind))}


class TuneConfig(_Strict):
    """``tfpilot tune``: the search space and the search's settings (flags override them)."""

    space: dict[str, ParamRange] = Field(
        default_factory=dict, description="Dotted config key -> {log_uniform|uniform|int|choice: ...}.")
    metric: str = Field("val_accuracy", description="The validation metric to optimise (a per-epoch log key "
                        "starting with val_; never a test metric).")
    direction: Literal["maximize", "minimize"] | None = Field(
        None, description="Required unless metric is val_accuracy (maximize).")
    trials: int = Field(20, gt=0)
    jobs: int = Field(1, gt=0, description="Processes sharing the study.")
    timeout: str | float | None = Field(
        None, description="No new trial starts after this long, e.g. 30m, 2h, 90s (a number: seconds).")
    pruner: Literal["median", "halving", "none"] = "median"
    pruner_startup_trials: int = Field(5, ge=0, description="median: trials completed before any pruning.")
    pruner_warmup_epochs: int = Field(1, ge=0, description="median: epochs of a trial before it may be pruned.")
    seed: int = Field(0, description="The sampler's seed (process k of --jobs uses seed + k).")
