"""Training decision forests (``ydf_gbt``, ``ydf_rf``): YDF's own learner on the run's split.

The :class:`~tfpilot.training.Trainer` builds the model as for any run (the recorded split,
``config.yaml``, ``split.json``, ``labels.json`` are written the same way) and, for a model of
:class:`~tfpilot.models.ydf_layers.ForestHead` layers, calls :func:`fit_forests` instead of
``model.fit``: each head's forest is trained on the training split's raw columns, the
validation split giving gradient-boosted trees their early stopping. The trainer then saves
``model.keras`` and evaluates it like any model. ``history.csv`` holds one row per tree count
that YDF logged: each head's training and validation loss (``<head>_loss``,
``val_<head>_loss``) and their sums (``loss``, ``val_loss``); a random forest, which uses no
validation split, logs its out-of-bag figures (``<head>_oob_accuracy`` / ``<head>_oob_rmse``).

Options of the neural training loop that would change what a model learns (augmentation,
class weights, label smoothing, distribution, fine-tuning, ...) are refused for forests by
:func:`check_config`; its batch size is used for evaluation, and epochs, the optimizer and the
schedule do not apply (the log says so when they are set).

Example:
    >>> from tfpilot.config import load_config
    >>> cfg = load_config(None, dataset="table.csv", model="ydf_gbt")  # doctest: +SKIP
    >>> check_config(cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import Config
from tfpilot.errors import UserError
from tfpilot.models.ydf_layers import ForestHead, date_parts, forest_heads, quiet_ydf, training_values
from tfpilot.runs import HISTORY

log = logging.getLogger(__name__)

#: Semantics YDF reads each column kind with.
SEMANTICS = {"number": "NUMERICAL", "category": "CATEGORICAL", "text": "CATEGORICAL_SET", "date": "NUMERICAL"}


def refused_options(config: Config) -> list[str]:
    """The options set in ``config`` that a forest cannot honour, each with its value.

    Args:
        config: the run config.
    """
    t, d = config.train, config.data
    found = {
        "train.distribute": t.distribute != "none",
        "train.loop": t.loop != "fit",
        "train.fine_tune": t.fine_tune.enabled,
        "train.class_weight": t.class_weight != "none",
        "train.label_smoothing": t.label_smoothing > 0,
        "train.label_mode": t.label_mode == "one_hot",
        "train.regularization": bool(t.regularization.model_dump(exclude_defaults=True)),
        "train.optimizer.learning_rate": t.optimizer.learning_rate == "auto",
        "train.optimizer.ema": t.optimizer.ema,
        "data.augment": bool(d.augment.model_dump(exclude_defaults=True)),
        "data.balanced_sampling": d.balanced_sampling,
    }
    refused = [key for key, on in found.items() if on]
    for out in (config.features.outputs if config.features else []):
        if out.loss not in (None, "auto") or out.loss_weight != 1.0:
            refused.append(f"features.outputs[{out.name}].loss/loss_weight")
    return refused


def check_config(config: Config) -> None:
    """Refuse the options a forest cannot honour; log those that do not apply to it.

    Args:
        config: the run config.

    Raises:
        UserError: an option of the neural training loop is set.
    """
    refused = refused_options(config)
    if refused:
        raise UserError(f"{config.model.name} trains decision forests with YDF's learner, which cannot take "
                        f"{', '.join(refused)}: unset them, or train a neural model (e.g. model.name: multitask)")
    t = config.train
    unused = [k for k in ("epochs", "optimizer", "schedule", "callbacks", "steps_per_epoch")
              if k in t.model_dump(exclude_defaults=True)]
    if unused:
        log.info("%s: train.%s do not apply to decision forests (model.params set the trees)",
                 config.model.name, ", train.".join(unused))


def forest_table(layer: ForestHead, split: Any) -> dict[str, Any]:
    """The columns of a table split a forest reads, in the form YDF's learner takes them.

    Args:
        layer: the head's layer.
        split: a :class:`~tfpilot.data.table_split.TableSplit`.
    """
    table: dict[str, Any] = {}
    for key, kind in layer.features.items():
        values = training_values(kind, split.inputs[key], layer.date_formats.get(key, ""))
        table.update(zip(date_parts(key), values.T) if kind == "date" else [(key, values)])
    return table


def forest_label(layer: ForestHead, split: Any) -> np.ndarray:
    """The head's targets of a split as YDF's label: class names of a class head, floats otherwise."""
    y = split.targets[layer.head.key]
    if layer.head.classes:
        return np.asarray(layer.head.classes, dtype=object)[np.asarray(y).astype(np.int64)]
    return np.asarray(y, dtype=np.float32)


def learner(layer: ForestHead, seed: int) -> Any:
    """The YDF learner of ``layer``: its kind, task, column semantics and hyper-parameters.

    Args:
        layer: the head's layer.
        seed: the learner's random seed (``train.seed``).
    """
    import ydf

    cls = {"GRADIENT_BOOSTED_TREES": ydf.GradientBoostedTreesLearner,
           "RANDOM_FOREST": ydf.RandomForestLearner}[layer.learner]
    task = ydf.Task.REGRESSION if layer.head.kind == "number" else ydf.Task.CLASSIFICATION
    features = [ydf.Feature(name, getattr(ydf.Semantic, SEMANTICS[kind])) for key, kind in layer.features.items()
                for name in (date_parts(key) if kind == "date" else [key])]
    return cls(label=layer.head.key, task=task, features=features, include_all_columns=False,
               random_seed=seed, **layer.hyperparameters)


def fit_forests(model: Any, data: Any, config: Config, run_dir: str | Path) -> tuple[dict[str, list[float]], float]:
    """Train every head's forest of ``model`` on ``data``'s training split.

    Args:
        model: a model of :class:`ForestHead` layers (``ydf_gbt``, ``ydf_rf``).
        data: the run's :class:`~tfpilot.data.table.TableData`.
        config: the run config (``train.seed``; ``callbacks.csv_logger`` writes ``history.csv``).
        run_dir: the run directory.

    Returns:
        ``(history, train seconds)``: history as ``history.csv``'s columns.
    """
    check_config(config)
    spec = data.spec
    train, val = data.splits["train"], data.splits.get("val")
    heads = forest_heads(model)
    read = set(heads[0].features)
    left_out = [f"{c.name} ({c.kind})" for c in spec.inputs if c.key not in read]
    log.info("%s reads %s%s", config.model.name, ", ".join(c.name for c in spec.inputs if c.key in read),
             f"; left out: {', '.join(left_out)} (forests read number, category, text and date columns)"
             if left_out else "")
    logs: dict[str, list[Any]] = {}
    started = time.perf_counter()
    for layer in heads:
        head_start = time.perf_counter()
        fit = learner(layer, config.train.seed)
        uses_val = layer.learner == "GRADIENT_BOOSTED_TREES" and val is not None and len(val) > 0
        with quiet_ydf():
            fit_start = time.perf_counter()
            forest = fit.train({**forest_table(layer, train), layer.head.key: forest_label(layer, train)},
                               valid={**forest_table(layer, val), layer.head.key: forest_label(layer, val)}
                               if uses_val else None)
            fit_seconds = time.perf_counter() - fit_start
        layer.set_forest(forest)
        logs[layer.head.key] = forest.training_logs()
        log.info("head %s: %s of %d trees in %.1f s (%s)", layer.head.name, layer.learner.lower().replace("_", " "),
                 forest.num_trees(), time.perf_counter() - head_start, _stopping(layer, uses_val, fit_seconds))
    seconds = time.perf_counter() - started
    history = history_table(logs)
    if config.train.callbacks.csv_logger:
        write_history(history, Path(run_dir) / HISTORY)
    return history, seconds


#: A forest whose learner ran this share of its ``maximum_training_duration_seconds`` or more was
#: stopped by it (YDF stops at the first tree past the limit and does not say why).
TIME_LIMITED = 0.97


def _stopping(layer: ForestHead, uses_val: bool, seconds: float) -> str:
    """How the forest's size was decided, for the log: the time limit (the leaderboard's share of
    ``train.time_limit``) when its learner ran that long, else early stopping or the tree count."""
    limit = layer.hyperparameters.get("maximum_training_duration_seconds")
    if limit and seconds >= TIME_LIMITED * limit:
        return f"stopped by its time limit of {limit:g} s"
    if uses_val:
        return "early stopping on the validation split"
    if layer.learner == "RANDOM_FOREST":
        return "out-of-bag evaluation"
    ratio = layer.hyperparameters.get("validation_ratio")
    if ratio == 0:
        return "no validation split: every training row grows trees, no early stopping"
    return f"no validation split: YDF holds out {0.1 if ratio is None else ratio:g} of the training rows to stop early"


def kept_iterations(layer: ForestHead) -> int | None:
    """The boosting iterations a trained gradient-boosted head kept (its trees over the trees per
    iteration, one per class of a multi-class head): early stopping's choice, YDF's ``num_trees``
    to grow them again without early stopping. None: a random forest (no early stopping).

    Args:
        layer: a trained head.

    Example:
        >>> [kept_iterations(layer) for layer in forest_heads(trainer.model_)]  # doctest: +SKIP
        [54]
    """
    if layer.learner != "GRADIENT_BOOSTED_TREES" or layer.forest is None:
        return None
    return max(1, layer.forest.num_trees() // max(1, layer.forest.num_trees_per_iteration()))


def history_table(logs: dict[str, list[Any]]) -> dict[str, list[float]]:
    """Per-head YDF training logs -> ``history.csv`` columns, one row per logged tree count
    (``epoch`` = trees - 1; NaN where a head logged nothing at that count).

    Args:
        logs: head key -> ``forest.training_logs()``.
    """
    rows: dict[int, dict[str, float]] = {}
    for key, entries in logs.items():
        for e in entries:
            row = rows.setdefault(int(e.iteration), {})
            if e.training_evaluation is not None and e.training_evaluation.loss is not None:
                row[f"{key}_loss"] = float(e.training_evaluation.loss)
            if e.training_evaluation is not None and e.evaluation.loss is not None:  # GBT: the validation split
                row[f"val_{key}_loss"] = float(e.evaluation.loss)
            elif e.evaluation is not None:  # RF: out-of-bag
                for name in ("accuracy", "rmse"):
                    if getattr(e.evaluation, name, None) is not None:
                        row[f"{key}_oob_{name}"] = float(getattr(e.evaluation, name))
    heads = list(logs)
    for row in rows.values():
        for prefix in ("", "val_"):
            parts = [row.get(f"{prefix}{k}_loss") for k in heads]
            if all(p is not None for p in parts):
                row[f"{prefix}loss"] = float(sum(parts))
    columns = sorted({c for row in rows.values() for c in row})
    its = sorted(rows)
    table = {"epoch": [float(i - 1) for i in its]}
    table.update({c: [rows[i].get(c, float("nan")) for i in its] for c in columns})
    return table


def write_history(history: dict[str, list[float]], path: Path) -> None:
    """Write ``history`` as ``history.csv`` (the columns Keras' CSVLogger would; NaN left empty)."""
    columns = list(history)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for values in zip(*(history[c] for c in columns)):
            writer.writerow(["" if np.isnan(v) else (int(v) if c == "epoch" else f"{v:.6g}")
                             for c, v in zip(columns, values)])
