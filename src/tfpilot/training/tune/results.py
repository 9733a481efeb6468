"""What a search leaves beside its trials: ``best.yaml`` (a config ``tfpilot train`` takes),
``trials.csv`` and TensorBoard HParams summaries.

Example:
    >>> write_trials_csv(study, space, "tune-out")  # doctest: +SKIP
    PosixPath('tune-out/trials.csv')
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

from tfpilot.config.loader import dump_config, validate_tree
from tfpilot.training.tune.settings import TuneSettings
from tfpilot.training.tune.space import SearchSpace

log = logging.getLogger(__name__)

BEST, TRIALS_CSV, TENSORBOARD = "best.yaml", "trials.csv", "tensorboard"


def best_config(settings: TuneSettings, space: SearchSpace, trial: Any) -> Any:
    """The validated config of ``trial`` (a finished trial): the base config with its values,
    trained into a new run directory (``output.run_dir`` unset)."""
    values = {k: space.to_value(k, v) for k, v in trial.params.items()}
    tree = space.apply(settings.base, values)
    tree.setdefault("output", {})["run_dir"] = None
    tree["tune"] = None
    return validate_tree(tree)


def write_best(settings: TuneSettings, space: SearchSpace, study: Any, out_dir: Path) -> Path | None:
    """``DIR/best.yaml`` from the best COMPLETE trial (None: no trial completed)."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    header = (f"# tfpilot tune: the best of {len(study.trials)} trials, trial {best.number} "
              f"({settings.metric} = {best.value:.6g}, {settings.direction}); run dir {best.user_attrs.get('run_dir')}\n"
              f"# train it with: tfpilot train {out_dir / BEST}\n")
    path = out_dir / BEST
    path.write_text(header + dump_config(best_config(settings, space, best)), encoding="utf-8")
    return path


def write_trials_csv(study: Any, space: SearchSpace, out_dir: Path) -> Path:
    """``DIR/trials.csv``: one row per trial (number, state, value, every searched key,
    epochs reported, seconds, run directory, the trial it reruns)."""
    path = out_dir / TRIALS_CSV
    keys = list(space.ranges)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "state", "value", *keys, "epochs", "seconds", "run_dir", "retry_of"])
        for t in study.trials:
            seconds = t.duration.total_seconds() if t.duration else ""
            writer.writerow([t.number, t.state.name, "" if t.value is None else t.value,
                             *(t.params.get(k, "") for k in keys), len(t.intermediate_values),
                             f"{seconds:.1f}" if seconds != "" else "", t.user_attrs.get("run_dir", ""),
                             t.user_attrs.get("retry_of", "")])
    return path


def _hparam(key: str, rng: Any) -> Any:
    from tensorboard.plugins.hparams import api as hp

    if rng.kind == "choice":
        from tfpilot.training.tune.space import as_param

        return hp.HParam(key, hp.Discrete([as_param(v) for v in rng.values]))
    low, high = rng.values
    return hp.HParam(key, hp.IntInterval(low, high) if rng.kind == "int" else hp.RealInterval(float(low), float(high)))


def write_hparams(settings: TuneSettings, space: SearchSpace, study: Any, out_dir: Path) -> Path:
    """TensorBoard HParams summaries: ``DIR/tensorboard/`` (the experiment) and one run per
    finished trial (its params, its per-epoch metric and its value)."""
    import tensorflow as tf
    from optuna.trial import TrialState
    from tensorboard.plugins.hparams import api as hp

    root = out_dir / TENSORBOARD
    params = {k: _hparam(k, r) for k, r in space.ranges.items()}
    with tf.summary.create_file_writer(str(root)).as_default():
        hp.hparams_config(hparams=list(params.values()),
                          metrics=[hp.Metric(settings.metric, display_name=settings.metric)])
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        with tf.summary.create_file_writer(str(root / f"trial-{t.number:03d}")).as_default():
            hp.hparams({params[k]: v for k, v in t.params.items() if k in params}, trial_id=f"trial-{t.number:03d}")
            for step, value in sorted(t.intermediate_values.items()):
                tf.summary.scalar(settings.metric, value, step=step)
    return root
