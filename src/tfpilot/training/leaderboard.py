"""The leaderboard of a table: several candidate models on one recorded split, then their
ensemble chosen on validation, written as one run.

``model.name: auto`` (the default) on a table (a ``features`` section, ``--target``) makes
:func:`fit_leaderboard` train the candidates of ``train.preset`` (or ``train.candidates``), each
an ordinary run through the one fit path (:class:`~tfpilot.training.Trainer`) in
``RUN/candidates/<name>/``, all on the same stable hash split. Caruana's ensemble selection
(:func:`~tfpilot.training.ensemble.caruana_weights`) weighs them on the validation split only,
and the weighted ensemble, calibrated like any model (``train.calibration``), is ``RUN``
itself: one Keras model over the same named inputs and heads, so ``tfpilot evaluate / report /
predict / export / verify / serve`` take it as a single run.

``train.cv_folds`` (``auto``: on tables whose validation split has fewer than 500 rows, and train +
val at least 100): each candidate also trains on every fold of train + val
(``RUN/folds/<name>/<i>/``), and Caruana weighs them on those out-of-fold predictions instead of
on the few validation rows (:mod:`~tfpilot.training.leaderboard_folds`); each member's refit then
trains for the median length its first fit and its fold fits kept.

``train.refit`` (on by default): once the weights and the ensemble's temperature are chosen on
validation, each member with a weight > 0 is trained again through the same fit path on train +
val (``data.train_on_val``: the same split, its validation rows trained on) with what its first
fit found: a neural member for the epochs early stopping kept (its best epoch), a gradient-boosted
forest for the trees its early stopping kept (``num_trees``, YDF's early stopping off and no
internal hold-out: ``validation_ratio: 0``), its preprocessing adapted on the rows it trains on;
in ``RUN/refit/<name>/``. The same weights and temperatures (each member's and the ensemble's,
fitted on validation before the refit) make the refit ensemble, which is what ``RUN`` holds and
exports (AutoGluon's ``refit_full``).

``RUN/leaderboard.csv`` has one row per candidate (best validation figure first), a row
``ensemble`` (the ensemble of the first fits) and, after a refit, a last row ``ensemble_refit``
with its test figures only: ``candidate``, ``val_<m>`` / ``test_<m>`` of each head's headline
metrics (class heads: accuracy, loss; number heads: rmse, mae; ``<head>_<m>`` with several heads),
``cv_<m>`` (the out-of-fold figures, with ``train.cv_folds``), ``fit_s``, ``latency_ms_per_row``
(predicting the test split in batches of 256 in this process) and ``weight``. Every figure but
``ensemble_refit``'s is of models that never trained on val or test rows. ``metrics.json``
holds the run's model's figures like any run's (after a refit its
``val`` figures are in sample: ``out_of_sample`` says which are not, and ``first_fit`` keeps the
first fits' ensemble's), with ``search_seconds``, a ``leaderboard`` record (preset, time limit,
weights, skipped candidates, the folds that chose the weights) and a ``refit`` record.

``train.time_limit`` bounds the whole search (``auto``, the default: the preset's budget, 290 s
for ``fast``): each candidate gets its share of what is left, in proportion to its expected fit
time among the candidates still to train (:attr:`Candidate.cost`; what one leaves goes to the
next), so a slow machine cuts every candidate alike instead of the costliest (a neural candidate
stops after the epoch that passes its share, a forest's learner stops growing trees, and the log
says which); a candidate that no longer fits is skipped; the log says so. With ``train.refit``
the first fits share :data:`FIRST_FIT_SHARE` of it, and a member whose refit would not fit in
what is left keeps its first fit (the log says so).

Example:
    >>> from tfpilot.config import load_config
    >>> cfg = load_config({"data": {"dataset": "melbourne-housing.csv"}, "features": {"outputs": ["Price"]}})
    >>> result = fit_leaderboard(cfg)  # doctest: +SKIP
    >>> result.run_.metrics["leaderboard"]["weights"]  # doctest: +SKIP
    {'ydf_gbt': 0.72, 'linear': 0.0, 'multitask': 0.28}
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot import runs as rundir
from tfpilot.config import Config, save_config
from tfpilot.config.schema import AUTO_MODEL, EVAL_BATCH, TrainConfig
from tfpilot.errors import AlreadyExistsError, UserError
from tfpilot.runs import Run, write_json
from tfpilot.training.leaderboard_folds import FOLDS, OutOfFold, fit_folds, fold_count, median_kept
from tfpilot.training.leaderboard_refit import (MIN_SECONDS, REFIT, Refit, deadline_callback, kept_fit,
                                                refit_ensemble, refit_members, refit_record)

log = logging.getLogger(__name__)

#: The run's leaderboard file (read by the report's leaderboard section).
LEADERBOARD = "leaderboard.csv"
#: Where the candidates' run directories go inside the leaderboard's run.
CANDIDATES = "candidates"
#: Share of the time limit kept for the ensemble, its calibration and the report.
RESERVE = 0.1
#: With ``train.refit``: the share of the search's time (the limit less :data:`RESERVE`) the first
#: fits may take; the refit of the chosen members gets the rest, and whatever the first fits left.
FIRST_FIT_SHARE = 0.6


@dataclass(frozen=True)
class Candidate:
    """One model of the leaderboard.

    Attributes:
        name: its name in the leaderboard and its folder under ``RUN/candidates/``.
        model: the registered table model.
        params: its ``model.params``.
        train: dotted ``train.*`` keys of its recipe, used where the config keeps the default.
        cost: its expected fit time relative to the other candidates' (the ``benchmark_rank1``
            trees: 1): its share of a time limit is ``cost`` over the sum of the costs of the
            candidates still to train (:func:`time_share`). ``train.candidates`` cost 1 each.
    """

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    cost: float = 1.0


#: YDF's ``benchmark_rank1`` template of gradient-boosted trees (``hyperparameter_templates()``).
BENCHMARK_RANK1 = {"growing_strategy": "BEST_FIRST_GLOBAL", "categorical_algorithm": "RANDOM",
                   "split_axis": "SPARSE_OBLIQUE", "sparse_oblique_normalization": "MIN_MAX",
                   "sparse_oblique_num_projections_exponent": 1.0}
_NEURAL = {"train.epochs": 40, "train.batch_size": 256, "train.callbacks.early_stopping.patience": 5}

#: Every candidate's ``train.*`` keys, where the config keeps the default: a leaderboard is not
#: resumed and early stopping restores a neural candidate's best epoch, so no ``backup/`` and no
#: ``checkpoints/best.keras`` (two model saves per epoch: 10 of a small table's 15 s fit).
CANDIDATE_RUN = {"train.callbacks.backup": False, "train.callbacks.checkpoint": False}

#: YDF's ``better_default`` template of gradient-boosted trees: as fast as its defaults.
BEST_FIRST = {"growing_strategy": "BEST_FIRST_GLOBAL"}

#: The candidates of each ``train.preset``, the most useful first (a time limit skips the last).
#: Chosen on melbourne-housing's validation split (docs/bench/tables-preset.md): the benchmark_rank1 trees
#: were the best single model, the best-first trees and the neural model added the most to them in
#: the ensemble; the random forest and YDF's default trees added little for their time. The rank1
#: trees again at half the shrinkage (up to 1,000 trees) lowered the ensemble's validation RMSE by
#: 0.8% on melbourne and 0.1% on auto-mpg, weights fitted on half of val and scored on the other
#: half (docs/bench/refit.md, bench/refit_lever.py).
#: The costs (:attr:`Candidate.cost`) are the first fits' times on melbourne-housing and petfinder
#: (AMD EPYC with avx512_bf16, fd600b9 and f9266b5), relative to the rank1 trees' 11-24 s: the rank1
#: trees at half the shrinkage 30-54 s (the equal shares cut them at 42 s on 3 of 5 melbourne
#: splits), best-first trees 4-6 s on melbourne but 11 s on petfinder (a cost of 0.25 cut them
#: there on every split), the neural model 7-14 s and the linear one 9-14 s (docs/bench/refit.md).
#: A cheap candidate's cost errs high: what it leaves goes to the costly ones after it, while a
#: share too small cuts it. ``best``'s follow by the same reckoning; they were not measured.
PRESETS: dict[str, tuple[Candidate, ...]] = {
    "fast": (
        Candidate("ydf_gbt_rank1", "ydf_gbt", BENCHMARK_RANK1),
        Candidate("ydf_gbt_bfg", "ydf_gbt", BEST_FIRST, cost=0.5),
        Candidate("ydf_gbt_rank1_s05", "ydf_gbt", {**BENCHMARK_RANK1, "num_trees": 1000, "shrinkage": 0.05},
                  cost=2.0),
        Candidate("multitask", "multitask", {"hidden_units": [128, 64], "dropout": 0.1}, _NEURAL, cost=0.5),
        Candidate("linear", "linear", {}, _NEURAL, cost=0.5),
    ),
    "best": (
        Candidate("ydf_gbt_rank1", "ydf_gbt", {**BENCHMARK_RANK1, "num_trees": 1000, "shrinkage": 0.05}, cost=2.0),
        Candidate("ydf_gbt_bfg", "ydf_gbt", BEST_FIRST, cost=0.5),
        Candidate("multitask", "multitask", {"hidden_units": [256, 128], "dropout": 0.1},
                  {**_NEURAL, "train.epochs": 100, "train.callbacks.early_stopping.patience": 10}),
        Candidate("ydf_gbt", "ydf_gbt", cost=0.5),
        Candidate("ydf_rf", "ydf_rf", {"winner_take_all": False}),
        Candidate("linear", "linear", {}, _NEURAL, cost=0.5),
    ),
}


def time_share(left: float, cost: float, costs_to_come: list[float]) -> float:
    """A candidate's share of the seconds ``left``: its ``cost`` over the sum of its own and the
    ``costs_to_come`` of the candidates after it (what it leaves unused goes to them).

    Example:
        >>> round(time_share(157.0, 2.0, [0.5, 0.5]), 1), round(time_share(50.0, 0.5, [0.5]), 1)
        (104.7, 25.0)
    """
    return left * cost / (cost + sum(costs_to_come))


def candidates(config: Config) -> list[Candidate]:
    """The leaderboard's candidates: ``train.candidates`` (each with its preset recipe, if the
    preset has the model), else ``train.preset``'s.

    Example:
        >>> from tfpilot.config import load_config
        >>> cfg = load_config({"data": {"dataset": "t.csv"}, "features": {"outputs": ["y"]}})
        >>> [c.name for c in candidates(cfg)]
        ['ydf_gbt_rank1', 'ydf_gbt_bfg', 'ydf_gbt_rank1_s05', 'multitask', 'linear']
    """
    t = config.train
    preset = PRESETS[t.preset]
    if t.candidates is None:
        return list(preset)
    recipes = {c.model: c.train for c in reversed(preset)}  # a model's first candidate's recipe
    return [Candidate(name, name, dict(params or {}), recipes.get(name, {})) for name, params in t.candidates.items()]


#: A neural candidate's cost on a table with image columns, over its cost on one without: the
#: neural candidates read the images through a CNN, the forests leave them out. On fashion-9k's
#: image + productDisplayName -> articleType (9,583 rows, 75 classes; AMD EPYC with avx512_bf16,
#: no time limit) the first fits took: rank1 trees 40 s, best-first trees 42 s, rank1 trees at
#: half shrinkage 76 s, multitask 76 s (its best epoch at about 55 s), linear 145 s: the neural
#: ones 2-4x the rank1 trees' time, where a table without images gives them half of it.
IMAGE_COST = 8.0
#: ``train.time_limit: auto`` on a table with image columns: this many times the preset's budget.
#: The same fashion-9k run needed 462 s for its first fits alone; within the fast preset's 290 s
#: the rank1 trees at half shrinkage (weight 0.2 in the ensemble without a limit) were skipped and
#: the first fits' ensemble reached 0.9801 validation accuracy, against 0.9827 without a limit;
#: with twice the budget, 0.9822 (docs/bench/mm.md).
IMAGE_BUDGET = 2.0


def for_images(todo: list[Candidate], image_columns: list[str]) -> list[Candidate]:
    """The candidates as they train on a table with ``image_columns``: those that read the images
    first, at :data:`IMAGE_COST` times their cost, then the forests, which leave the images out and
    share what the others leave (so a time limit that cannot fit every fit cuts what sees least of
    the table). A table without image columns keeps the preset's order and costs.

    Example:
        >>> [(c.name, c.cost) for c in for_images(list(PRESETS["fast"]), ["photo"])][:3]
        [('multitask', 4.0), ('linear', 4.0), ('ydf_gbt_rank1', 1.0)]
    """
    if not image_columns:
        return todo
    from tfpilot.models.ydf import is_forest

    forests = [c for c in todo if is_forest(c.model)]
    readers = [replace(c, cost=c.cost * IMAGE_COST) for c in todo if c not in forests]
    if forests and readers:
        log.info("leaderboard: image column%s %s: %s train first (they read %s), the forests after",
                 "s" if len(image_columns) > 1 else "", ", ".join(image_columns),
                 ", ".join(c.name for c in readers), "them" if len(image_columns) > 1 else "it")
    return readers + forests


def _default(dotted: str) -> Any:
    node: Any = TrainConfig()
    for part in dotted.split(".")[1:]:
        node = getattr(node, part)
    return node


def _value(config: Config, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


def candidate_config(config: Config, cand: Candidate, run_dir: Path, seconds: float | None) -> Config:
    """The config of one candidate's run: the leaderboard's, with the candidate's model and
    params, its recipe's ``train`` keys (and :data:`CANDIDATE_RUN`'s) where the leaderboard's
    config keeps their defaults, no search keys, and ``run_dir``.

    Args:
        config: the leaderboard's config (``model.name: auto``).
        cand: the candidate.
        run_dir: its run directory.
        seconds: its share of the time limit (None: no limit); a forest's learner gets it as
            ``maximum_training_duration_seconds`` unless its params set that.
    """
    from tfpilot.config.loader import set_path, validate_tree
    from tfpilot.models.ydf import is_forest

    tree = config.model_dump(mode="json")
    params = dict(cand.params)
    if seconds is not None and is_forest(cand.model):
        params.setdefault("maximum_training_duration_seconds", round(max(seconds, 1.0), 1))
    tree["model"] = {"name": cand.model, "params": params}
    tree["train"].update(preset="fast", time_limit="auto", candidates=None, refit=True, cv_folds="auto")
    for key, value in {**CANDIDATE_RUN, **cand.train}.items():
        if _value(config, key) == _default(key):
            set_path(tree, key.split("."), value)
    tree["output"] = {**tree["output"], "run_dir": str(run_dir), "resume_if_exists": False}
    tree["chosen"] = {**config.chosen, "model.name": f"the {cand.name} candidate of the leaderboard "
                      f"({config.train.preset} preset) in {run_dir.parent.parent}"}
    return validate_tree(tree)


@dataclass
class Entry:
    """A trained candidate: its name, trainer, validation outputs and timings; with
    ``train.cv_folds``, its fold fits' out-of-fold predictions (``oof``) and the median length
    they and the first fit kept (``kept``, what its refit trains for)."""

    name: str
    trainer: Any
    val_outputs: dict[str, np.ndarray]
    latency_ms: float
    fit_s: float
    oof: OutOfFold | None = None
    kept: dict[str, Any] | None = None


class LeaderboardResult:
    """What :func:`fit_leaderboard` made: like a fitted Trainer (``run_``, ``model_``, ``data_``,
    ``chief_``), plus the candidates' ``entries``, the ensemble ``weights`` and the members'
    ``refits`` (by name; empty without a refit)."""

    chief_ = True

    def __init__(self, run: Run, model: Any, data: Any, entries: list[Entry], weights: dict[str, float],
                 refits: dict[str, Refit] | None = None) -> None:
        self.run_, self.model_, self.data_, self.entries, self.weights = run, model, data, entries, weights
        self.refits = refits or {}


def _skip_reason(config: Config, cand: Candidate) -> str | None:
    """Why ``cand`` cannot train with ``config``'s options (a forest and a neural option), or None."""
    from tfpilot.models.ydf import is_forest
    from tfpilot.training.ydf_fit import refused_options

    if not is_forest(cand.model):
        return None
    refused = refused_options(config)
    return f"decision forests cannot take {', '.join(refused)}" if refused else None


def _target(config: Config) -> Path:
    from tfpilot.training.trainer import default_run_dir

    out = config.output
    path = Path(out.run_dir) if out.run_dir else default_run_dir(config)
    if Run(path).started and not out.overwrite:
        raise AlreadyExistsError(f"{path} already holds a run. Choose another --run-dir, or pass --overwrite "
                                 "(output.overwrite=true) to replace it (a leaderboard is not resumed).")
    return path


def fit_leaderboard(config: Config) -> LeaderboardResult:
    """Train the leaderboard's candidates, then their Caruana ensemble, into one run directory.

    Args:
        config: a table config with ``model.name: auto``.

    Returns:
        a :class:`LeaderboardResult` (the run is the ensemble's).

    Raises:
        UserError: not a table with ``model.name: auto``, or no candidate could be trained.
        AlreadyExistsError: the run directory holds a run and ``output.overwrite`` is not set.
    """
    from tfpilot.data.image_probe import probe_images_of
    from tfpilot.training.trainer import Trainer

    if config.features is None or config.model.name != AUTO_MODEL:
        raise UserError("the leaderboard trains model.name auto on a table (a features section, --target)")
    started = time.monotonic()
    image_columns = [p.column for p in probe_images_of(config)]
    config = _budgeted(config, image_columns)
    limit = config.train.time_limit
    deadline = None if limit is None else started + limit * (1 - RESERVE)
    first_fits = None if limit is None else started + limit * (1 - RESERVE) * (
        FIRST_FIT_SHARE if config.train.refit else 1.0)
    path = _target(config)
    if config.output.overwrite and Run(path).started:
        import shutil

        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    todo = for_images(candidates(config), image_columns)
    log.info("leaderboard (%s preset%s): %s", config.train.preset,
             f", time limit {limit:.0f} s" if limit else "", ", ".join(c.name for c in todo))
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    reasons = {c.name: _skip_reason(config, c) for c in todo}
    for i, cand in enumerate(todo):
        reason = reasons[cand.name]
        share = None
        if reason is None and first_fits is not None:
            left = first_fits - time.monotonic()
            share = time_share(left, cand.cost, [c.cost for c in todo[i + 1:] if reasons[c.name] is None])
            if left < MIN_SECONDS:
                reason = f"the time limit ({limit:.0f} s) ran out before it started"
        if reason is not None:
            log.warning("leaderboard: skipped %s: %s", cand.name, reason)
            skipped[cand.name] = reason
            continue
        cfg = candidate_config(config, cand, path / CANDIDATES / cand.name, share)
        log.info("leaderboard: training %s (%s)%s", cand.name, cand.model,
                 f", about {share:.0f} s of the time limit" if share is not None else "")
        callbacks = [] if share is None else [deadline_callback(time.monotonic() + share, cand.name)]
        try:
            trainer = Trainer(cfg, callbacks=callbacks).fit()
        except UserError as exc:  # a candidate the table does not suit (e.g. forests of image columns only)
            if str(exc) in skipped.values():  # two models, one error: the data's (a missing table, a bad target)
                raise
            log.warning("leaderboard: %s could not be trained: %s", cand.name, exc)
            skipped[cand.name] = str(exc)
            continue
        entries.append(_entry(cand.name, trainer, entries))
    if not entries:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise UserError(f"no candidate of the leaderboard could be trained ({why}). Raise train.time_limit "
                        "(--time-limit), or name one model (model.name)")
    folds_until = deadline  # the folds may take half of what the first fits left the refit
    if deadline is not None and first_fits is not None and config.train.refit:
        folds_until = (first_fits + deadline) / 2
    _out_of_fold(config, path, entries, folds_until)
    return _ensemble(config, path, entries, skipped, started, deadline)


def _budgeted(config: Config, image_columns: list[str]) -> Config:
    """``train.time_limit: auto`` resolved to the preset's budget
    (:data:`~tfpilot.config.schema.PRESET_TIME_LIMITS`), :data:`IMAGE_BUDGET` times it on a table
    with image columns, recorded in ``chosen``: the run's config.yaml says which limit the search
    ran under."""
    t = config.train
    if t.time_limit != "auto":
        return config
    seconds, why = t.time_limit_s, f"the {t.preset} preset's budget for the whole search"
    if image_columns:
        seconds *= IMAGE_BUDGET
        why = (f"{IMAGE_BUDGET:g}x {why} ({t.time_limit_s:.0f} s), for a table with image columns "
               f"({', '.join(image_columns)}): the neural candidates read every image each epoch")
    why = f"{seconds:.0f} s: {why} (train.time_limit auto; a duration such as 10m sets another, null none)"
    return config.model_copy(update={"train": t.model_copy(update={"time_limit": seconds}),
                                     "chosen": {**config.chosen, "train.time_limit": why}})


def _out_of_fold(config: Config, path: Path, entries: list[Entry], until: float | None) -> None:
    """With ``train.cv_folds`` (:func:`~tfpilot.training.leaderboard_folds.fold_count`), train
    every candidate on each fold of train + val (:func:`~tfpilot.training.leaderboard_folds.fit_folds`)
    and set its ``oof`` and ``kept``; when the time limit (``until``) leaves too little for every
    fold fit, or one fails, none is used and the log says why (the validation split weighs)."""
    data = entries[0].trainer.data_
    train, val = len(data.splits["train"]), len(data.splits.get("val", ()))
    folds = fold_count(config, val, train + val)
    if not folds:
        return
    rows = (train + val) * (folds - 1) / folds / max(1, train)
    estimate = sum(e.fit_s for e in entries) * rows * folds
    left = None if until is None else until - time.monotonic()
    if left is not None and left < max(MIN_SECONDS, estimate):
        log.warning("leaderboard: no out-of-fold weights: the time limit left %.0f s, %d folds of every candidate "
                    "take about %.0f s; the validation split weighs the ensemble", max(left, 0.0), folds, estimate)
        return
    log.info("leaderboard: %d validation rows: each candidate trains on %d folds of train + val (%d rows), whose "
             "out-of-fold predictions weigh the ensemble (train.cv_folds %s)", val, folds, train + val,
             config.train.cv_folds)
    found: dict[str, OutOfFold] = {}
    for i, e in enumerate(entries):
        seconds = None
        if until is not None:
            seconds = (until - time.monotonic()) / ((len(entries) - i) * folds)
        try:
            found[e.name] = fit_folds(e.trainer.config, e.name, folds, path, seconds)
        except UserError as exc:
            log.warning("leaderboard: no out-of-fold weights: %s could not be trained on a fold (%s); the validation "
                        "split weighs the ensemble", e.name, exc)
            return
    for e in entries:
        e.oof = found[e.name]
        e.kept = median_kept([kept_fit(e.trainer), *e.oof.kept])


def _entry(name: str, trainer: Any, before: list[Entry]) -> Entry:
    """A trained candidate's validation outputs and latency (its split checked against the first's)."""
    from tfpilot.data.table_pipeline import predict_heads

    data = trainer.data_
    if before and data.manifest != before[0].trainer.data_.manifest:
        raise UserError(f"candidate {name} was trained on another split than {before[0].name}: the table changed "
                        "while the leaderboard trained")
    val = data.splits.get("val")
    val_out = predict_heads(trainer.model_, val, data.spec, EVAL_BATCH) if val is not None and len(val) else {}
    latency = _latency(trainer.model_, data)
    fit_s = float(trainer.run_.metrics.get("train_seconds", 0.0))
    log.info("leaderboard: %s trained in %.1f s; %.3f ms per row", name, fit_s, latency)
    return Entry(name, trainer, val_out, latency, fit_s)


def _weigh(entries: list[Entry], data: Any) -> tuple[np.ndarray, list[float], str]:
    """The members' weights chosen by Caruana on the out-of-fold predictions of train + val
    (``train.cv_folds``), else on the validation split; the loss after each round, and how they
    were chosen."""
    from tfpilot.training.ensemble import CARUANA_ROUNDS, caruana_weights

    kinds = {o.key: o.kind for o in data.spec.outputs}
    oofs = [e.oof for e in entries if e.oof is not None]
    if oofs and len(oofs) == len(entries):
        if any(not np.array_equal(o.ids, oofs[0].ids) for o in oofs):
            raise UserError("the leaderboard's candidates were trained on other folds of train + val: the table "
                            "changed while the leaderboard trained")
        weights, losses = caruana_weights([o.outputs for o in oofs], oofs[0].targets, kinds)
        return weights, losses, (f"Caruana's ensemble selection, {CARUANA_ROUNDS} rounds on the out-of-fold "
                                 f"predictions of {len(oofs[0].kept)} folds of train + val ({len(oofs[0].ids)} rows, "
                                 f"{FOLDS}/)")
    if all(e.val_outputs for e in entries):
        weights, losses = caruana_weights([e.val_outputs for e in entries], data.splits["val"].targets, kinds)
        return weights, losses, f"Caruana's ensemble selection, {CARUANA_ROUNDS} rounds on the validation split"
    log.warning("leaderboard: no validation split to weigh the candidates on: equal weights")
    return np.full(len(entries), 1.0 / len(entries)), [], "equal weights (no validation split)"


def _latency(model: Any, data: Any) -> float:
    """Milliseconds per row of ``model`` predicting the test split (else train) in batches of
    :data:`~tfpilot.config.schema.EVAL_BATCH`."""
    from tfpilot.data.table_pipeline import predict_heads

    test = data.splits.get("test")
    timed = test if test is not None and len(test) else data.splits["train"]
    begin = time.perf_counter()
    predict_heads(model, timed, data.spec, EVAL_BATCH)
    return (time.perf_counter() - begin) * 1000 / max(1, len(timed))


def _ensemble(config: Config, path: Path, entries: list[Entry], skipped: dict[str, str],
              started: float, deadline: float | None) -> LeaderboardResult:
    """Weigh the candidates on validation, build and calibrate their ensemble, refit its members
    (``train.refit``), then evaluate and write the run."""
    from tfpilot.training.ensemble import build_table_ensemble

    data = entries[0].trainer.data_
    spec = data.spec
    weights, losses, how = _weigh(entries, data)
    named = {e.name: round(float(w), 4) for e, w in zip(entries, weights)}
    log.info("leaderboard ensemble (%s): %s", how, ", ".join(f"{k} {w:.2f}" for k, w in named.items() if w))
    batch = config.train.evaluation_batch
    model = build_table_ensemble([e.trainer.model_ for e in entries], weights)
    calibration = None
    if config.train.calibration != "none":
        from tfpilot.training.calibrate import calibrate

        model, calibration = calibrate(model, data, batch_size=batch)
    first = data.evaluate(model, batch_size=batch, top_k=config.train.top_k)
    first_latency = _latency(model, data)
    refits: dict[str, Refit] = {}
    kept_first: dict[str, str] = {}
    if config.train.refit:
        refits, kept_first = refit_members(path, entries, named, deadline)
    final, evaluated, latency = model, first, first_latency
    if refits:
        final = refit_ensemble(entries, refits, weights, model, spec)
        evaluated = data.evaluate(final, batch_size=batch, top_k=config.train.top_k)
        latency = _latency(final, data)
    run = Run(path)
    members = [refits[e.name].trainer if e.name in refits else e.trainer for e in entries]
    _write_run_files(run, _final_config(config, entries[0].trainer.config, data, named, how, sorted(refits)), data,
                     members, named)
    final.save(run.model_path)
    fit_s = sum(e.fit_s + (e.oof.fit_s if e.oof else 0.0) for e in entries)
    refit_s = sum(r.fit_s for r in refits.values())
    metrics: dict[str, Any] = {
        "train_seconds": round(fit_s + refit_s, 3),
        "search_seconds": round(time.monotonic() - started, 3),
        "precision": "float32",
        "params": int(final.count_params()),
        "ensemble_of": int(sum(1 for w in named.values() if w > 0)),
        "leaderboard": {"preset": config.train.preset, "time_limit_s": config.train.time_limit, "method": how,
                        "weights": named, "loss_by_round": [round(v, 6) for v in losses],
                        "candidates": [e.name for e in entries], "skipped": skipped,
                        "folds": _folds_record(entries)},
        "refit": refit_record(config, data, refits, kept_first, calibration is not None),
        **evaluated,
    }
    if refits:
        metrics["first_fit"] = first
    metrics["out_of_sample"] = _out_of_sample(bool(refits))
    if calibration:
        metrics["calibration"] = calibration
    write_json(run.file(rundir.METRICS), metrics)
    rows = [_row(e.name, e.trainer.run_.metrics, spec, e.fit_s, e.latency_ms, named[e.name], e.oof) for e in entries]
    rows.sort(key=lambda r: _rank(r, spec))
    rows.append(_row("ensemble", first, spec, fit_s, first_latency, 1.0))
    if refits:
        rows.append(_row("ensemble_refit", {"test": evaluated.get("test", {})}, spec, fit_s + refit_s, latency, 1.0))
    write_leaderboard(rows, run.file(LEADERBOARD))
    log.info("leaderboard written to %s", run.file(LEADERBOARD))
    return LeaderboardResult(run, final, data, entries, named, refits)


def _folds_record(entries: list[Entry]) -> dict[str, Any] | None:
    """``metrics.json``'s ``leaderboard.folds``: the fold fits that weighed the ensemble, or None."""
    if not entries[0].oof:
        return None
    first = entries[0].oof
    return {"folds": len(first.kept), "rows": len(first.ids), "runs": f"{FOLDS}/<candidate>/<fold>",
            "fit_s": {e.name: round(e.oof.fit_s, 3) for e in entries if e.oof},
            "refit_length": {e.name: e.kept for e in entries},
            "note": "the weights were chosen on the out-of-fold predictions of train + val; each member's refit trains "
                    "for the median length its first fit and its fold fits kept"}


def _out_of_sample(refit: bool) -> dict[str, Any]:
    """``metrics.json``'s ``out_of_sample``: which of its figures come from rows no member trained on."""
    if not refit:
        return {"val": True, "test": True,
                "note": "no member trained on the val or test rows; the weights and the temperature were chosen on "
                        "val, so test is the unbiased figure"}
    return {"val": False, "test": True, "first_fit.val": True, "first_fit.test": True,
            "note": "the refit members trained on the val rows, so val is in sample; first_fit holds the ensemble "
                    "of the first fits (trained on train only; weights and temperature chosen on val); in "
                    "leaderboard.csv every figure but the ensemble_refit row's is of the first fits"}


def _final_config(config: Config, resolved: Config, data: Any, weights: dict[str, float], how: str,
                  refit: list[str]) -> Config:
    """The run's config.yaml: the leaderboard's (``model.name: auto``, its resolved features) with
    the data keys chosen from the data (``data.image_size``, ...; the same for every candidate,
    read from ``resolved``, a candidate's resolved config) and the ensemble recorded in ``chosen``."""
    used = ", ".join(f"{k} {w:.2f}" for k, w in weights.items() if w)
    again = f"; then {', '.join(refit)} trained again on train + val ({REFIT}/)" if refit else ""
    chosen = {**config.chosen, **{k: v for k, v in resolved.chosen.items()
                                  if k.startswith("data.") and k != "data.train_on_val"},
              "model.name": f"auto on a table: the {config.train.preset} preset's leaderboard "
              f"({', '.join(weights)}; {CANDIDATES}/) and their weighted ensemble ({how}): {used}{again}"}
    return config.model_copy(update={"data": resolved.data, "features": data.features, "chosen": chosen})


def _write_run_files(run: Run, config: Config, data: Any, members: list[Any], weights: dict[str, float]) -> None:
    """The run's config, split, data report, labels (the members' runs: a refit member's refit run)
    and environment."""
    from tfpilot.training.environment import environment

    save_config(config, run.file(rundir.CONFIG))
    write_json(run.file(rundir.SPLIT), data.manifest)
    data.report.save(run.file(rundir.DATA_REPORT))
    labels = data.labels_record(config.data.dataset, "ensemble")
    labels.update(members=[str(t.run_.path.resolve()) for t in members], weights=weights)
    write_json(run.file(rundir.LABELS), labels)
    data.save_extra_files(run.path)
    write_json(run.file(rundir.ENV), environment("float32", config.train.seed))


def _head_figures(head: dict[str, Any]) -> dict[str, float]:
    keys = ("rmse", "mae") if head.get("kind") == "number" else ("accuracy", "loss")
    return {k: float(head[k]) for k in keys if k in head}


def _row(name: str, metrics: dict[str, Any], spec: Any, fit_s: float, latency: float, weight: float,
         oof: OutOfFold | None = None) -> dict[str, Any]:
    """One leaderboard row from a run's metrics.json (and its out-of-fold figures, ``cv_<m>``)."""
    row: dict[str, Any] = {"candidate": name}
    several = len(spec.outputs) > 1
    for split in ("val", "test"):
        heads = metrics.get(split, {}).get("heads", {})
        for o in spec.outputs:
            for k, v in _head_figures(heads.get(o.name, {})).items():
                row[f"{split}_{o.name}_{k}" if several else f"{split}_{k}"] = round(v, 6)
    if oof is not None:
        for o in spec.outputs:
            for k, v in oof_figures(o.kind, oof.targets[o.key], oof.outputs[o.key]).items():
                row[f"cv_{o.name}_{k}" if several else f"cv_{k}"] = round(v, 6)
    row.update(fit_s=round(fit_s, 3), latency_ms_per_row=round(latency, 4), weight=round(weight, 4))
    return row


def oof_figures(kind: str, y: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """A head's leaderboard figures (:func:`_head_figures`' keys) from outputs and targets:
    RMSE and MAE of a number head, accuracy and log loss of a class head.

    Example:
        >>> oof_figures("number", np.array([1.0, 3.0]), np.array([1.0, 1.0]))
        {'rmse': 1.4142135623730951, 'mae': 1.0}
        >>> oof_figures("binary", np.array([1, 0]), np.array([0.9, 0.6]))["accuracy"]
        0.5
    """
    from tfpilot.training.ensemble import head_loss

    if kind == "number":
        err = np.asarray(out, np.float64).reshape(-1) - np.asarray(y, np.float64).reshape(-1)
        return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
    out = np.asarray(out)
    picked = (out.reshape(-1) > 0.5).astype(np.int64) if kind == "binary" else out.argmax(axis=1)
    return {"accuracy": float(np.mean(picked == np.asarray(y).astype(np.int64).reshape(-1))),
            "loss": head_loss(kind, y, out)}


def _rank(row: dict[str, Any], spec: Any) -> float:
    """Sort key: the first head's validation figure, best first."""
    o = spec.outputs[0]
    prefix = f"val_{o.name}_" if len(spec.outputs) > 1 else "val_"
    if o.kind == "number":
        return float(row.get(prefix + "rmse", np.inf))
    return -float(row.get(prefix + "accuracy", -np.inf))


def write_leaderboard(rows: list[dict[str, Any]], path: Path) -> Path:
    """Write the leaderboard rows as CSV (the union of their columns, in first-seen order).

    Example:
        >>> write_leaderboard([{"candidate": "a", "val_rmse": 1.0}], Path("/tmp/lb.csv")).read_text().split()
        ['candidate,val_rmse', 'a,1.0']
    """
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


__all__ = ["BENCHMARK_RANK1", "CANDIDATES", "FIRST_FIT_SHARE", "IMAGE_BUDGET", "IMAGE_COST", "LEADERBOARD", "PRESETS",
           "Candidate", "LeaderboardResult", "candidate_config", "candidates", "fit_leaderboard", "for_images",
           "time_share", "write_leaderboard"]
