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

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tfpilot.data.source import Split


def _source(split: Split, index: np.ndarray | None = None) -> Any:
    """``(example, label)`` pairs of ``split`` (or of its ``index`` subset): decoded examples,
    or file paths that :func:`_decoder` decodes."""
    import tensorflow as tf

    y = split.y if index is None else split.y[index]
    if split.x is not None:
        return tf.data.Dataset.from_tensor_slices((split.x if index is None else split.x[index], y))
    if split.paths is not None:
        paths = split.paths.astype(str)
        return tf.data.Dataset.from_tensor_slices((paths if index is None else paths[index], y))
    raise ValueError("split has neither examples nor paths")


def _decoder(split: Split, image_size: tuple[int, int] | None = None, channels: int | None = None) -> Any:
    """The map function decoding a file split's ``(path, label)`` pairs (None for decoded splits)."""
    if split.x is not None:
        return None
    import tensorflow as tf

    from tfpilot.data.images import decode_and_resize

    if image_size is None or channels is None:
        raise ValueError("a file split needs image_size and channels to decode")
    return lambda p, y: (decode_and_resize(tf.io.read_file(p), channels, image_size), y)


def _finish(ds: Any) -> Any:
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


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
    shard: tuple[int, int] | None = None,
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
        shard: ``(num_shards, index)``: keep every num_shards-th example from ``index`` on,
            before decoding (a worker of a multi-worker run reads only its own files).
    """
    return batches(lambda index: _source(split, index), _decoder(split, image_size, channels), len(split),
                   batch_size, training=training, seed=seed, shuffle_buffer=shuffle_buffer, one_hot=one_hot,
                   cache=cache, drop_remainder=drop_remainder, shard=shard)


def batches(source: Callable[[np.ndarray | None], Any], decode: Any, n: int, batch_size: int, *, training: bool,
            seed: int = 42, shuffle_buffer: int = 60_000, one_hot: int | None = None, cache: bool = True,
            drop_remainder: bool = False, shard: tuple[int, int] | None = None) -> Any:
    """The batches of any split, a classifier's or a table's (see :func:`make_pipeline`).

    Args:
        source: index array (None: every example) -> the dataset of those examples.
        decode: the per-example map that decodes files (None: examples are in memory).
        n: examples in the split.
        batch_size, training, seed, shuffle_buffer, one_hot, cache, drop_remainder, shard: as
            in :func:`make_pipeline`.

    Example:
        >>> import tensorflow as tf
        >>> ds = batches(lambda i: tf.data.Dataset.range(5), None, 5, 2, training=False)
        >>> [len(b) for b in ds]
        [2, 2, 1]
    """
    import tensorflow as tf

    ds = source(None)
    if shard is not None:
        ds = ds.shard(*shard)
    if decode is not None:
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        if cache:
            ds = ds.cache()
    if training:
        ds = ds.shuffle(min(shuffle_buffer, max(n, 1)), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if one_hot:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, one_hot)), num_parallel_calls=tf.data.AUTOTUNE)
    return _finish(ds)


def make_train_pipeline(
    split: Split,
    batch_size: int,
    epochs: tuple[int, int],
    *,
    seed: int = 42,
    shuffle_buffer: int = 60_000,
    balanced: bool = False,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    steps_per_epoch: int | None = None,
    shard: tuple[int, int] | None = None,
    replicas: int = 1,
) -> Any:
    """The training stream for epochs ``[start, end)``: each epoch is ``ceil(N / batch_size)``
    batches (or ``steps_per_epoch``, cycling through the data), shuffled with a seed derived
    from ``(seed, epoch)``.

    Because every epoch's order depends only on the seed and the epoch number, a run resumed
    at epoch k sees exactly the batches the uninterrupted run saw (see ``tfpilot resume``).

    Args:
        split: the training split (decoded examples or file paths).
        batch_size: examples per batch.
        epochs: ``(start, end)`` epoch numbers (0-based, end exclusive).
        seed: base shuffle seed.
        shuffle_buffer: shuffle buffer size (capped at the split size).
        balanced: draw every class with equal probability (rare classes oversampled).
        image_size, channels: decode target for file splits.
        steps_per_epoch: batches per epoch, if not one pass over the data.
        shard: ``(num_workers, index)``: this worker's share of every epoch -- the epoch's
            seeded order is the same on every worker, each keeps every num_workers-th example
            of it before decoding, so image folders are read by file, once per epoch in all.
        replicas: this worker's replicas (a distributed run). With ``shard`` or several
            replicas, ``batch_size`` is the global batch and the stream is this worker's
            per-replica batches, ``replicas`` per step (:func:`distributed_batches`): every
            step holds exactly the examples of the single-process step, the last one partial.

    Example:
        >>> import numpy as np
        >>> split = Split(y=np.arange(6) % 2, x=np.zeros((6, 2, 2, 1), np.uint8))
        >>> ds = make_train_pipeline(split, 4, (0, 3))
        >>> sum(1 for _ in ds)  # 3 epochs x 2 batches
        6
    """
    return _finish(epoch_stream(lambda index: _source(split, index), split.y if balanced else None, len(split),
                                batch_size, epochs, seed=seed, shuffle_buffer=shuffle_buffer,
                                decode=_decoder(split, image_size, channels), steps_per_epoch=steps_per_epoch,
                                shard=shard, replicas=replicas))


def epoch_stream(source: Callable[[np.ndarray | None], Any], labels: np.ndarray | None, n: int, batch_size: int,
                 epochs: tuple[int, int], *, seed: int = 42, shuffle_buffer: int = 60_000, decode: Any = None,
                 steps_per_epoch: int | None = None, shard: tuple[int, int] | None = None,
                 replicas: int = 1) -> Any:
    """The batches of epochs ``[start, end)`` of any split (a classifier's or a table's), each
    epoch shuffled with a seed from ``(seed, epoch)`` (see :func:`make_train_pipeline`).

    Args:
        source: index array (None: every example) -> the dataset of those examples.
        labels: class ids to balance by (every class drawn equally often, ``n`` examples an
            epoch); None: each example once an epoch.
        n: examples in the split.
        batch_size, epochs, seed, shuffle_buffer, steps_per_epoch, shard, replicas: as in
            :func:`make_train_pipeline`.
        decode: the per-example map that decodes files (None: examples are in memory).

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> ds = epoch_stream(lambda i: tf.data.Dataset.from_tensor_slices(np.arange(6) if i is None else i),
        ...                   None, 6, 4, (0, 2))
        >>> [len(batch) for batch in ds]  # 2 epochs of 6 examples
        [4, 2, 4, 2]
    """
    import tensorflow as tf

    buffer = min(shuffle_buffer, max(n, 1))
    if labels is not None:
        classes = np.unique(labels)
        per_class = [source(np.flatnonzero(labels == k)) for k in classes]

        def one_epoch(e: Any) -> Any:
            s = tf.cast(seed, tf.int64) * 1_000_003 + e
            streams = [d.shuffle(buffer, seed=s + i, reshuffle_each_iteration=True).repeat()
                       for i, d in enumerate(per_class)]
            return tf.data.Dataset.sample_from_datasets(
                streams, weights=[1.0 / len(classes)] * len(classes), seed=s).take(n)
    else:
        base = source(None)

        def one_epoch(e: Any) -> Any:
            return base.shuffle(buffer, seed=tf.cast(seed, tf.int64) * 1_000_003 + e, reshuffle_each_iteration=False)

    examples = steps_per_epoch * batch_size if steps_per_epoch else n

    def batches(e: Any) -> Any:
        ds = one_epoch(e)
        if shard is not None or replicas > 1:
            workers, index = shard or (1, 0)
            return distributed_batches(ds, examples, batch_size, workers, index, replicas, decode)
        if decode is not None:
            ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if steps_per_epoch:
            return ds.repeat().batch(batch_size).take(steps_per_epoch)
        return ds.batch(batch_size)

    return tf.data.Dataset.range(epochs[0], epochs[1]).flat_map(batches)


def distributed_batches(epoch: Any, examples: int, batch_size: int, workers: int, index: int, replicas: int,
                        decode: Any = None) -> Any:
    """One worker's per-replica batches of one epoch: its part of each global batch of the
    single-process epoch, split over its replicas.

    The single-process epoch is the first ``examples`` of ``epoch`` (cycled when that is more
    than one pass) in global batches of ``batch_size``, the last one partial. Step ``k`` of
    every worker holds exactly global batch ``k``: worker ``index`` takes its every
    ``workers``-th example (before decoding, so each file is read by one worker), and splits
    it over its ``replicas`` as evenly as possible. Every worker yields ``replicas`` batches
    for every step, so all run the same number of steps. A partial last batch that does not
    split evenly gives some replicas one example fewer, and a replica (or a whole worker)
    left without any an empty batch (zero rows): the training step weighs each replica's loss
    by its share of the global batch's rows, and gives an empty one a loss weight of 0
    (:func:`~tfpilot.training.custom_loop.make_train_step`).

    Args:
        epoch: the epoch's examples in their seeded order (undecoded).
        examples: examples per epoch (``steps_per_epoch * batch_size``, or one pass).
        batch_size: the global batch (a multiple of ``workers * replicas``).
        workers, index: the workers of the run and this one's index.
        replicas: this worker's replicas.
        decode: the per-example map that decodes files, or None.

    Example:
        >>> import tensorflow as tf
        >>> epoch = tf.data.Dataset.range(10)
        >>> [b.numpy().tolist() for b in distributed_batches(epoch, 10, 4, workers=2, index=1, replicas=1)]
        [[1, 3], [5, 7], [9]]
        >>> [b.numpy().tolist() for b in distributed_batches(epoch, 9, 4, workers=1, index=0, replicas=4)]
        [[0], [1], [2], [3], [4], [5], [6], [7], [8], [], [], []]
    """
    import tensorflow as tf

    if batch_size % (workers * replicas):
        raise ValueError(f"a global batch of {batch_size} does not split over {workers} worker(s) of {replicas} "
                         "replica(s): choose a multiple of their product")
    mine, per_worker = len(range(index, examples, workers)), batch_size // workers
    if not mine:
        raise ValueError(f"an epoch of {examples} example(s) leaves worker {index} of {workers} without any: "
                         "train with fewer workers or on more data")
    ds = epoch.repeat().take(examples).shard(workers, index)
    if decode is not None:
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    steps = math.ceil(examples / batch_size)
    slices = ds.batch(per_worker)
    if math.ceil(mine / per_worker) < steps:  # nothing of the last, partial batch is this worker's
        slices = slices.concatenate(ds.take(1).batch(1).map(_no_rows))
    return slices.flat_map(_split(replicas)) if replicas > 1 else slices


def _no_rows(*batch: Any) -> Any:
    """The batch with its rows cut to none (an empty batch of the same structure)."""
    import tensorflow as tf

    return tf.nest.map_structure(lambda t: t[:0], batch if len(batch) > 1 else batch[0])


def _split(parts: int) -> Callable[..., Any]:
    """Batch -> a dataset of ``parts`` consecutive pieces of it, their sizes differing by one
    at most (the first ones larger; a piece may be empty)."""
    import tensorflow as tf

    def split(*batch: Any) -> Any:
        batch = batch if len(batch) > 1 else batch[0]
        rows = tf.shape(tf.nest.flatten(batch)[0], out_type=tf.int64)[0]
        j = tf.range(parts + 1, dtype=tf.int64)
        bounds = j * (rows // parts) + tf.minimum(j, rows % parts)
        return tf.data.Dataset.range(parts).map(
            lambda i: tf.nest.map_structure(lambda t: t[bounds[i]:bounds[i + 1]], batch))

    return split


def make_sample_pipeline(split: Split, examples: int, batch_size: int, seed: int, *,
                         image_size: tuple[int, int] | None = None, channels: int | None = None,
                         cache_bytes: int = 256 * 2**20) -> Any:
    """A fixed sample of a split as batches: the same examples, in the same order, every time
    it is iterated (un-augmented; shuffled once, so batches mix the classes).

    Args:
        split: the split to sample (the training split for precise BN and the mode-gap check).
        examples: at most this many examples (all of a smaller split).
        batch_size: examples per batch.
        seed: the sample's seed.
        image_size, channels: decode target for file splits.
        cache_bytes: decoded file images are cached in memory up to this size.

    Returns:
        A ``tf.data.Dataset`` of ``(x, y)`` batches with sparse labels.

    Example:
        >>> split = Split(y=np.arange(10) % 2, x=np.zeros((10, 4, 4, 1), np.uint8))
        >>> [int(x.shape[0]) for x, _ in make_sample_pipeline(split, 6, 4, seed=0)]
        [4, 2]
    """
    n = min(examples, len(split))
    index = np.random.default_rng(seed).permutation(len(split))[:n]
    sample = split.take(index)
    if image_size is not None and channels is not None:
        cache = n * image_size[0] * image_size[1] * channels <= cache_bytes
    else:
        cache = True
    return make_pipeline(sample, batch_size, training=False, image_size=image_size, channels=channels, cache=cache)
