"""A run's per-example predictions on one split, kept in memory (never written to disk).

The report needs more than the summary metrics in ``metrics.json``: every example's
probabilities (calibration, ROC, the highest-loss examples) and the raw inputs of the few
examples it shows. :func:`predict_split` rebuilds the run's recorded split (the exact
members of ``split.json``, through :func:`tfpilot.data.load_run_data`) and runs the model
over it.

Example:
    >>> from tfpilot.evaluation.predictions import predict_split
    >>> preds = predict_split("runs/mnist_cnn-mnist-20260101-120000")  # doctest: +SKIP
    >>> preds.y_pred[:5], preds.losses.argmax()  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfpilot.config import load_config
from tfpilot.spec import InputSpec


@dataclass
class SplitPredictions:
    """Labels, probabilities and lazy access to the inputs of one split.

    Attributes:
        split: the split's name ("test", "val" or "train").
        class_names: the model's classes, in output order.
        input_spec: what the model takes.
        y_true: integer labels (N,).
        probs: probabilities (N, C).
        examples: the data split (decoded arrays, texts or file paths).
    """

    split: str
    class_names: list[str]
    input_spec: InputSpec
    y_true: np.ndarray
    probs: np.ndarray
    examples: Any

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
        """Identifiers (file paths, or indices into the source) of the examples at ``index``."""
        ids = self.examples.ids
        return [str(ids[i]) for i in np.asarray(index, dtype=np.int64)] if ids is not None else [str(i) for i in index]

    def inputs(self, index: np.ndarray) -> Any:
        """The raw inputs at ``index``: uint8 images (n, H, W, C) or a list of strings."""
        from tfpilot.data import make_pipeline

        index = np.asarray(index, dtype=np.int64)
        if self.examples.x is not None:
            x = self.examples.x[index]
            return [str(t) for t in x] if self.input_spec.kind == "text" else np.asarray(x)
        spec = self.input_spec
        ds = make_pipeline(self.examples.take(index), 256, training=False, cache=False, **spec.decode_target())
        batches = [np.asarray(x) for x, _ in ds]
        return np.concatenate(batches) if batches else np.zeros((0, *spec.shape), np.uint8)


def load_split(run: Any, split: str = "test") -> tuple[Any, Any]:
    """The run's recorded ``split`` (its split.json members): ``(prepared_data, split)``.

    Raises:
        RecordedSplitError: recorded examples are missing or changed since training.
        ValueError: when the run recorded no such split.
    """
    from tfpilot.data import load_run_data

    data = load_run_data(run, splits=[split])
    return data, _split(data, split, load_config(run.config_file).data.dataset)


def _split(data: Any, split: str, dataset: str) -> Any:
    if split not in data.splits or len(data.splits[split]) == 0:
        raise ValueError(f"dataset {dataset!r} has no {split!r} examples; it has {sorted(data.splits)}")
    return data.splits[split]


def predict_split(
    run: str | Path | Any,
    split: str = "test",
    model: Any = None,
    data: Any = None,
    batch_size: int = 256,
) -> SplitPredictions:
    """Predictions of a run's model on one split of its data.

    Args:
        run: a run directory or :class:`~tfpilot.training.Run`.
        split: "test", "val" or "train".
        model: the trained model if already in memory (default: load ``model.keras``).
        data: the run's :class:`~tfpilot.data.PreparedData` if already in memory (the
            Trainer's; default: the run's recorded split, rebuilt from ``split.json``).
        batch_size: examples per model call.
    """
    from tfpilot.data import make_pipeline
    from tfpilot.metrics import predict_probabilities
    from tfpilot.runs import Run

    run = run if isinstance(run, Run) else Run(run)
    spec = InputSpec.from_dict(run.labels["input"])
    examples = _split(data, split, str(load_config(run.config_file).data.dataset)) if data is not None else load_split(run, split)[1]
    decode = spec.decode_target()
    ds = make_pipeline(examples, batch_size, training=False, cache=False, **decode)
    y, probs = predict_probabilities(model if model is not None else run.load_model(), ds)
    return SplitPredictions(split, run.class_names, spec, y, probs, examples)
