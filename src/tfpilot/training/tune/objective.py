"""One trial: sample the space, train the config through the one fit path into
``DIR/trials/NNN/``, and return its validation metric.

Example:
    >>> value = run_trial(study.ask(), settings, space, "tune-out")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tfpilot.config.loader import validate_tree
from tfpilot.training.tune.settings import TuneSettings
from tfpilot.training.tune.space import SearchSpace

#: Where the trials' run directories go, inside the search directory.
TRIALS = "trials"


def trial_dir(out_dir: str | Path, number: int) -> Path:
    """``DIR/trials/NNN``: trial ``number``'s run directory."""
    return Path(out_dir) / TRIALS / f"{number:03d}"


def final_value(metrics: dict[str, Any], history: dict[str, list[float]], metric: str) -> float:
    """The trial's objective: ``metrics.json``'s ``val`` entry for ``metric`` (the model the run
    kept), else the metric's last epoch value."""
    val = metrics.get("val") or {}
    name = metric.removeprefix("val_")
    if isinstance(val.get(name), (int, float)):
        return float(val[name])
    values = history.get(metric) or [math.nan]
    return float(values[-1])


def run_trial(trial: Any, settings: TuneSettings, space: SearchSpace, out_dir: str | Path) -> float:
    """Train ``trial``'s config; its value, or ``optuna.TrialPruned`` when the pruner stopped it.

    Args:
        trial: an Optuna trial (asked, RUNNING).
        settings: the search's settings.
        space: the search space.
        out_dir: the search directory.
    """
    import optuna

    from tfpilot.training.trainer import Trainer
    from tfpilot.training.tune.pruning import PruneOnEpoch

    values = space.suggest(trial)
    run_dir = trial_dir(out_dir, trial.number)
    tree = space.apply(settings.base, values)
    tree.setdefault("output", {})["run_dir"] = str(run_dir)
    trial.set_user_attr("run_dir", str(run_dir))
    callback = PruneOnEpoch(trial, settings.metric)
    trainer = Trainer(validate_tree(tree), callbacks=[callback]).fit()
    if callback.pruned_at is not None:
        raise optuna.TrialPruned(f"pruned after epoch {callback.pruned_at + 1}")
    return final_value(trainer.run_.metrics, trainer.history_, settings.metric)
