"""Evaluating a run on its recorded test split, or on another dataset: metrics per head.

With the run's own dataset the examples are exactly the ones ``split.json`` records
(:func:`tfpilot.evaluation.predictions.load_rows`), never a fresh split. Another dataset with
the same classes (or target columns) is evaluated on its own split, and the result says so
-- and warns when some of its examples are ones the model was trained (or validated) on.
A classifier's result is its one head's metrics; a table model's has ``heads``. Results are
written to ``RUN/evaluations/<name>.json``; ``metrics.json`` keeps the figures training measured.

Example:
    >>> from tfpilot.evaluation import evaluate
    >>> result = evaluate("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> result["accuracy"], result["evaluated_on"]["recorded_split"]  # doctest: +SKIP
    (0.9912, True)
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfpilot.config import load_config
from tfpilot.evaluation.predictions import SplitPredictions, check_tta, predict_split, run_spec, split_metrics, with_tta
from tfpilot.runs import SPLIT, Run, evaluation_name

log = logging.getLogger(__name__)


def _warnings(run: Run, preds: SplitPredictions) -> tuple[list[str], dict[str, int]]:
    """Warnings about what the evaluation set is, and how many examples overlap train/val."""
    from tfpilot.data import recorded_manifest, training_overlap

    if preds.split == "all":
        return ["evaluating on every split (--split all): the rows may include the ones the model was trained on, "
                "so the figures may overstate how it does on new data"], {}
    if preds.recorded:
        if preds.split == "train":
            return ["evaluating on the run's training split: these are the examples the model was trained on, "
                    "so the figures overstate how it does on new data"], {}
        return [], {}
    if not preds.classifier:  # a table has no per-row digests to compare
        return [], {}
    if not run.file(SPLIT).is_file():
        return ["the run has no split.json: which examples it was trained on is unknown, so these may include "
                "some of them"], {}
    data, split = preds.data, preds.split
    overlap = training_overlap(data, recorded_manifest(run), split)
    out = []
    for name, ids in overlap.items():
        shown = ", ".join(ids[:5]) + (f" (+{len(ids) - 5} more)" if len(ids) > 5 else "")
        out.append(f"{len(ids)} of the {len(data.splits[split])} evaluated examples are in the run's {name} split "
                   f"(the model {'was trained' if name == 'train' else 'was selected'} on them): {shown}")
    return out, {name: len(ids) for name, ids in overlap.items()}


def _out_of_vocabulary(preds: SplitPredictions) -> dict[str, int]:
    """Category input -> how many of its values the model never saw in training."""
    from tfpilot.data.columns import out_of_vocabulary

    oov = {c.name: out_of_vocabulary(preds.rows.inputs[c.key], c.classes)
           for c in preds.spec.inputs if c.kind == "category"}
    return {k: v for k, v in oov.items() if v}


def evaluate(
    run_dir: str | Path,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | Path | None = None,
    batch_size: int | None = None,
    save: bool = True,
    tta: str | None = None,
) -> dict[str, Any]:
    """Metrics of a run's model on ``split`` of its recorded data (or of ``dataset``), per head.

    Args:
        run_dir: the run directory.
        dataset: another dataset (name or path) with the same classes; default (or the
            run's own dataset): the run's recorded split.
        split: "test", "val", "train" (or "all" rows).
        data_dir: where to look for dataset files first.
        batch_size: examples per model call; default: the run's ``train.evaluation_batch``
            (``train.eval_batch_size``, which the memory plan lowers for large images).
        save: write the result to ``RUN/evaluations/<name>.json`` (``test``, or
            ``<dataset>-<split>`` for another dataset); ``metrics.json`` is never changed.
        tta: test-time augmentation, besides the plain figures: ``"flip"`` averages every head's
            output on the rows and on the rows with every image input mirrored (any model with an
            image input). Its figures go to ``result["tta"]`` (a classifier's: mode, accuracy, loss,
            top-k, macro-F1, balanced accuracy; a table model's: mode and ``heads``); the top-level
            figures stay the plain ones.

    Returns:
        A classifier: :func:`~tfpilot.metrics.classification_metrics`'s dict; a table model:
        ``{"num_examples", "heads": {output: metrics}, "out_of_vocabulary"}``; both with
        ``evaluated_on``: the dataset, the split, ``recorded_split`` (the run's own split.json
        members or not), ``overlap`` (examples also in the run's train/val splits), ``warnings``
        and, when saved, ``saved_to``; with ``tta``, a ``tta`` block.

    Raises:
        RecordedSplitError: recorded examples are missing or changed since training.
        ValueError: the data has other classes, other inputs, or no such split; ``tta`` is
            unknown or the model has no image input.
    """
    run = Run(run_dir)
    cfg = load_config(run.config_file)
    check_tta(tta, run_spec(run)[0])
    model = run.load_model()
    batch_size = batch_size or cfg.train.evaluation_batch
    preds = predict_split(run, split, model=model, batch_size=batch_size, dataset=dataset, data_dir=data_dir)
    result = split_metrics(preds, cfg.train.top_k)
    if not preds.classifier:
        result["out_of_vocabulary"] = _out_of_vocabulary(preds)
    if tta:
        figures = split_metrics(with_tta(preds, model, tta, batch_size), cfg.train.top_k)
        keep = ("accuracy", "loss", "top_k_accuracy", "top_k", "macro_f1", "balanced_accuracy", "num_examples")
        result["tta"] = {"mode": tta, **({k: figures[k] for k in keep} if preds.classifier else figures)}
    warnings, overlap = _warnings(run, preds)
    for w in warnings:
        log.warning(w)
    result["evaluated_on"] = {"dataset": str(dataset or cfg.data.dataset), "split": split,
                              "recorded_split": preds.recorded, "overlap": overlap, "warnings": warnings}
    if save:
        record = {**result, "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        path = run.save_evaluation(evaluation_name(dataset, split, preds.recorded), record)
        result["evaluated_on"]["saved_to"] = str(path)
    return result


def recalibrate(run_dir: str | Path, data_dir: str | Path | None = None, batch_size: int | None = None
                ) -> dict[str, Any]:
    """Refit the temperature of every class head of a finished run on its recorded val split
    (``tfpilot evaluate RUN --calibrate``): for an older run trained without ``train.calibration``,
    or to fit again.

    The temperatures a model already holds are taken out of its outputs first, so the fit starts
    from the model as trained. The model file is rewritten atomically (temporary file, then
    rename) and ``metrics.json``'s ``calibration`` records the fit: per head the temperature, and
    ECE / NLL / accuracy before and after on val and test. Exports made before are stale: export again.

    Args:
        run_dir: the run directory.
        data_dir: where to look for dataset files first.
        batch_size: examples per model call; default: the run's ``train.evaluation_batch``.

    Returns:
        metrics.json's new ``calibration`` record (head key -> entry).

    Raises:
        ValueError: the run has no category or binary head, or no val split.

    Example:
        >>> recalibrate("runs/mnist_cnn-mnist-20260101-120000")["label"]["temperature"]  # doctest: +SKIP
        0.6021
    """
    from tfpilot.errors import UserError
    from tfpilot.metrics.calibration import class_heads, fit_heads, unscaled
    from tfpilot.models.calibration import temperatures, with_temperatures
    from tfpilot.spec import CLASSIFIER_HEAD

    run = Run(run_dir)
    model = run.load_model()
    current = temperatures(model)
    val = predict_split(run, "val", model=model, batch_size=batch_size, data_dir=data_dir)
    kinds = class_heads(val.spec, val.outputs)
    if not kinds:
        raise UserError(f"{run.path} has no category or binary head: there is nothing to calibrate")
    fit = (val.rows.targets, unscaled(val.outputs, current, kinds))
    test = None
    if "test" in (run.metrics or {}):
        t = predict_split(run, "test", model=model, batch_size=batch_size, data_dir=data_dir)
        test = (t.rows.targets, unscaled(t.outputs, current, kinds))
    temps, record = fit_heads(kinds, fit, test)
    heads = model.output if isinstance(model.output, dict) else {CLASSIFIER_HEAD: model.output}
    layer_kinds = {k: "binary" if len(heads[k].shape) < 2 or heads[k].shape[-1] == 1 else "category" for k in temps}
    model = with_temperatures(model, temps, layer_kinds)
    _save_atomically(model, run.model_path)
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for key, entry in record.items():
        entry.update(refit_at=when, previous_temperature=current.get(key))
    run.update_metrics("calibration", record)
    if run.file("export").is_dir():
        log.warning("%s/export was made with the previous model: run `tfpilot export %s` again", run.path, run.path)
    return record


def _save_atomically(model: Any, path: Path) -> Path:
    """``model.save`` to a temporary file beside ``path``, then renamed over it: a crash
    leaves the old model or the new one, never half a file."""
    tmp = path.with_name(f".{path.stem}.calibrating{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
