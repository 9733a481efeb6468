"""Evaluating a run on its recorded test split, or on another dataset.

With the run's own dataset the examples are exactly the ones ``split.json`` records
(:func:`tfpilot.data.load_run_data`), never a fresh split. Another dataset with the same
classes is evaluated on its own split, and the result says so -- and warns when some of
its examples are ones the model was trained (or validated) on. Results are written to
``RUN/evaluations/<name>.json``; ``metrics.json`` keeps the figures training measured.

Example:
    >>> from tfpilot.evaluation import evaluate
    >>> result = evaluate("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> result["accuracy"], result["evaluated_on"]["recorded_split"]  # doctest: +SKIP
    (0.9912, True)
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tfpilot.config import load_config
from tfpilot.metrics import classification_metrics, predict_probabilities
from tfpilot.runs import SPLIT, Run, evaluation_name

log = logging.getLogger(__name__)


def run_data(run: Run, dataset: str | None = None, data_dir: str | Path | None = None,
             splits: list[str] | None = None) -> Any:
    """The run's data with its recorded splits, or ``dataset`` prepared for its model
    (:func:`tfpilot.data.load_run_data`).

    Raises:
        RecordedSplitError: recorded examples are missing or changed.
        ValueError: the data's classes or inputs do not fit the model.
    """
    from tfpilot.data import load_run_data

    return load_run_data(run, dataset, data_dir, splits=splits)


def _warnings(run: Run, data: Any, split: str) -> tuple[list[str], dict[str, int]]:
    """Warnings about what the evaluation set is, and how many examples overlap train/val."""
    from tfpilot.data import recorded_manifest, training_overlap

    if data.recorded:
        if split == "train":
            return ["evaluating on the run's training split: these are the examples the model was trained on, "
                    "so the figures overstate how it does on new data"], {}
        return [], {}
    if not run.file(SPLIT).is_file():
        return ["the run has no split.json: which examples it was trained on is unknown, so these may include "
                "some of them"], {}
    overlap = training_overlap(data, recorded_manifest(run), split)
    out = []
    for name, ids in overlap.items():
        shown = ", ".join(ids[:5]) + (f" (+{len(ids) - 5} more)" if len(ids) > 5 else "")
        out.append(f"{len(ids)} of the {len(data.splits[split])} evaluated examples are in the run's {name} split "
                   f"(the model {'was trained' if name == 'train' else 'was selected'} on them): {shown}")
    return out, {name: len(ids) for name, ids in overlap.items()}


def evaluate(
    run_dir: str | Path,
    dataset: str | None = None,
    split: str = "test",
    data_dir: str | Path | None = None,
    batch_size: int = 256,
    save: bool = True,
    tta: str | None = None,
) -> dict[str, Any]:
    """Metrics of a run's model on ``split`` of its recorded data (or of ``dataset``).

    Args:
        run_dir: the run directory.
        dataset: another dataset (name or path) with the same classes; default (or the
            run's own dataset): the run's recorded split.
        split: "test", "val" or "train".
        data_dir: where to look for dataset files first.
        batch_size: examples per model call.
        save: write the result to ``RUN/evaluations/<name>.json`` (``test``, or
            ``<dataset>-<split>`` for another dataset); ``metrics.json`` is never changed.
        tta: test-time augmentation, besides the plain figures: ``"flip"`` averages the
            softmax of each image and its horizontal mirror (image models only). Its figures
            go to ``result["tta"]`` (mode, accuracy, loss, top-k, macro-F1, balanced accuracy);
            the top-level figures stay the plain ones.

    Returns:
        :func:`~tfpilot.metrics.classification_metrics`'s dict plus ``evaluated_on``: the
        dataset, the split, ``recorded_split`` (the run's own split.json members or not),
        ``overlap`` (examples also in the run's train/val splits), ``warnings`` and, when
        saved, ``saved_to``; with ``tta``, a ``tta`` block.

    Raises:
        RecordedSplitError: recorded examples are missing or changed since training.
        ValueError: the data has other classes, other inputs, or no such split.
    """
    from tfpilot.data import make_pipeline
    from tfpilot.evaluation.table_eval import evaluate_table, is_table_run

    check_tta(tta)
    if is_table_run(run_dir):  # a table model: metrics per head (evaluation/table_eval.py)
        if tta:
            raise ValueError(f"--tta {tta} is for image classifiers; {run_dir} is a table model")
        return evaluate_table(run_dir, dataset, split, data_dir, batch_size, save, namer=evaluation_name)
    run = Run(run_dir)
    cfg = load_config(run.config_file)
    data = run_data(run, dataset, data_dir, splits=[split])
    name = dataset or cfg.data.dataset
    if split not in data.splits or not len(data.splits[split]):
        if data.recorded:
            have = sorted(k for k, v in data.manifest["splits"].items() if len(v))
            raise ValueError(f"the run {run.path} recorded no {split!r} examples; its split.json has {have}")
        have = sorted(k for k, v in data.splits.items() if len(v))
        raise ValueError(f"dataset {name!r} has no {split!r} examples; it has {have}")
    spec = data.input_spec
    ds = make_pipeline(data.splits[split], batch_size, training=False, cache=False, **spec.decode_target())
    if tta and spec.kind != "image":
        raise ValueError(f"--tta {tta} mirrors images; the run's input is {spec.kind}: evaluate it without --tta")
    model = run.load_model()
    y, probs = predict_probabilities(model, ds)
    result = classification_metrics(y, probs, run.class_names, k=cfg.train.top_k)
    if tta:
        result["tta"] = tta_metrics(model, ds, probs, y, run.class_names, cfg.train.top_k, tta)
    warnings, overlap = _warnings(run, data, split)
    for w in warnings:
        log.warning(w)
    result["evaluated_on"] = {
        "dataset": str(name), "split": split, "recorded_split": data.recorded,
        "overlap": overlap, "warnings": warnings,
    }
    if save:
        record = {**result, "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        path = run.save_evaluation(evaluation_name(dataset, split, data.recorded), record)
        result["evaluated_on"]["saved_to"] = str(path)
    return result


#: Test-time augmentations ``evaluate(tta=...)`` knows.
TTA_MODES = ("flip",)


def check_tta(tta: str | None) -> None:
    """Raise a clear ValueError for an unknown test-time augmentation.

    Example:
        >>> check_tta("flip")
    """
    if tta is not None and tta not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {tta!r}: use one of {', '.join(TTA_MODES)} (or none)")


def flip_probabilities(model: Any, dataset: Any) -> Any:
    """The model's softmax on the horizontal mirror of every image of a batched ``(x, y)`` dataset.

    Args:
        model: the image classifier.
        dataset: batches of raw (N, H, W, C) images and labels.
    """
    import tensorflow as tf

    from tfpilot.metrics import predict_probabilities

    _, probs = predict_probabilities(model, dataset.map(lambda x, y: (tf.reverse(x, axis=[2]), y)))
    return probs


def tta_metrics(model: Any, dataset: Any, probs: Any, y: Any, class_names: list[str], top_k: int,
                mode: str = "flip") -> dict[str, Any]:
    """Figures of the test-time-augmented predictions: ``probs`` (the plain softmax) averaged
    with the softmax of the augmented images.

    Args:
        model: the image classifier.
        dataset: the batches ``probs`` was predicted on (same order).
        probs: the plain predictions (N, C).
        y: the labels (N,).
        class_names: the classes.
        top_k: k of the top-k accuracy.
        mode: the augmentation (``flip``).

    Returns:
        ``mode`` and the accuracy, loss, top-k accuracy, macro-F1 and balanced accuracy of the averaged softmax.
    """
    check_tta(mode)
    averaged = (probs + flip_probabilities(model, dataset)) / 2.0
    full = classification_metrics(y, averaged, class_names, k=top_k)
    keep = ("accuracy", "loss", "top_k_accuracy", "top_k", "macro_f1", "balanced_accuracy", "num_examples")
    return {"mode": mode, **{k: full[k] for k in keep}}
