"""tf.data input pipelines: parallel decode, cache, shuffle, batch, prefetch.

Example:
    >>> import numpy as np
    >>> from tfpilot.data.pipeline import make_pipeline
    >>> from tfpilot.data.source import Split
    >>> split = Split(y=np.arange(10) % 2, x=np.zeros((10, 8, 8, 1), np.uint8))
    >>> batch_x, batch_y = next(iter(make_pipeline(split, batch_size=4, training=True)))
    >>> tuple(batch_x.shape), batch_x.dtype.name
    ((4, 8, 8, 1), 'uint8')
"""

from __future__ import annotations

from typing import Any

from tfpilot.data.source import Split


def make_pipeline(
    split: Split,
    batch_size: int,
    *,
    training: bool,
    seed: int = 42,
    shuffle_buffer: int = 60_000,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    one_hot: int | None = None,
    cache: bool = True,
    drop_remainder: bool = False,
) -> Any:
    """Build a batched ``tf.data.Dataset`` of ``(raw_input, label)`` for one split.

    Args:
        split: decoded examples (``x``) or file paths (``paths``, decoded here in parallel).
        batch_size: examples per batch.
        training: shuffle (seeded, reshuffled every epoch) when True.
        seed: shuffle seed.
        shuffle_buffer: shuffle buffer size (capped at the split size).
        image_size, channels: decode target for file splits.
        one_hot: if set, labels become one-hot vectors of this many classes.
        cache: cache decoded file examples in memory after the first epoch.
        drop_remainder: drop the last partial batch.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    if split.x is not None:
        ds = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    elif split.paths is not None:
        from tfpilot.data.images import decode_and_resize

        if image_size is None or channels is None:
            raise ValueError("a file split needs image_size and channels to decode")
        ds = tf.data.Dataset.from_tensor_slices((split.paths.astype(str), split.y))
        ds = ds.map(
            lambda p, y: (decode_and_resize(tf.io.read_file(p), channels, image_size), y),
            num_parallel_calls=autotune,
        )
        if cache:
            ds = ds.cache()
    else:
        raise ValueError("split has neither examples nor paths")
    if training:
        ds = ds.shuffle(min(shuffle_buffer, max(len(split), 1)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if one_hot:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, one_hot)), num_parallel_calls=autotune)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(autotune)
