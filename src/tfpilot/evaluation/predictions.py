"""A run's predictions on one split, per head, kept in memory (never written to disk).

Every model is read the same way: named inputs and named heads (a classifier is the one-input,
one-head case of :func:`tfpilot.spec.as_table_spec`). :func:`load_rows` rebuilds the run's
recorded split (the members of ``split.json``) as a :class:`~tfpilot.data.table_split.TableSplit`,
and :func:`predict_split` runs the model over it -- with the image inputs mirrored for
test-time augmentation if asked.

Example:
    >>> from tfpilot.evaluation.predictions import predict_split
    >>> preds = predict_split("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> preds.y_pred[:5], preds.losses.argmax()  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import evaluation_batch, load_config
from tfpilot.config.schema import EVAL_BATCH
from tfpilot.data.table_split import TableSplit
from tfpilot.errors import UserError
from tfpilot.runs import SPLIT, Run
from tfpilot.spec import CLASSIFIER_HEAD, FeatureSpec, TableSpec, as_table_spec, spec_from_dict

#: Test-time augmentations ``evaluate(tta=...)`` knows.
TTA_MODES = ("flip",)


@dataclass
class SplitPredictions:
    """Every head's outputs on one split, with the rows they came from.

    The label properties (``y_true``, ``probs``, ``y_pred``, ...) read one category head:
    ``key`` (default: the first output; a classifier's ``label``); :meth:`at` picks another.

    Attributes:
        split: the split's name ("test", "val", "train" or "all").
        spec: the model's named inputs and heads.
        rows: the split's inputs (decoded arrays, texts or image paths), targets and ids.
        outputs: head key -> (N, C) probabilities, (N,) sigmoid or (N,) values.
        classifier: the run is a single-input classifier (its spec is the one-head view).
        data: the prepared data the rows came from.
        recorded: the rows are the run's own recorded split.
        key: the head the label properties read.
    """

    split: str
    spec: TableSpec
    rows: TableSplit
    outputs: dict[str, np.ndarray]
    classifier: bool
    data: Any = None
    recorded: bool = True
    key: str = ""

    def at(self, key: str) -> SplitPredictions:
        """The same predictions, with the label properties reading head ``key``."""
        return replace(self, key=key)

    @property
    def head(self) -> FeatureSpec:
        return self.spec.output(self.key) if self.key else self.spec.outputs[0]

    @property
    def class_names(self) -> list[str]:
        return list(self.head.classes)

    @property
    def y_true(self) -> np.ndarray:
        y = self.rows.targets[self.head.key]
        return y if self.head.kind == "number" else y.astype(np.int64)

    @property
    def probs(self) -> np.ndarray:
        from tfpilot.metrics.heads import as_probabilities

        return as_probabilities(self.head.kind, self.outputs[self.head.key])

    @property
    def y_pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """The probability of the predicted class."""
        return self.probs.max(axis=1)

    @property
    def losses(self) -> np.ndarray:
        """Per-example cross-entropy, ``-log p(true class)``."""
        p = self.probs[np.arange(len(self.y_true)), self.y_true]
        return -np.log(np.clip(p, 1e-7, 1.0))

    def ids(self, index: np.ndarray) -> list[str]:
        """Identifiers of the rows at ``index``: file paths or indices (classifiers), ``row N`` (tables)."""
        ids = self.rows.ids[np.asarray(index, dtype=np.int64)]
        return [str(i) for i in ids] if self.classifier else [f"row {int(i) + 1}" for i in ids]

    def inputs(self, index: np.ndarray, key: str = "") -> Any:
        """Input ``key``'s raw values at ``index`` (default: the first input): uint8 images
        (n, H, W, C), a list of strings, or an array of numbers."""
        from tfpilot.data.table_pipeline import table_pipeline

        feature = self.spec.input(key) if key else self.spec.inputs[0]
        values = self.rows.inputs[feature.key][np.asarray(index, dtype=np.int64)]
        if feature.kind in ("text", "category", "date"):
            return [str(v) for v in values]
        if feature.kind != "image" or values.dtype != object:
            return np.asarray(values)
        rows = self.rows.take(index)
        pipeline = table_pipeline(rows, self.spec, EVAL_BATCH, training=False, with_targets=False)
        batches = [np.asarray(x[feature.key]) for x in pipeline]
        return np.concatenate(batches) if batches else np.zeros((0, *feature.shape), np.uint8)


def run_spec(run: Run) -> tuple[TableSpec, bool]:
    """The run's named inputs and heads, and whether it is a single-input classifier."""
    spec = spec_from_dict(run.labels["input"])
    return as_table_spec(spec, run.class_names), not isinstance(spec, TableSpec)


def table_run_data(run: Run, dataset: str | None = None, data_dir: str | Path | None = None) -> Any:
    """A table run's table split as training split it (or ``dataset``'s), with targets encoded
    in the model's class order and images decoded at the size the model takes.

    Raises:
        ValueError: the run's own table changed since training (other split members), or
            ``dataset`` has target classes the model does not know.
    """
    from tfpilot.data.table import prepare_table

    cfg = load_config(run.config_file)
    spec = TableSpec.from_dict(run.labels["input"])
    update: dict[str, Any] = {k: str(v) for k, v in {"dataset": dataset, "data_dir": data_dir}.items() if v}
    sizes = {tuple(c.shape[:2]) for c in spec.inputs if c.kind == "image"}
    if sizes:
        update["image_size"] = list(next(iter(sizes)))
    cfg = cfg.model_copy(update={"data": load_config({"data": {**cfg.data.model_dump(mode="json"), **update}}).data})
    recorded = None if dataset is not None else json.loads(run.file(SPLIT).read_text(encoding="utf-8"))
    data = prepare_table(cfg, manifest=recorded)  # the run's own table: exactly the rows split.json records
    for out in (o for o in spec.outputs if o.kind != "number"):
        have = data.spec.output(out.name).classes
        unknown = sorted(set(have) - set(out.classes))
        if unknown:
            raise UserError(f"target {out.name!r} has classes the model never saw: {', '.join(unknown[:10])}; "
                            f"it knows {', '.join(out.classes)}")
        remap = np.array([out.classes.index(c) for c in have], dtype=np.int64)
        for part in data.splits.values():
            part.targets[out.key] = remap[part.targets[out.key].astype(np.int64)].astype(part.targets[out.key].dtype)
    data.spec = spec
    return data


def _as_rows(part: Any, spec: TableSpec, classifier: bool) -> TableSplit:
    """A data split as named rows: a classifier's ``Split`` becomes its one input and its ``label`` head."""
    if not classifier:
        return part
    key = spec.inputs[0].key
    paths = {} if part.paths is None else {key: part.paths}
    x = part.x if part.x is not None else part.paths.astype(object)
    return TableSplit({key: x}, {CLASSIFIER_HEAD: part.y}, part.ids, paths)


def _pick(data: Any, split: str, spec: TableSpec, classifier: bool, where: str) -> TableSplit:
    """The rows of ``split`` (every split's for "all"), or a ValueError naming the splits there are."""
    parts = [p for name, p in data.splits.items() if split in (name, "all") and len(p)]
    if not parts:
        recorded = (getattr(data, "manifest", None) or {}).get("splits", data.splits)
        have = sorted(k for k, v in recorded.items() if len(v))
        raise UserError(f"{where} has no {split!r} examples; it has {have} (or use --split all)")
    rows = [_as_rows(p, spec, classifier) for p in parts]
    if len(rows) == 1:
        return rows[0]

    def join(field: str) -> dict[str, np.ndarray]:
        return {k: np.concatenate([getattr(r, field)[k] for r in rows]) for k in getattr(rows[0], field)}

    return TableSplit(join("inputs"), join("targets"), np.concatenate([r.ids for r in rows]), join("paths"))


def load_rows(run: Run, split: str, dataset: str | None = None, data_dir: str | Path | None = None,
              data: Any = None) -> tuple[Any, TableSplit, bool]:
    """The run's recorded ``split`` (or ``dataset``'s) as named rows: ``(prepared data, rows, recorded)``.

    Args:
        run: the run.
        split: "test", "val", "train" or "all".
        dataset, data_dir: another dataset with the same classes, and where to look for files first.
        data: the run's prepared data when already in memory (the Trainer's).

    Raises:
        RecordedSplitError: recorded examples are missing or changed since training.
        ValueError: the data has other classes, other inputs, or no such split.
    """
    from tfpilot.data import load_run_data

    spec, classifier = run_spec(run)
    if data is None and classifier:
        data = load_run_data(run, dataset, data_dir, splits=None if split == "all" else [split])
    elif data is None:
        data = table_run_data(run, dataset, data_dir)
    recorded = bool(getattr(data, "recorded", dataset is None)) and split != "all"
    where = f"dataset {dataset!r}" if dataset else f"the data of {run.path}"
    return data, _pick(data, split, spec, classifier, where), recorded


def predict_outputs(model: Any, rows: TableSplit, spec: TableSpec, classifier: bool, batch_size: int = EVAL_BATCH,
                    flip: Collection[str] = ()) -> dict[str, np.ndarray]:
    """Every head's outputs over ``rows``, with the image inputs named in ``flip`` mirrored left-right.

    Example:
        >>> predict_outputs(model, rows, spec, classifier=False, flip=["photo"])["kind"].shape  # doctest: +SKIP
        (18, 3)
    """
    import tensorflow as tf

    from tfpilot.data.table_pipeline import predict_heads
    from tfpilot.metrics import to_probabilities

    def call(x: dict[str, Any], training: bool = False) -> Any:
        x = {k: tf.reverse(v, axis=[2]) if k in flip else v for k, v in x.items()}
        if classifier:
            return {CLASSIFIER_HEAD: model(x[spec.inputs[0].key], training=training)}
        return model(x, training=training)

    out = predict_heads(call, rows, spec, batch_size)
    if classifier:  # one sigmoid unit (a binary text classifier) -> two columns
        out[CLASSIFIER_HEAD] = to_probabilities(out[CLASSIFIER_HEAD])
    return out


def check_tta(tta: str | None, spec: TableSpec) -> list[str]:
    """The image inputs ``tta`` mirrors; a clear ValueError for an unknown mode or a model without images.

    Example:
        >>> from tfpilot.spec import InputSpec
        >>> check_tta(None), check_tta("flip", as_table_spec(InputSpec.image(8, 8, 1), ["a", "b"]))
        ([], ['images'])
    """
    if tta is None:
        return []
    if tta not in TTA_MODES:
        raise UserError(f"unknown test-time augmentation {tta!r}: use one of {', '.join(TTA_MODES)} (or none)")
    images = [c.key for c in spec.inputs if c.kind == "image"]
    if not images:
        inputs = ", ".join(f"{c.name} ({c.kind})" for c in spec.inputs)
        raise UserError(f"--tta {tta} mirrors image inputs; the model's inputs are {inputs}: "
                        "evaluate it without --tta")
    return images


def predict_split(run: str | Path | Run, split: str = "test", model: Any = None, data: Any = None,
                  batch_size: int | None = None, dataset: str | None = None, data_dir: str | Path | None = None,
                  tta: str | None = None) -> SplitPredictions:
    """Predictions of a run's model on one split of its data, every head.

    Args:
        run: a run directory or :class:`~tfpilot.runs.Run`.
        split: "test", "val", "train" (or "all").
        model: the trained model if already in memory (default: load ``model.keras``).
        data: the run's prepared data if already in memory (the Trainer's; default: the run's
            recorded split, rebuilt from ``split.json``).
        batch_size: examples per model call; default: the run's ``train.evaluation_batch``.
        dataset, data_dir: another dataset with the same classes, and where to look first.
        tta: a test-time augmentation (:func:`with_tta`).

    Raises:
        ValueError: an unknown ``tta``, or ``tta`` for a model without an image input.
    """
    run = run if isinstance(run, Run) else Run(run)
    batch_size = batch_size or evaluation_batch(run.config_file)
    spec, classifier = run_spec(run)
    check_tta(tta, spec)
    data, rows, recorded = load_rows(run, split, dataset, data_dir, data)
    model = model if model is not None else run.load_model()
    preds = SplitPredictions(split, spec, rows, predict_outputs(model, rows, spec, classifier, batch_size), classifier,
                             data, recorded)
    return with_tta(preds, model, tta, batch_size) if tta else preds


def with_tta(preds: SplitPredictions, model: Any, tta: str, batch_size: int = EVAL_BATCH) -> SplitPredictions:
    """``preds`` test-time augmented: with ``"flip"``, every head's output is the mean of the
    model's on the rows (``preds.outputs``) and on the rows with every image input mirrored
    left-right (other inputs unchanged)."""
    flip = check_tta(tta, preds.spec)
    mirrored = predict_outputs(model, preds.rows, preds.spec, preds.classifier, batch_size, flip)
    return replace(preds, outputs={k: (v + mirrored[k]) / 2.0 for k, v in preds.outputs.items()})


def split_metrics(preds: SplitPredictions, top_k: int) -> dict[str, Any]:
    """Every head's metrics (:func:`~tfpilot.metrics.heads.head_metrics`, beside the training
    split's baselines where the rows are the run's own); a classifier's are its one head's
    :func:`~tfpilot.metrics.classification_metrics`."""
    from tfpilot.metrics.heads import baselines, head_metrics

    train = None if preds.classifier else getattr(preds.data, "splits", {}).get("train")
    own = train is not None and (preds.recorded or preds.split == "all")
    base = baselines(preds.spec, train.targets) if own else None
    result = head_metrics(preds.spec, preds.rows.targets, preds.outputs, base, top_k=top_k)
    if preds.classifier:
        return {k: v for k, v in result["heads"][CLASSIFIER_HEAD].items() if k != "kind"}
    return result
