"""The examples export needs from a run: a class-balanced calibration sample of the
training split (for int8), and a split to verify and benchmark on -- both the run's
recorded splits (the members of its split.json), never a fresh split.

Both come back as raw inputs in memory -- uint8 images (N, H, W, C) at the size the model
takes, or an array of strings -- exactly what the Keras model and every artifact consume.

Example:
    >>> from tfpilot.export.data import load_split
    >>> x, y = load_split("runs/mnist_cnn-mnist-20260101-120000", "test", limit=500)  # doctest: +SKIP
    >>> x.shape, x.dtype  # doctest: +SKIP
    ((500, 28, 28, 1), dtype('uint8'))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfpilot.config.schema import EVAL_BATCH
from tfpilot.errors import UserError


def load_split(
    run_dir: str | Path,
    split: str = "test",
    limit: int | None = None,
    dataset: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs and labels of one split: the run's recorded one (its split.json members),
    or ``dataset``'s.

    Args:
        run_dir: the run directory.
        split: "test", "val" or "train".
        limit: keep at most this many examples, class-balanced (seeded).
        dataset: another dataset (name or path) with the same classes; default: the run's
            recorded split.
        seed: seed of the class-balanced subset.

    Returns:
        ``(x, y)``: uint8 images (N, H, W, C) or strings (N,), and int64 labels (N,).

    Raises:
        RecordedSplitError: recorded examples are missing or changed since training.
    """
    from tfpilot.data import load_run_data, make_pipeline
    from tfpilot.data.splits import limit_stratified
    from tfpilot.runs import Run
    from tfpilot.spec import InputSpec

    run = Run(run_dir)
    spec = InputSpec.from_dict(run.labels["input"])
    data = load_run_data(run, dataset, splits=[split])
    if split not in data.splits or len(data.splits[split]) == 0:
        where = f"the run {run.path}" if data.recorded else f"dataset {dataset!r}"
        have = data.manifest["splits"] if data.recorded else data.splits
        raise UserError(f"{where} has no {split!r} split; it has {sorted(k for k, v in have.items() if len(v))}")
    part = data.splits[split]
    if limit and limit < len(part):
        part = part.take(limit_stratified(part.y, limit, seed))
    if part.x is not None:
        return _as_inputs(part.x, spec), part.y
    decode = spec.decode_target()
    xs, ys = [], []
    for xb, yb in make_pipeline(part, 256, training=False, cache=False, **decode):
        xs.append(xb.numpy())
        ys.append(yb.numpy())
    return _as_inputs(np.concatenate(xs), spec), np.concatenate(ys).astype(np.int64)


def _as_inputs(x: np.ndarray, spec) -> np.ndarray:
    if spec.kind == "text":
        return np.asarray([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in x], dtype=object)
    return np.asarray(x, dtype=np.uint8)


def calibration_sample(run_dir: str | Path, size: int = 500, seed: int = 0) -> np.ndarray:
    """A class-balanced sample of the training split (raw inputs), for int8 calibration."""
    x, _ = load_split(run_dir, "train", limit=size, seed=seed)
    return x


def named_split(run_dir: str | Path, split: str = "test", limit: int | None = None,
                seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Raw inputs by input key and targets by head key of one of the run's recorded splits: a
    classifier's one input and head (see :func:`load_split`), or a table model's columns (images
    decoded, the first ``limit`` rows).

    Example:
        >>> x, y = named_split("runs/multitask-table", "test", limit=50)  # doctest: +SKIP
        >>> sorted(x), sorted(y)  # doctest: +SKIP
        (['photo', 'title'], ['kind', 'price'])
    """
    from tfpilot.runs import Run
    from tfpilot.spec import as_table_spec, spec_from_dict

    run = Run(run_dir)
    spec = spec_from_dict(run.labels["input"])
    if spec.kind != "table":
        x, y = load_split(run_dir, split, limit=limit, seed=seed)
        view = as_table_spec(spec, run.labels["class_names"])
        return {view.input_keys[0]: x}, {view.output_keys[0]: y}
    import json

    from tfpilot.config import load_config
    from tfpilot.data.table import prepare_table
    from tfpilot.data.table_pipeline import table_pipeline
    from tfpilot.runs import SPLIT

    recorded = json.loads(run.file(SPLIT).read_text(encoding="utf-8"))
    data = prepare_table(load_config(run.config_file), manifest=recorded)  # exactly the recorded rows
    if split not in data.splits:
        raise UserError(f"the table has no {split!r} rows; it has {sorted(data.splits)}")
    part = data.splits[split]
    if limit:
        part = part.take(np.arange(min(limit, len(part))))
    x = dict(part.inputs)
    paths = [c.key for c in spec.inputs if c.kind == "image" and x[c.key].dtype == object]
    if paths:  # images held as file paths: decode them as the model's pipeline does
        batches = list(table_pipeline(part, spec, EVAL_BATCH, training=False, with_targets=False))
        x.update({k: np.concatenate([b[k].numpy() for b in batches]) for k in paths})
    return x, part.targets
