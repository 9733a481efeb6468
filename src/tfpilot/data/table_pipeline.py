"""tf.data pipelines of table splits: ``(dict of raw inputs, dict of targets)`` batches, and
running a model over them.

Image columns held as file paths are decoded here (in parallel, like the image
pipelines); decoded ones go in as uint8 arrays. The training stream shuffles every
epoch with a seed derived from ``(seed, epoch)``, so a resumed run sees the batches the
uninterrupted run saw.

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

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

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
        return (x, *y)

    return decode


def _finish(ds: Any) -> Any:
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def table_pipeline(split: TableSplit, spec: TableSpec, batch_size: int, *, training: bool, seed: int = 42,
                   shuffle_buffer: int = 60_000, with_targets: bool = True) -> Any:
    """Batches of ``(inputs, targets)`` (or inputs only) of one table split.

    Args:
        split: the split.
        spec: the model's table spec (which columns, in which form).
        batch_size: rows per batch.
        training: shuffle (reshuffled every epoch) when True.
        seed, shuffle_buffer: the shuffle's seed and buffer size.
        with_targets: also yield the targets.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(_tensors(split, spec, with_targets))
    decode = _decoder(split, spec)
    if training:
        ds = ds.shuffle(min(shuffle_buffer, max(len(split), 1)), seed=seed, reshuffle_each_iteration=True)
    if decode is not None:
        ds = ds.map(decode if with_targets else (lambda x: decode(x)[0]), num_parallel_calls=tf.data.AUTOTUNE)
    return _finish(ds.batch(batch_size))


def table_train_pipeline(split: TableSplit, spec: TableSpec, batch_size: int, epochs: tuple[int, int], *,
                         seed: int = 42, shuffle_buffer: int = 60_000, steps_per_epoch: int | None = None,
                         balanced_by: str | None = None, maps: Sequence[Callable[[Any], Any]] = ()) -> Any:
    """The training stream of epochs ``[start, end)``, each shuffled with a seed from ``(seed, epoch)``
    (:func:`~tfpilot.data.pipeline.epoch_stream`).

    Args:
        split: the training split.
        spec: the model's table spec.
        batch_size: rows per batch.
        epochs: ``(start, end)`` epoch numbers (0-based, end exclusive).
        seed, shuffle_buffer: the base shuffle seed and the buffer size.
        steps_per_epoch: batches per epoch, if not one pass over the rows.
        balanced_by: a class head's key: every class of that target is drawn equally often.
        maps: dataset transforms applied to the batched stream, in order, before prefetching.

    Example:
        >>> import numpy as np
        >>> from tfpilot.spec import FeatureSpec, TableSpec
        >>> spec = TableSpec((FeatureSpec("x", "number"),), (FeatureSpec("y", "number"),))
        >>> split = TableSplit({"x": np.zeros(6, "float32")}, {"y": np.zeros(6, "float32")}, np.arange(6))
        >>> sum(1 for _ in table_train_pipeline(split, spec, 4, (0, 3)))  # 3 epochs x 2 batches
        6
    """
    import tensorflow as tf

    from tfpilot.data.pipeline import epoch_stream

    def source(index: np.ndarray | None) -> Any:
        return tf.data.Dataset.from_tensor_slices(_tensors(split if index is None else split.take(index), spec))

    labels = split.targets[balanced_by].astype(np.int64) if balanced_by else None
    ds = epoch_stream(source, labels, len(split), batch_size, epochs, seed=seed, shuffle_buffer=shuffle_buffer,
                      decode=_decoder(split, spec), steps_per_epoch=steps_per_epoch)
    for transform in maps:
        ds = transform(ds)
    return _finish(ds)


def predict_heads(model: Any, split: TableSplit, spec: TableSpec, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Every head's outputs over a split: key -> (N, C) probabilities, (N,) sigmoid or (N,) values."""
    ds = table_pipeline(split, spec, batch_size, training=False, with_targets=False)
    parts: dict[str, list[np.ndarray]] = {}
    for x in ds:
        out = model(x, training=False)
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v, dtype=np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}
