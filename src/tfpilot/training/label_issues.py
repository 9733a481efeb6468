"""Label issues: out-of-sample class probabilities from a quick K-fold model, then ``cleanlab``.

Every example (of every split: a data audit, not a quality figure) gets its probabilities
from a model that never saw it: the examples are cut into ``folds`` stratified folds, and for
each fold a model is trained through tfpilot's one fit path (:class:`~tfpilot.training.Trainer`)
on the other folds (10% of them held out as its validation split: early stopping and
calibration never see the fold it predicts), then predicts the fold.
``cleanlab.filter.find_label_issues`` ranks the examples whose given label the probabilities
contradict.

For speed on image datasets of CIFAR's scale, in-memory images are downscaled
(``image_size``, default: the longer side at most 16 pixels) and the model is ``fast_cnn``
for a few epochs: a weaker model than a full run, so it finds the gross errors and misses
subtle ones. Tables of number and category columns take ``ydf_gbt``; texts and other tables
the model tfpilot would choose (``model.name: auto``).

Example:
    >>> from tfpilot.config import load_config
    >>> from tfpilot.data import prepare_data
    >>> cfg = load_config(None, dataset="digits")
    >>> result = find_label_issues(cfg, prepare_data(cfg.data), folds=3, epochs=2)  # doctest: +SKIP
    >>> result.issues[:1]  # doctest: +SKIP
    [{'position': 812, 'given': 3, 'suggested': 9, ...}]
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import Config
from tfpilot.data.inspect.examples import SPLIT_ORDER
from tfpilot.errors import UserError
from tfpilot.training.setup import Task
from tfpilot.training.trainer import Trainer

log = logging.getLogger(__name__)


@dataclass
class LabelIssues:
    """The result: ``probs`` (N, C) out-of-sample probabilities in the flat order
    (:func:`~tfpilot.data.inspect.examples.flatten`), ``labels`` (N,), ``issues`` (positions,
    most suspicious first), ``fold_accuracy`` per fold, ``model`` and ``seconds``."""

    probs: np.ndarray
    labels: np.ndarray
    issues: np.ndarray
    fold_accuracy: list[float] = field(default_factory=list)
    model: str = ""
    image_size: tuple[int, int] | None = None
    seconds: float = 0.0


class _FoldTask(Task):
    """The fit path's task with the fold's data instead of the dataset's own splits."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def prepare(self, config: Config, source: Any = None) -> tuple[Config, Any]:
        from tfpilot.training.defaults import choose_defaults

        return choose_defaults(config, self.data)


class _FoldTrainer(Trainer):
    """A :class:`Trainer` on given data (one fold), everything else as ``tfpilot train``."""

    def __init__(self, config: Config, data: Any) -> None:
        super().__init__(config)
        self._fold_data = data

    @property
    def _task(self) -> Task:
        return _FoldTask(self._fold_data)


def _ordered(splits: dict[str, Any]) -> list[str]:
    return [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]


def _pool_classifier(data: Any, image_size: tuple[int, int] | None) -> tuple[Any, np.ndarray]:
    """(a PreparedData holding every example in one 'train' split, labels) in the flat order."""
    from tfpilot.data.images import convert_images
    from tfpilot.data.registry import PreparedData
    from tfpilot.data.source import Split
    from tfpilot.spec import InputSpec

    ds = data.dataset
    parts = [ds.splits[n] for n in _ordered(ds.splits)]

    def cat(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        return None if any(v is None for v in values) else np.concatenate([np.asarray(v) for v in values])

    pool = Split(y=np.concatenate([p.y for p in parts]), x=cat("x"), paths=cat("paths"), ids=cat("ids"))
    spec = ds.input_spec
    if spec.kind == "image" and pool.x is not None and image_size and tuple(image_size) != tuple(spec.image_size):
        pool.x = convert_images(pool.x, tuple(image_size), spec.channels)
        spec = InputSpec.image(image_size[0], image_size[1], spec.channels)
    new = dataclasses.replace(ds, splits={"train": pool}, input_spec=spec)
    return PreparedData(new, {"inspect": "label issues"}), pool.y


def _pool_table(data: Any) -> tuple[Any, np.ndarray, Any]:
    from tfpilot.data.table_split import TableSplit

    parts = [data.splits[n] for n in _ordered(data.splits)]
    head = next((o for o in data.spec.outputs if o.kind in ("category", "binary")), None)
    if head is None:
        raise UserError("label issues need a category or binary target: the table's targets are numbers "
                        "(pass --no-label-issues)")
    pool = TableSplit({k: np.concatenate([p.inputs[k] for p in parts]) for k in parts[0].inputs},
                      {k: np.concatenate([p.targets[k] for p in parts]) for k in parts[0].targets},
                      np.concatenate([p.ids for p in parts]),
                      {k: np.concatenate([p.paths[k] for p in parts]) for k in parts[0].paths})
    return dataclasses.replace(data, splits={"train": pool}), pool.targets[head.key].astype(np.int64), head


def _with_splits(pooled: Any, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> Any:
    whole = pooled.splits["train"]
    splits = {"train": whole.take(train), "val": whole.take(val), "test": whole.take(test)}
    if hasattr(pooled, "dataset"):
        return dataclasses.replace(pooled, dataset=dataclasses.replace(pooled.dataset, splits=splits))
    return dataclasses.replace(pooled, splits=splits)


def _fold_probs(trainer: Trainer, data: Any, head: Any, batch_size: int) -> np.ndarray:
    model = trainer.model_
    if head is None:
        from tfpilot.metrics import predict_probabilities

        return predict_probabilities(model, data.pipeline("test", batch_size, training=False))[1]
    from tfpilot.data.table_pipeline import predict_heads

    out = predict_heads(model, data.splits["test"], data.spec, batch_size)[head.key]
    if out.ndim == 1 or out.shape[1] == 1:  # a binary head's sigmoid
        p = out.reshape(-1)
        return np.stack([1 - p, p], axis=1)
    return out


def _folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(train, val, held-out) positions per fold: stratified K-fold, 10% of the rest as val."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    smallest = int(np.bincount(labels).min()) if len(labels) else 0
    k = max(2, min(folds, smallest)) if smallest >= 2 else 2
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for rest, held in split.split(np.zeros(len(labels)), labels):
        strat = labels[rest] if np.bincount(labels[rest]).min() >= 2 else None
        tr, va = train_test_split(rest, test_size=0.1, random_state=seed, stratify=strat)
        out.append((np.sort(tr), np.sort(va), np.sort(held)))
    return out


#: Out-of-sample accuracy below which the findings carry a warning (the count is mostly model error).
WEAK_MODEL = 0.8

#: The folds' model of a table of number and category columns: gradient-boosted trees, strong
#: and quick on small tables (other tables take tfpilot's choice).
TABLE_MODEL, TABLE_MODEL_INPUTS = "ydf_gbt", frozenset({"number", "category"})

#: The quick image model of the folds (``fast_cnn`` with these params): "same" padding takes 8x8 images.
IMAGE_MODEL = ("fast_cnn", {"filters": [16, 32], "padding": "same", "dense_units": 64})


def fold_config(config: Config, run_dir: Path, *, model: str | None, epochs: int, batch_size: int | None,
                params: dict[str, Any] | None = None) -> Config:
    """The config of one fold's run: ``config`` with the quick model (and its ``params``), epochs
    and no extras (no TensorBoard, progress bar, fine-tuning or mode-gap check; no ``backup/`` or
    ``checkpoints/best.keras``: a fold is not resumed, and its two model saves an epoch took a third
    of a text table's inspection). Nor temperature
    calibration: fitted on a fold's small validation split it can sharpen the probabilities so far
    that cleanlab's per-class confidence thresholds miss clear label errors."""
    from tfpilot.config.loader import set_path, validate_tree

    tree = config.model_dump(mode="json")
    updates = {"train.epochs": epochs, "train.callbacks.tensorboard": False, "train.callbacks.progress": "none",
               "train.callbacks.backup": False, "train.callbacks.checkpoint": False,
               "train.fine_tune.enabled": False,
               "train.mode_gap.enabled": False, "train.calibration": "none",
               "output.run_dir": str(run_dir), "output.overwrite": True}
    if model:
        updates["model.name"] = model
        updates["model.params"] = dict(params or {})
    if batch_size:
        updates["train.batch_size"] = batch_size
    for key, value in updates.items():
        set_path(tree, key.split("."), value)
    return validate_tree(tree)


def find_label_issues(config: Config, data: Any, *, folds: int = 4, epochs: int = 4, model: str | None = None,
                      batch_size: int | None = None, image_size: tuple[int, int] | None = None,
                      work_dir: str | Path | None = None) -> LabelIssues:
    """Out-of-sample probabilities of every example and ``cleanlab``'s label issues among them.

    Args:
        config: the config the data was prepared with (``tfpilot inspect``'s).
        data: the prepared data (a classifier's, or a table with a class head: its first).
        folds: K of the K-fold.
        epochs: epochs of each fold's model.
        model: the model of each fold; default :data:`IMAGE_MODEL` for images, tfpilot's choice otherwise.
        batch_size: each fold's batch size (default: the config's).
        image_size: downscale in-memory images to this for the folds (default: longer side <= 16).
        work_dir: where the fold runs are written (default: a temporary folder, deleted after).

    Raises:
        UserError: no class head, or fewer than 2 examples of some class.
    """
    import cleanlab.filter

    start = time.perf_counter()
    head, params = None, None
    if getattr(data, "features", None) is not None:
        pooled, labels, head = _pool_table(data)
        size = None
        if model is None and all(f.kind in TABLE_MODEL_INPUTS for f in data.spec.inputs):
            model = TABLE_MODEL
    else:
        spec = data.input_spec
        size = image_size
        if spec.kind == "image" and size is None:
            h, w = spec.image_size
            scale = min(1.0, 16 / max(h, w))
            size = (max(8, round(h * scale)), max(8, round(w * scale)))
        if spec.kind == "image" and model is None:
            model, params = IMAGE_MODEL
        pooled, labels = _pool_classifier(data, size if spec.kind == "image" else None)
    num_classes = int(labels.max()) + 1 if len(labels) else 0
    probs = np.zeros((len(labels), num_classes), np.float32)
    scratch = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="tfpilot-inspect-"))
    accuracy = []
    try:
        for k, (tr, va, held) in enumerate(_folds(labels, folds, config.data.split_seed)):
            fold_data = _with_splits(pooled, tr, va, held)
            cfg = fold_config(config, scratch / f"fold-{k}", model=model, epochs=epochs, batch_size=batch_size,
                              params=params)
            trainer = _FoldTrainer(cfg, fold_data).fit()
            p = _fold_probs(trainer, fold_data, head, trainer.config.train.batch_size)
            probs[held] = p
            accuracy.append(round(float((p.argmax(1) == labels[held]).mean()), 4))
            log.info("label issues: fold %d/%d held-out accuracy %.4f", k + 1, folds, accuracy[-1])
            if model is None:  # tfpilot's choice for the first fold: the same for the others
                model, params = trainer.config.model.name, trainer.config.model.params
    finally:
        if not work_dir:
            shutil.rmtree(scratch, ignore_errors=True)
    issues = cleanlab.filter.find_label_issues(labels, probs, return_indices_ranked_by="self_confidence")
    return LabelIssues(probs, labels, np.asarray(issues, np.int64), accuracy, model or "", size,
                       round(time.perf_counter() - start, 2))


def label_issue_findings(config: Config, data: Any, flat: Any, *, folds: int = 4, epochs: int = 4,
                         model: str | None = None) -> dict[str, Any]:
    """:func:`find_label_issues` as ``inspect.json``'s ``label_issues`` section: each issue with
    its example (split, id), given and suggested label and their probabilities; a ``skipped``
    reason instead when the data has no class to check.

    Args:
        config, data: as :func:`find_label_issues`.
        flat: the flat listing of ``data`` (:func:`~tfpilot.data.inspect.examples.flatten`).
        folds, epochs, model: as :func:`find_label_issues`.
    """
    if not flat.class_names:
        return {"skipped": "the data has no category or binary target: nothing to check"}
    if len(flat) and int(np.bincount(flat.y).min()) < 2:
        return {"skipped": "a class has fewer than 2 examples: a K-fold model cannot hold it out"}
    result = find_label_issues(config, data, folds=folds, epochs=epochs, model=model)
    names = flat.class_names
    issues = []
    for i in result.issues:
        p = result.probs[i]
        g, s = int(result.labels[i]), int(p.argmax())
        issues.append({"i": int(i), **flat.ref(int(i)), "given": names[g], "suggested": names[s],
                       "p_given": round(float(p[g]), 4), "p_suggested": round(float(p[s]), 4)})
    epochs_text = "" if result.model.startswith("ydf") else f", {epochs} epochs"
    method = (f"{len(result.fold_accuracy)}-fold {result.model}{epochs_text}"
              + (f", images at {result.image_size[0]}x{result.image_size[1]}" if result.image_size else "")
              + "; cleanlab.filter.find_label_issues (ranked by self-confidence)")
    accuracy = round(float((result.probs.argmax(1) == result.labels).mean()), 4)
    found = {"count": len(issues), "examples": int(len(result.labels)), "method": method,
             "fold_accuracy": result.fold_accuracy, "out_of_sample_accuracy": accuracy,
             "seconds": result.seconds, "issues": issues}
    if accuracy < WEAK_MODEL:
        found["warning"] = (f"the quick model is weak here ({100 * accuracy:.1f}% out of sample): most issues are its "
                            "own mistakes, not label errors; look at the top of the ranking, or pass a stronger "
                            "--model and more --epochs")
    return found
