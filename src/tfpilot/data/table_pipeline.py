"""tf.data pipelines of table splits: ``(dict of raw inputs, dict of targets)`` batches, and
running a model over them.

Image columns held as file paths are decoded here (in parallel, like the image
pipelines); decoded ones go in as uint8 arrays. The batching, shuffling and the training
stream are :mod:`tfpilot.data.pipeline`'s, shared with classifiers
(:class:`~tfpilot.data.registry.RunData`).

Example:
    >>> import numpy as np
    >>> from tfpilot.data.table_split import TableSplit
    >>> from tfpilot.spec import FeatureSpec, TableSpec
    >>> spec = TableSpec((FeatureSpec("x", "number"),), (FeatureSpec("y", "number"),))
    >>> split = TableSplit({"x": np.arange(5, dtype="float32")}, {"y": np.ones(5, "float32")}, np.arange(5))
    >>> x, y = next(iter(table_pipeline(split, spec, 4, training=False)))
    >>> x["x"].numpy().tolist(), y["y"].shape.as_list()
    ([0.0, 1.0, 2.0, 3.0], [4])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfpilot.config.schema import EVAL_BATCH
from tfpilot.data.table_split import TableSplit
from tfpilot.spec import TableSpec


def _tensors(split: TableSplit, spec: TableSpec, with_targets: bool = True) -> Any:
    x = {c.key: split.inputs[c.key] for c in spec.inputs}
    if not with_targets:
        return x
    return x, {o.key: split.targets[o.key] for o in spec.outputs if o.key in split.targets}


def _decoder(split: TableSplit, spec: TableSpec) -> Any:
    """A map decoding the image columns held as paths (None when every column is in memory)."""
    import tensorflow as tf

    from tfpilot.data.images import decode_and_resize

    to_decode = [c for c in spec.inputs if c.kind == "image" and split.inputs[c.key].dtype == object]
    if not to_decode:
        return None

    def decode(x: dict[str, Any], *y: Any) -> Any:
        x = dict(x)
        for c in to_decode:
            h, w, ch = c.shape
            x[c.key] = decode_and_resize(tf.io.read_file(x[c.key]), ch, (h, w))
        return (x, *y) if y else x

    return decode


def table_pipeline(split: TableSplit, spec: TableSpec, batch_size: int, *, training: bool, seed: int = 42,
                   shuffle_buffer: int = 60_000, with_targets: bool = True) -> Any:
    """Batches of ``(inputs, targets)`` (or inputs only) of one table split
    (:func:`~tfpilot.data.pipeline.batches`).

    Args:
        split: the split.
        spec: the model's table spec (which columns, in which form).
        batch_size: rows per batch.
        training: shuffle (reshuffled every epoch) when True.
        seed, shuffle_buffer: the shuffle's seed and buffer size.
        with_targets: also yield the targets.
    """
    import tensorflow as tf

    from tfpilot.data.pipeline import batches

    rows = tf.data.Dataset.from_tensor_slices(_tensors(split, spec, with_targets))
    return batches(lambda index: rows, _decoder(split, spec), len(split),
                   batch_size, training=training, seed=seed, shuffle_buffer=shuffle_buffer, cache=False)


def predict_heads(model: Any, split: TableSplit, spec: TableSpec,
                  batch_size: int = EVAL_BATCH) -> dict[str, np.ndarray]:
    """Every head's outputs over a split: key -> (N, C) probabilities, (N,) sigmoid or (N,) values."""
    ds = table_pipeline(split, spec, batch_size, training=False, with_targets=False)
    parts: dict[str, list[np.ndarray]] = {}
    for x in ds:
        out = model(x, training=False)
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}
