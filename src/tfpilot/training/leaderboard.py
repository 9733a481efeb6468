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
``fit_s``, ``latency_ms_per_row`` (predicting the test split in batches of 256 in this process)
and ``weight``. Every figure but ``ensemble_refit``'s is of models that never trained on val or
test rows. ``metrics.json`` holds the run's model's figures like any run's (after a refit its
``val`` figures are in sample: ``out_of_sample`` says which are not, and ``first_fit`` keeps the
first fits' ensemble's), with ``search_seconds``, a ``leaderboard`` record (preset, time limit,
weights, skipped candidates) and a ``refit`` record.

``train.time_limit`` bounds the whole search: each candidate gets its share of what is left
(a neural candidate stops after the epoch that passes it, a forest's learner stops growing
trees), and a candidate that no longer fits is skipped; the log says so. With ``train.refit``
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot import runs as rundir
from tfpilot.config import Config, save_config
from tfpilot.config.schema import AUTO_MODEL, TrainConfig
from tfpilot.errors import AlreadyExistsError, UserError
from tfpilot.runs import Run, write_json

log = logging.getLogger(__name__)

#: The run's leaderboard file (read by the report's leaderboard section).
LEADERBOARD = "leaderboard.csv"
#: Where the candidates' run directories go inside the leaderboard's run.
CANDIDATES = "candidates"
#: A candidate is skipped when less than this many seconds of the time limit are left.
MIN_SECONDS = 5.0
#: Share of the time limit kept for the ensemble, its calibration and the report.
RESERVE = 0.1
#: With ``train.refit``: the share of the search's time (the limit less :data:`RESERVE`) the first
#: fits may take; the refit of the chosen members gets the rest, and whatever the first fits left.
FIRST_FIT_SHARE = 0.6
#: Where the refit members' run directories go inside the leaderboard's run.
REFIT = "refit"


@dataclass(frozen=True)
class Candidate:
    """One model of the leaderboard.

    Attributes:
        name: its name in the leaderboard and its folder under ``RUN/candidates/``.
        model: the registered table model.
        params: its ``model.params``.
        train: dotted ``train.*`` keys of its recipe, used where the config keeps the default.
    """

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


#: YDF's ``benchmark_rank1`` template of gradient-boosted trees (``hyperparameter_templates()``).
BENCHMARK_RANK1 = {"growing_strategy": "BEST_FIRST_GLOBAL", "categorical_algorithm": "RANDOM",
                   "split_axis": "SPARSE_OBLIQUE", "sparse_oblique_normalization": "MIN_MAX",
                   "sparse_oblique_num_projections_exponent": 1.0}
_NEURAL = {"train.epochs": 40, "train.batch_size": 256, "train.callbacks.early_stopping.patience": 5}

#: YDF's ``better_default`` template of gradient-boosted trees: as fast as its defaults.
BEST_FIRST = {"growing_strategy": "BEST_FIRST_GLOBAL"}

#: The candidates of each ``train.preset``, the most useful first (a time limit skips the last).
#: Chosen on melbourne-housing's validation split (docs/bench/tables-preset.md): the benchmark_rank1 trees
#: were the best single model, the best-first trees and the neural model added the most to them in
#: the ensemble; the random forest and YDF's default trees added little for their time. The rank1
#: trees again at half the shrinkage (up to 1,000 trees) lowered the ensemble's validation RMSE by
#: 0.8% on melbourne and 0.1% on auto-mpg, weights fitted on half of val and scored on the other
#: half (docs/bench/refit.md, bench/refit_lever.py).
PRESETS: dict[str, tuple[Candidate, ...]] = {
    "fast": (
        Candidate("ydf_gbt_rank1", "ydf_gbt", BENCHMARK_RANK1),
        Candidate("ydf_gbt_bfg", "ydf_gbt", BEST_FIRST),
        Candidate("ydf_gbt_rank1_s05", "ydf_gbt", {**BENCHMARK_RANK1, "num_trees": 1000, "shrinkage": 0.05}),
        Candidate("multitask", "multitask", {"hidden_units": [128, 64], "dropout": 0.1}, _NEURAL),
        Candidate("linear", "linear", {}, _NEURAL),
    ),
    "best": (
        Candidate("ydf_gbt_rank1", "ydf_gbt", {**BENCHMARK_RANK1, "num_trees": 1000, "shrinkage": 0.05}),
        Candidate("ydf_gbt_bfg", "ydf_gbt", BEST_FIRST),
        Candidate("multitask", "multitask", {"hidden_units": [256, 128], "dropout": 0.1},
                  {**_NEURAL, "train.epochs": 100, "train.callbacks.early_stopping.patience": 10}),
        Candidate("ydf_gbt", "ydf_gbt"),
        Candidate("ydf_rf", "ydf_rf", {"winner_take_all": False}),
        Candidate("linear", "linear", {}, _NEURAL),
    ),
}


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
    params, its recipe's ``train`` keys where the leaderboard's config keeps their defaults, no
    search keys, and ``run_dir``.

    Args:
        config: the leaderboard's config (``model.name: auto``).
        cand: the candidate.
        run_dir: its run directory.
        seconds: its share of the time limit (None: no limit); a forest's learner gets it as
            ``maximum_training_duration_seconds`` unless its params set that.
    """
    from tfpilot.config.loader import set_path, validate_tree

    tree = config.model_dump(mode="json")
    params = dict(cand.params)
    if seconds is not None and cand.model.startswith("ydf_"):
        params.setdefault("maximum_training_duration_seconds", round(max(seconds, 1.0), 1))
    tree["model"] = {"name": cand.model, "params": params}
    tree["train"].update(preset="fast", time_limit=None, candidates=None, refit=True)
    for key, value in cand.train.items():
        if _value(config, key) == _default(key):
            set_path(tree, key.split("."), value)
    tree["output"] = {**tree["output"], "run_dir": str(run_dir), "resume_if_exists": False}
    tree["chosen"] = {**config.chosen, "model.name": f"the {cand.name} candidate of the leaderboard "
                      f"({config.train.preset} preset) in {run_dir.parent.parent}"}
    return validate_tree(tree)


def _deadline_callback(deadline: float, name: str) -> Any:
    """A Keras callback that stops training after the epoch that passes ``deadline``."""
    import keras

    class Deadline(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if time.monotonic() > deadline:
                log.warning("%s: its share of train.time_limit ran out after epoch %d: stopping", name, epoch + 1)
                self.model.stop_training = True

    return Deadline()


@dataclass
class Entry:
    """A trained candidate: its name, trainer, validation outputs and timings."""

    name: str
    trainer: Any
    val_outputs: dict[str, np.ndarray]
    latency_ms: float
    fit_s: float


@dataclass
class Refit:
    """A member trained again on train + val: its name, trainer, what its first fit kept
    (:func:`kept_fit`) and its fit seconds."""

    name: str
    trainer: Any
    kept: dict[str, Any]
    fit_s: float


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
    if not cand.model.startswith("ydf_"):
        return None
    from tfpilot.training.ydf_fit import refused_options

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
    from tfpilot.training.trainer import Trainer

    if config.features is None or config.model.name != AUTO_MODEL:
        raise UserError("the leaderboard trains model.name auto on a table (a features section, --target)")
    started = time.monotonic()
    limit = config.train.time_limit
    deadline = None if limit is None else started + limit * (1 - RESERVE)
    first_fits = None if limit is None else started + limit * (1 - RESERVE) * (
        FIRST_FIT_SHARE if config.train.refit else 1.0)
    path = _target(config)
    if config.output.overwrite and Run(path).started:
        import shutil

        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    todo = candidates(config)
    log.info("leaderboard (%s preset%s): %s", config.train.preset,
             f", time limit {limit:.0f} s" if limit else "", ", ".join(c.name for c in todo))
    entries: list[Entry] = []
    skipped: dict[str, str] = {}
    for i, cand in enumerate(todo):
        reason = _skip_reason(config, cand)
        share = None
        if reason is None and first_fits is not None:
            left = first_fits - time.monotonic()
            share = left / (len(todo) - i)
            if left < MIN_SECONDS:
                reason = f"the time limit ({limit:.0f} s) ran out before it started"
        if reason is not None:
            log.warning("leaderboard: skipped %s: %s", cand.name, reason)
            skipped[cand.name] = reason
            continue
        cfg = candidate_config(config, cand, path / CANDIDATES / cand.name, share)
        log.info("leaderboard: training %s (%s)%s", cand.name, cand.model,
                 f", about {share:.0f} s of the time limit" if share is not None else "")
        callbacks = [] if share is None else [_deadline_callback(time.monotonic() + share, cand.name)]
        try:
            trainer = Trainer(cfg, callbacks=callbacks).fit()
        except UserError as exc:  # a candidate the table does not suit (e.g. forests of image columns only)
            log.warning("leaderboard: %s could not be trained: %s", cand.name, exc)
            skipped[cand.name] = str(exc)
            continue
        entries.append(_entry(cand.name, trainer, entries))
    if not entries:
        why = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise UserError(f"no candidate of the leaderboard could be trained ({why}). Raise train.time_limit "
                        "(--time-limit), or name one model (model.name)")
    return _ensemble(config, path, entries, skipped, started, deadline)


def _entry(name: str, trainer: Any, before: list[Entry]) -> Entry:
    """A trained candidate's validation outputs and latency (its split checked against the first's)."""
    from tfpilot.data.table_pipeline import predict_heads

    data = trainer.data_
    if before and data.manifest != before[0].trainer.data_.manifest:
        raise UserError(f"candidate {name} was trained on another split than {before[0].name}: the table changed "
                        "while the leaderboard trained")
    batch = 256
    val = data.splits.get("val")
    val_out = predict_heads(trainer.model_, val, data.spec, batch) if val is not None and len(val) else {}
    test = data.splits.get("test")
    timed = test if test is not None and len(test) else data.splits["train"]
    begin = time.perf_counter()
    predict_heads(trainer.model_, timed, data.spec, batch)
    latency = (time.perf_counter() - begin) * 1000 / max(1, len(timed))
    fit_s = float(trainer.run_.metrics.get("train_seconds", 0.0))
    log.info("leaderboard: %s trained in %.1f s; %.3f ms per row", name, fit_s, latency)
    return Entry(name, trainer, val_out, latency, fit_s)


def _weigh(entries: list[Entry], data: Any) -> tuple[np.ndarray, list[float], str]:
    """The members' weights chosen on the validation split (Caruana), the loss after each round,
    and how they were chosen."""
    from tfpilot.training.ensemble import CARUANA_ROUNDS, caruana_weights

    kinds = {o.key: o.kind for o in data.spec.outputs}
    if all(e.val_outputs for e in entries):
        weights, losses = caruana_weights([e.val_outputs for e in entries], data.splits["val"].targets, kinds)
        return weights, losses, f"Caruana's ensemble selection, {CARUANA_ROUNDS} rounds on the validation split"
    log.warning("leaderboard: no validation split to weigh the candidates on: equal weights")
    return np.full(len(entries), 1.0 / len(entries)), [], "equal weights (no validation split)"


def _latency(model: Any, data: Any) -> float:
    """Milliseconds per row of ``model`` predicting the test split (else train) in batches of 256."""
    from tfpilot.data.table_pipeline import predict_heads

    test = data.splits.get("test")
    timed = test if test is not None and len(test) else data.splits["train"]
    begin = time.perf_counter()
    predict_heads(model, timed, data.spec, 256)
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
    batch = max(config.train.batch_size, 256)
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
    fit_s = sum(e.fit_s for e in entries)
    refit_s = sum(r.fit_s for r in refits.values())
    metrics: dict[str, Any] = {
        "train_seconds": round(fit_s + refit_s, 3),
        "search_seconds": round(time.monotonic() - started, 3),
        "precision": "float32",
        "params": int(final.count_params()),
        "ensemble_of": int(sum(1 for w in named.values() if w > 0)),
        "leaderboard": {"preset": config.train.preset, "time_limit_s": config.train.time_limit, "method": how,
                        "weights": named, "val_loss_by_round": [round(v, 6) for v in losses],
                        "candidates": [e.name for e in entries], "skipped": skipped},
        "refit": _refit_record(config, data, refits, kept_first, calibration is not None),
        **evaluated,
    }
    if refits:
        metrics["first_fit"] = first
    metrics["out_of_sample"] = _out_of_sample(bool(refits))
    if calibration:
        metrics["calibration"] = calibration
    write_json(run.file(rundir.METRICS), metrics)
    rows = [_row(e.name, e.trainer.run_.metrics, spec, e.fit_s, e.latency_ms, named[e.name]) for e in entries]
    rows.sort(key=lambda r: _rank(r, spec))
    rows.append(_row("ensemble", first, spec, fit_s, first_latency, 1.0))
    if refits:
        rows.append(_row("ensemble_refit", {"test": evaluated.get("test", {})}, spec, fit_s + refit_s, latency, 1.0))
    write_leaderboard(rows, run.file(LEADERBOARD))
    log.info("leaderboard written to %s", run.file(LEADERBOARD))
    return LeaderboardResult(run, final, data, entries, named, refits)


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


def _refit_record(config: Config, data: Any, refits: dict[str, Refit], kept_first: dict[str, str],
                  calibrated: bool) -> dict[str, Any]:
    """``metrics.json``'s ``refit``: what was trained again, on how many rows, with what."""
    if not config.train.refit:
        return {"enabled": False}
    record: dict[str, Any] = {
        "enabled": True, "rows": len(data.splits["train"]) + len(data.splits.get("val", ())),
        "members": {n: {"run": f"{REFIT}/{n}", **r.kept, "fit_s": round(r.fit_s, 3),
                        "train_rows": len(r.trainer.data_.splits["train"])} for n, r in refits.items()},
        "kept_first_fit": kept_first,
        "weights": "the ones chosen on validation with the first fits (leaderboard.weights)",
    }
    if calibrated:
        record["calibration"] = ("the temperatures fitted on the validation split before the refit (each member's and "
                                 "the ensemble's, metrics.calibration), kept unchanged")
    return record


def kept_fit(trainer: Any) -> dict[str, Any]:
    """What a candidate's first fit kept, to train it again for as long: a gradient-boosted
    forest's trees per head (``{"num_trees": {head: iterations}}``; a random forest: ``{}``),
    a neural model's epochs (``{"epochs": the best epoch by train.callbacks.monitor when early
    stopping restored it, else the epochs run, "epochs_run": ...}``).

    Args:
        trainer: the candidate's fitted :class:`~tfpilot.training.Trainer`.

    Example:
        >>> kept_fit(entry.trainer)  # doctest: +SKIP
        {'epochs': 12, 'epochs_run': 17}
    """
    from tfpilot.models.ydf_layers import forest_heads
    from tfpilot.training.ydf_fit import kept_iterations

    heads = forest_heads(trainer.model_)
    if heads:
        trees = {layer.head.name: kept_iterations(layer) for layer in heads}
        return {"num_trees": {k: int(v) for k, v in trees.items() if v is not None}}
    cb = trainer.config.train.callbacks
    history = trainer.history_ or {}
    ran = len(history.get("loss", []))
    values = np.asarray(history.get(cb.monitor, []), np.float64)
    epochs = ran
    if cb.early_stopping.enabled and cb.early_stopping.restore_best_weights and len(values) and \
            not np.isnan(values).all():
        epochs = int(np.nanargmax(values) if cb.monitor_mode == "max" else np.nanargmin(values)) + 1
    return {"epochs": max(1, epochs), "epochs_run": ran}


def refit_config(first: Config, name: str, kept: dict[str, Any], run_dir: Path, seconds: float | None) -> Config:
    """The config of a member's refit: its first fit's resolved config on train + val
    (``data.train_on_val``), for what the first fit kept (:func:`kept_fit`): a gradient-boosted
    forest grows that many trees with no early stopping and no rows held out
    (``early_stopping: NONE``, ``validation_ratio: 0``), a neural model trains that many epochs;
    no calibration (the ensemble puts the first fit's temperature on it).

    Args:
        first: the candidate's resolved config (``trainer.config``).
        name: the candidate's name.
        kept: :func:`kept_fit` of its first fit.
        run_dir: the refit's run directory.
        seconds: the time left for it (None: no limit); a forest's learner gets it as
            ``maximum_training_duration_seconds``.

    Example:
        >>> kept = {"epochs": 12, "epochs_run": 17}
        >>> cfg = refit_config(entry.trainer.config, "multitask", kept, path, None)  # doctest: +SKIP
        >>> cfg.train.epochs, cfg.data.train_on_val  # doctest: +SKIP
        (12, True)
    """
    from tfpilot.config.loader import validate_tree

    tree = first.model_dump(mode="json")
    tree["data"]["train_on_val"] = True
    tree["train"]["calibration"] = "none"
    why = f"the refit of the leaderboard's {name} member"
    chosen = {**first.chosen, "data.train_on_val": f"{why}: it trains on train + val once its weight was chosen",
              "train.calibration": f"{why}: none, the ensemble puts its first fit's temperature (fitted on val) on it"}
    if "num_trees" in kept:
        params = dict(tree["model"]["params"])
        params.pop("maximum_training_duration_seconds", None)
        if seconds is not None:
            params["maximum_training_duration_seconds"] = round(max(seconds, 1.0), 1)
        trees = kept["num_trees"]
        if trees:  # gradient-boosted trees: as many as early stopping kept, every row growing them
            params.pop("num_trees_by_head", None)
            if len(set(trees.values())) == 1:
                params["num_trees"] = next(iter(trees.values()))
            else:
                params["num_trees_by_head"] = dict(trees)
            params.update(early_stopping="NONE", validation_ratio=0.0)
            chosen["model.params.num_trees"] = f"{why}: the trees its first fit's early stopping kept ({trees})"
        tree["model"]["params"] = params
    else:
        tree["train"]["epochs"] = int(kept["epochs"])
        chosen["train.epochs"] = (f"{why}: the best epoch of its first fit by {first.train.callbacks.monitor} "
                                  f"({kept['epochs']} of {kept.get('epochs_run')} run)")
    tree["output"] = {**tree["output"], "run_dir": str(run_dir), "resume_if_exists": False, "overwrite": False}
    tree["chosen"] = chosen
    return validate_tree(tree)


def _estimate(entry: Entry, kept: dict[str, Any], rows: float) -> float:
    """Seconds a member's refit should take: its first fit's, for ``rows`` times the rows and the
    share of its epochs that were kept."""
    share = kept["epochs"] / max(1, kept["epochs_run"]) if "epochs" in kept else 1.0
    return entry.fit_s * rows * share


def refit_members(path: Path, entries: list[Entry], weights: dict[str, float], deadline: float | None
                  ) -> tuple[dict[str, Refit], dict[str, str]]:
    """Train each member with a weight > 0 again on train + val (heaviest first), through the one
    fit path, into ``path/refit/<name>/``.

    A member keeps its first fit, and the log says why, when the time limit leaves less than its
    refit should take, or when the limit cut its refit short (fewer epochs or trees than kept).

    Args:
        path: the leaderboard's run directory.
        entries: the trained candidates.
        weights: their weights (by name), chosen on validation.
        deadline: ``time.monotonic()`` by which the refits must end (None: no limit).

    Returns:
        ``(refits by name, the members that kept their first fit -> why)``.

    Raises:
        UserError: a refit's split is not its first fit's (the table changed meanwhile).
    """
    from tfpilot.training.trainer import Trainer

    data = entries[0].trainer.data_
    train, val = len(data.splits["train"]), len(data.splits.get("val", ()))
    members = sorted((e for e in entries if weights[e.name] > 0), key=lambda e: -weights[e.name])
    if not val:
        log.info("leaderboard: no validation split, so no refit: the members trained on every row but test")
        return {}, {e.name: "no validation split to add" for e in members}
    done: dict[str, Refit] = {}
    kept_first: dict[str, str] = {}
    for e in members:
        kept = kept_fit(e.trainer)
        estimate = _estimate(e, kept, (train + val) / train)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left < max(MIN_SECONDS, estimate):
            kept_first[e.name] = (f"the time limit left {max(left, 0.0):.0f} s; its refit takes about "
                                  f"{estimate:.0f} s")
            log.warning("leaderboard: %s keeps its first fit (no refit): %s", e.name, kept_first[e.name])
            continue
        cfg = refit_config(e.trainer.config, e.name, kept, path / REFIT / e.name, left)
        log.info("leaderboard: refitting %s on train + val (%d rows) with %s", e.name, train + val,
                 ", ".join(f"{k} {v}" for k, v in kept.items()) or "its first fit's params")
        callbacks = [] if left is None else [_deadline_callback(time.monotonic() + left, e.name)]
        try:
            trainer = Trainer(cfg, callbacks=callbacks).fit()
        except UserError as exc:  # e.g. a forest with no tree left to grow in the time limit
            kept_first[e.name] = f"its refit failed: {exc}"
            log.warning("leaderboard: %s keeps its first fit: %s", e.name, kept_first[e.name])
            continue
        _check_refit_split(e.name, data.manifest, trainer.data_.manifest)
        short = _cut_short(trainer, kept)
        if short:
            kept_first[e.name] = short
            log.warning("leaderboard: %s keeps its first fit: %s", e.name, short)
            continue
        done[e.name] = Refit(e.name, trainer, kept, float(trainer.run_.metrics.get("train_seconds", 0.0)))
    return done, kept_first


def _check_refit_split(name: str, first: dict[str, Any], refit: dict[str, Any]) -> None:
    """Raise unless the refit trained on the first fit's train and val rows and kept its test rows."""
    a, b = first["splits"], refit["splits"]
    if sorted(a.get("test", [])) != sorted(b.get("test", [])) or \
            not set(a["train"]) | set(a.get("val", [])) <= set(b["train"]):
        raise UserError(f"the refit of {name} split the table otherwise than its first fit: the table changed while "
                        "the leaderboard trained")


def _cut_short(trainer: Any, kept: dict[str, Any]) -> str | None:
    """Why a refit is not the one asked for (the time limit stopped it early), or None."""
    from tfpilot.models.ydf_layers import forest_heads
    from tfpilot.training.ydf_fit import kept_iterations

    if "epochs" in kept:
        ran = len((trainer.history_ or {}).get("loss", []))
        return None if ran >= kept["epochs"] else (f"the time limit stopped its refit after {ran} of "
                                                    f"{kept['epochs']} epochs")
    grown = {layer.head.name: kept_iterations(layer) for layer in forest_heads(trainer.model_)}
    short = {k: (grown.get(k), n) for k, n in kept.get("num_trees", {}).items() if (grown.get(k) or 0) < n}
    return None if not short else f"the time limit stopped its refit's trees (grown, kept): {short}"


def refit_ensemble(entries: list[Entry], refits: dict[str, Refit], weights: np.ndarray, first: Any, spec: Any) -> Any:
    """The ensemble of the refit members (a member not refit: its first fit) with the weights and
    temperatures chosen on validation: each refit member gets its first fit's temperatures, the
    ensemble the first fits' ensemble's (``first``).

    Args:
        entries: the trained candidates (first fits).
        refits: the refit members by name.
        weights: the candidates' weights, in ``entries``' order.
        first: the first fits' ensemble, calibrated (or not) as the run asks.
        spec: the table's spec.
    """
    from tfpilot.models.calibration import temperatures, with_temperatures
    from tfpilot.training.ensemble import build_table_ensemble

    kinds = {o.key: o.kind for o in spec.outputs}
    models = []
    for e in entries:
        if e.name not in refits:
            models.append(e.trainer.model_)
            continue
        model, temps = refits[e.name].trainer.model_, temperatures(e.trainer.model_)
        models.append(with_temperatures(model, temps, kinds) if temps else model)
    ensemble = build_table_ensemble(models, weights)
    temps = temperatures(first)
    return with_temperatures(ensemble, temps, kinds) if temps else ensemble


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


def _row(name: str, metrics: dict[str, Any], spec: Any, fit_s: float, latency: float, weight: float
         ) -> dict[str, Any]:
    """One leaderboard row from a run's metrics.json."""
    row: dict[str, Any] = {"candidate": name}
    several = len(spec.outputs) > 1
    for split in ("val", "test"):
        heads = metrics.get(split, {}).get("heads", {})
        for o in spec.outputs:
            for k, v in _head_figures(heads.get(o.name, {})).items():
                row[f"{split}_{o.name}_{k}" if several else f"{split}_{k}"] = round(v, 6)
    row.update(fit_s=round(fit_s, 3), latency_ms_per_row=round(latency, 4), weight=round(weight, 4))
    return row


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


__all__ = ["BENCHMARK_RANK1", "CANDIDATES", "FIRST_FIT_SHARE", "LEADERBOARD", "PRESETS", "REFIT", "Candidate",
           "LeaderboardResult", "Refit", "candidate_config", "candidates", "fit_leaderboard", "kept_fit",
           "refit_config", "refit_ensemble", "refit_members", "write_leaderboard"]
