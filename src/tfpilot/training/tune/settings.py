"""What a search is: the base config, the space, the objective and the budget, saved as
``DIR/tune.json`` so that ``tfpilot tune --resume DIR`` and every worker process read the same.

Example:
    >>> parse_duration("30m"), parse_duration("2h"), parse_duration("90")
    (1800.0, 7200.0, 90.0)
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tfpilot.config.loader import ConfigError

#: The file of a search directory that holds its settings.
SETTINGS = "tune.json"
#: The Optuna study name inside the storage.
STUDY_NAME = "tfpilot-tune"

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float | None) -> float | None:
    """``"30m"`` -> 1800.0 seconds (units s, m, h, d; a bare number is seconds); None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smhd]?)\s*", str(text))
    if not match:
        raise ConfigError(f"timeout {text!r}: expected a duration such as 90s, 30m or 2h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def check_objective(metric: str, direction: str | None) -> str:
    """The direction of ``metric``: a validation metric (``val_...``), never a test one; the
    direction must be explicit for any metric but ``val_accuracy`` (maximize).

    Raises:
        ConfigError: a non-validation metric, or a missing direction.
    """
    if not metric.startswith("val_"):
        raise ConfigError(f"metric {metric!r}: a search optimises a validation metric (val_accuracy, val_loss, ...), "
                          "never a training or test one: the test split is for the final figure only")
    if direction is None:
        if metric != "val_accuracy":
            raise ConfigError(f"metric {metric!r}: say which way is better with --direction maximize or minimize")
        return "maximize"
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"direction {direction!r}: expected maximize or minimize")
    return direction


@dataclass(frozen=True)
class TuneSettings:
    """A search's settings (see ``docs/tune.md``).

    Args:
        base: the config tree every trial starts from (``output.run_dir`` and ``tune`` unset).
        space: the search space as YAML (``{key: {kind: [...]}}``).
        metric, direction: the objective (a ``val_`` metric of the epoch logs).
        trials: trials to finish in all (pruned and failed ones count; a killed one is rerun).
        jobs: worker processes.
        timeout_s: no new trial starts after this many seconds of this invocation (None: no limit).
        pruner, pruner_startup_trials, pruner_warmup_epochs: the pruner and its patience.
        seed: the sampler's seed (worker k uses seed + k).
        storage: an Optuna RDB URL (None: the journal file ``DIR/journal.log``).
        enqueue: config values of trials to run first (``{key: value}`` each).
    """

    base: dict[str, Any]
    space: dict[str, Any]
    metric: str = "val_accuracy"
    direction: str = "maximize"
    trials: int = 20
    jobs: int = 1
    timeout_s: float | None = None
    pruner: str = "median"
    pruner_startup_trials: int = 5
    pruner_warmup_epochs: int = 1
    seed: int = 0
    storage: str | None = None
    enqueue: list[dict[str, Any]] = field(default_factory=list)

    def save(self, out_dir: Path) -> Path:
        path = Path(out_dir) / SETTINGS
        path.write_text(json.dumps(asdict(self), indent=1, default=str), encoding="utf-8")
        return path

    @classmethod
    def load(cls, out_dir: str | Path) -> TuneSettings:
        path = Path(out_dir) / SETTINGS
        if not path.is_file():
            raise ConfigError(f"{out_dir} is not a tfpilot tune directory (no {SETTINGS}); start a search with "
                              "tfpilot tune CONFIG --out DIR")
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def updated(self, **changes: Any) -> TuneSettings:
        """A copy with the changes that are not None."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
