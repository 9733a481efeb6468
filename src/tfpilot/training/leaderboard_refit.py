"""The leaderboard's refit: once the ensemble's weights (and temperatures) are chosen on
validation, each member with a weight trains again on train + val, through the one fit path
(:class:`~tfpilot.training.Trainer`, ``data.train_on_val``), for as long as its first fit kept
(a gradient-boosted forest's trees, a neural model's best epoch): AutoGluon's ``refit_full``.
The refit members, with the first fits' weights and temperatures, are the run's ensemble
(:func:`refit_ensemble`); a member the time limit leaves no room for keeps its first fit.

Example:
    >>> refits, kept_first = refit_members(run_dir, entries, {"ydf_gbt_rank1": 0.7, "multitask": 0.3}, None)  # doctest: +SKIP
    >>> refits["multitask"].kept  # doctest: +SKIP
    {'epochs': 12, 'epochs_run': 17}
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import Config
from tfpilot.errors import UserError

log = logging.getLogger(__name__)

#: A candidate or a refit is skipped when less than this many seconds of the time limit are left.
MIN_SECONDS = 5.0
#: Where the refit members' run directories go inside the leaderboard's run.
REFIT = "refit"


def deadline_callback(deadline: float, name: str) -> Any:
    """A Keras callback that stops training after the epoch that passes ``deadline``."""
    import keras

    class Deadline(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if time.monotonic() > deadline:
                log.warning("%s: its share of train.time_limit ran out after epoch %d: stopping", name, epoch + 1)
                self.model.stop_training = True

    return Deadline()


@dataclass
class Refit:
    """A member trained again on train + val: its name, trainer, what its first fit kept
    (:func:`kept_fit`) and its fit seconds."""

    name: str
    trainer: Any
    kept: dict[str, Any]
    fit_s: float


def refit_record(config: Config, data: Any, refits: dict[str, Refit], kept_first: dict[str, str],
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


def _estimate(entry: Any, kept: dict[str, Any], rows: float) -> float:
    """Seconds a member's refit should take: its first fit's, for ``rows`` times the rows and the
    share of its epochs that were kept."""
    share = kept["epochs"] / max(1, kept["epochs_run"]) if "epochs" in kept else 1.0
    return entry.fit_s * rows * share


def refit_members(path: Path, entries: list[Any], weights: dict[str, float], deadline: float | None
                  ) -> tuple[dict[str, Refit], dict[str, str]]:
    """Train each member with a weight > 0 again on train + val (heaviest first), through the one
    fit path, into ``path/refit/<name>/``.

    A member keeps its first fit, and the log says why, when the time limit leaves less than its
    refit should take, or when the limit cut its refit short (fewer epochs or trees than kept).

    Args:
        path: the leaderboard's run directory.
        entries: the trained candidates (the leaderboard's entries: ``name``, ``trainer``, ``fit_s``).
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
        kept = e.kept or kept_fit(e.trainer)  # the folds' median (train.cv_folds), else its own
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
        callbacks = [] if left is None else [deadline_callback(time.monotonic() + left, e.name)]
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


def refit_ensemble(entries: list[Any], refits: dict[str, Refit], weights: np.ndarray, first: Any, spec: Any) -> Any:
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


__all__ = ["MIN_SECONDS", "REFIT", "Refit", "deadline_callback", "kept_fit", "refit_config", "refit_ensemble",
           "refit_members", "refit_record"]
