"""The search space: dotted config keys and their ranges, checked against the schema before
any trial, sampled through an Optuna trial and applied to a config tree.

Example:
    >>> space = SearchSpace.parse({"train.optimizer.learning_rate": {"log_uniform": [1e-4, 1e-2]}})
    >>> space.check({"data": {"dataset": "digits"}})
    >>> tree = space.apply({"data": {"dataset": "digits"}}, {"train.optimizer.learning_rate": 3e-3})
    >>> tree["train"]["optimizer"]["learning_rate"]
    0.003
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tfpilot.config.loader import ConfigError, read_yaml, set_path, validate_tree
from tfpilot.config.tune import ParamRange

#: Sections a search may not touch: where runs go, and the search itself.
FORBIDDEN = ("output", "tune", "chosen", "imports")


def _primitive(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def as_param(value: Any) -> Any:
    """A choice as Optuna stores it: primitives as they are, lists and mappings as flow YAML."""
    return value if _primitive(value) else yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


@dataclass(frozen=True)
class SearchSpace:
    """Dotted config key -> :class:`~tfpilot.config.tune.ParamRange`.

    Args:
        ranges: the keys and their ranges, in the order they are sampled.
    """

    ranges: dict[str, ParamRange]

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str = "tune.space") -> SearchSpace:
        """Read a space from ``{key: {kind: [...]}}`` (a ``--space`` file or the ``tune:`` section)."""
        if not raw:
            raise ConfigError(f"{where}: the search space is empty: name at least one config key, e.g. "
                              "train.optimizer.learning_rate: {log_uniform: [1e-4, 1e-2]}")
        ranges: dict[str, ParamRange] = {}
        problems = []
        for key, spec in raw.items():
            try:
                ranges[str(key)] = spec if isinstance(spec, ParamRange) else ParamRange.model_validate(spec)
            except ValidationError as exc:
                problems.append(f"  - {key}: " + "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()))
        if problems:
            raise ConfigError(f"{where}: invalid ranges:\n" + "\n".join(problems))
        return cls(ranges)

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """A ``--space FILE.yaml``: a mapping of dotted keys to ranges (or a file with a ``space:`` key)."""
        raw = read_yaml(path)
        return cls.parse(raw.get("space", raw) if set(raw) <= {"space"} else raw, where=str(path))

    def check(self, base: Mapping[str, Any]) -> None:
        """Refuse, before any trial, a key the schema does not know (with a did-you-mean) or a
        value it rejects: every bound and every choice is applied to ``base`` and validated.

        Raises:
            ConfigError: naming every bad key.
        """
        problems = []
        for key, rng in self.ranges.items():
            path = key.split(".")
            if path[0] in FORBIDDEN or any(not p for p in path):
                problems.append(f"  - {key}: a search may not set {path[0]!r} keys")
                continue
            for value in rng.values:
                tree = copy.deepcopy(dict(base))
                try:
                    set_path(tree, path, value)
                    validate_tree(tree)
                except ConfigError as exc:
                    lines = [ln.strip().removeprefix("- ") for ln in str(exc).splitlines()
                             if not ln.startswith("invalid configuration")]
                    problems.append(f"  - {key} = {value!r}: " + " ".join(lines).removeprefix(f"--set {key}: "))
                    break
        if problems:
            raise ConfigError("the search space does not fit the config schema (nothing was run):\n"
                              + "\n".join(problems))

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Sample every key through an Optuna ``trial``: ``{key: config value}``."""
        values = {}
        for key, rng in self.ranges.items():
            low_high = rng.values
            if rng.kind == "log_uniform":
                values[key] = trial.suggest_float(key, *low_high, log=True)
            elif rng.kind == "uniform":
                values[key] = trial.suggest_float(key, *low_high)
            elif rng.kind == "int":
                values[key] = trial.suggest_int(key, *low_high)
            else:
                values[key] = self.to_value(key, trial.suggest_categorical(key, [as_param(v) for v in low_high]))
        return values

    def to_value(self, key: str, param: Any) -> Any:
        """The config value of an Optuna param (a list choice is stored as its YAML text)."""
        rng = self.ranges[key]
        if rng.kind != "choice":
            return param
        return next(v for v in rng.values if as_param(v) == param)

    def to_params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Config values -> Optuna params (for ``enqueue_trial``)."""
        unknown = sorted(set(values) - set(self.ranges))
        if unknown:
            raise ConfigError(f"enqueued values for keys outside the search space: {', '.join(unknown)}")
        return {k: as_param(v) if self.ranges[k].kind == "choice" else v for k, v in values.items()}

    def apply(self, base: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of the config tree ``base`` with ``values`` set at their dotted keys."""
        tree = copy.deepcopy(dict(base))
        for key, value in values.items():
            set_path(tree, key.split("."), value)
        return tree

    def to_yaml(self) -> dict[str, Any]:
        return {k: r.to_yaml() for k, r in self.ranges.items()}

