"""The leaderboard's out-of-fold predictions: on a small table, the ensemble's weights are chosen
on every train + val row, not on the few validation rows alone.

Caruana's selection on a validation split of ~80 rows (auto-mpg's) is mostly noise: its weights
move from split to split. With ``train.cv_folds`` (``auto``: :data:`AUTO_FOLDS` folds when the
validation split has fewer than :data:`AUTO_MAX_VAL_ROWS` rows) each candidate also trains once
per fold of train + val through the one fit path (``data.cv_fold``: fold ``i`` validates, the
others train; the test rows stay out), in ``RUN/folds/<name>/<i>/``. Each row of train + val is
predicted by the fold model that did not train on it; those out-of-fold predictions weigh the
ensemble, and the median of the folds' (and the first fit's) early-stopped length sets each
member's refit (AutoGluon's bagging, whose fold models choose the weights, then ``refit_full``).

Example:
    >>> k = fold_count(cfg, val_rows=78, rows=396)  # doctest: +SKIP
    >>> oof = fit_folds(entry.trainer.config, "ydf_gbt_rank1", k, run_dir, None)  # doctest: +SKIP
    >>> len(oof.ids), sorted(oof.outputs)  # doctest: +SKIP
    (318, ['mpg'])
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import Config
from tfpilot.training.leaderboard_refit import deadline_callback, kept_fit

log = logging.getLogger(__name__)

#: Where the candidates' fold runs go inside the leaderboard's run.
FOLDS = "folds"
#: ``train.cv_folds: auto``: this many folds ...
AUTO_FOLDS = 5
#: ... when the validation split has fewer rows than this ...
AUTO_MAX_VAL_ROWS = 500
#: ... and each fold would validate on at least this many rows (fewer: a fold may hold none).
AUTO_MIN_FOLD_ROWS = 20


def fold_count(config: Config, val_rows: int, rows: int) -> int:
    """How many folds weigh the ensemble: ``train.cv_folds``, or for ``auto``
    :data:`AUTO_FOLDS` when ``val_rows`` < :data:`AUTO_MAX_VAL_ROWS` and the ``rows`` of train + val
    give each fold :data:`AUTO_MIN_FOLD_ROWS`, else 0 (the validation split).

    Example:
        >>> from tfpilot.config import load_config
        >>> cfg = load_config({"data": {"dataset": "t.csv"}, "features": {"outputs": ["y"]}})
        >>> fold_count(cfg, 78, 396), fold_count(cfg, 2700, 13500), fold_count(cfg, 4, 24)
        (5, 0, 0)
    """
    folds = config.train.cv_folds
    if folds == "auto":
        return AUTO_FOLDS if 0 < val_rows < AUTO_MAX_VAL_ROWS and rows >= AUTO_FOLDS * AUTO_MIN_FOLD_ROWS else 0
    return int(folds)


@dataclass
class OutOfFold:
    """A candidate's fold fits: each train + val row's prediction by the fold model that did not
    train on it (``outputs``, head key -> array, rows in ``ids`` order), the rows' ``targets``,
    what each fold fit kept (:func:`~tfpilot.training.leaderboard_refit.kept_fit`) and their
    fit seconds."""

    ids: np.ndarray
    outputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]
    kept: list[dict[str, Any]]
    fit_s: float


def fold_config(first: Config, fold: int, folds: int, run_dir: Path, seconds: float | None) -> Config:
    """A candidate's config for fold ``fold`` of ``folds``: its first fit's resolved config with
    ``data.cv_fold``, into ``run_dir`` (a forest's learner gets ``seconds`` as
    ``maximum_training_duration_seconds``)."""
    from tfpilot.config.loader import validate_tree
    from tfpilot.models.ydf import is_forest

    tree = first.model_dump(mode="json")
    tree["data"]["cv_fold"] = [fold, folds]
    if seconds is not None and is_forest(tree["model"]["name"]):
        tree["model"]["params"]["maximum_training_duration_seconds"] = round(max(seconds, 1.0), 1)
    tree["train"]["callbacks"]["progress"] = "none"
    tree["output"] = {**tree["output"], "run_dir": str(run_dir), "resume_if_exists": False, "overwrite": False}
    tree["chosen"] = {**first.chosen, "data.cv_fold": f"fold {fold + 1} of {folds} of train + val: the leaderboard "
                      "weighs its ensemble on out-of-fold predictions (train.cv_folds)",
                      "train.callbacks.progress": "none: a fold fit logs one line (its history.csv has every epoch)"}
    return validate_tree(tree)


@contextmanager
def _one_line_per_fit() -> Iterator[None]:
    """Keep each fold fit to its warnings and this module's one line: the schema, the model and
    the epochs were logged by the candidate's first fit (k fits of 5 candidates would repeat them
    25 times)."""
    quiet = logging.getLogger("tfpilot")
    before, own, shown = quiet.level, log.level, log.getEffectiveLevel()
    quiet.setLevel(max(logging.WARNING, quiet.getEffectiveLevel()))
    log.setLevel(shown)
    try:
        yield
    finally:
        quiet.setLevel(before)
        log.setLevel(own)


def fit_folds(first: Config, name: str, folds: int, run_dir: Path, seconds: float | None) -> OutOfFold:
    """Train a candidate once per fold of train + val and predict each fold's validation rows.

    Args:
        first: the candidate's first fit's resolved config (``trainer.config``).
        name: the candidate's name.
        folds: the number of folds (>= 2).
        run_dir: the leaderboard's run directory (fold ``i`` goes to ``run_dir/folds/<name>/<i>/``).
        seconds: each fold fit's share of the time limit (None: no limit).

    Raises:
        UserError: a fold could not be trained (e.g. a fold holding no rows, refused by
            :func:`~tfpilot.data.table.prepare_table` before it trains).
    """
    from tfpilot.data.table_pipeline import predict_heads
    from tfpilot.training.trainer import Trainer

    ids, outputs, targets, kept, fit_s = [], [], [], [], 0.0
    for i in range(folds):
        cfg = fold_config(first, i, folds, run_dir / FOLDS / name / str(i), seconds)
        callbacks = [] if seconds is None else [deadline_callback(time.monotonic() + seconds, f"{name} fold {i + 1}")]
        with _one_line_per_fit():
            trainer = Trainer(cfg, callbacks=callbacks).fit()
        val = trainer.data_.splits["val"]  # never empty: prepare_table refuses a fold without rows
        log.info("leaderboard: %s fold %d of %d: %d rows train, %d validate, %s, %.1f s", name, i + 1, folds,
                 len(trainer.data_.splits["train"]), len(val),
                 ", ".join(f"{k} {v}" for k, v in kept_fit(trainer).items()),
                 float(trainer.run_.metrics.get("train_seconds", 0.0)))
        ids.append(val.ids)
        outputs.append(predict_heads(trainer.model_, val, trainer.data_.spec, cfg.train.evaluation_batch))
        targets.append(val.targets)
        kept.append(kept_fit(trainer))
        fit_s += float(trainer.run_.metrics.get("train_seconds", 0.0))
    order = np.argsort(np.concatenate(ids), kind="stable")

    def joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}

    log.info("leaderboard: %s trained on %d folds of train + val in %.1f s", name, folds, fit_s)
    return OutOfFold(np.concatenate(ids)[order], joined(outputs), joined(targets), kept, fit_s)


def median_kept(kept: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of several fits' kept lengths (:func:`~tfpilot.training.leaderboard_refit.kept_fit`):
    each head's trees, or the epochs (and epochs run).

    Example:
        >>> median_kept([{"epochs": 4, "epochs_run": 9}, {"epochs": 12, "epochs_run": 17},
        ...              {"epochs": 7, "epochs_run": 12}])
        {'epochs': 7, 'epochs_run': 12}
        >>> median_kept([{"num_trees": {"y": 40}}, {"num_trees": {"y": 90}}])
        {'num_trees': {'y': 65}}
    """
    def mid(values: list[int]) -> int:
        return int(round(float(np.median(values))))

    if "num_trees" in kept[0]:
        heads = kept[0]["num_trees"]
        return {"num_trees": {h: mid([k["num_trees"][h] for k in kept if h in k.get("num_trees", {})]) for h in heads}}
    return {key: mid([k[key] for k in kept]) for key in ("epochs", "epochs_run")}


__all__ = ["AUTO_FOLDS", "AUTO_MAX_VAL_ROWS", "AUTO_MIN_FOLD_ROWS", "FOLDS", "OutOfFold", "fit_folds", "fold_config",
           "fold_count", "median_kept"]
