"""A distributed epoch holds exactly the single-process epoch's batches, the last one partial:
each worker's per-replica batches of the trainer's stream, and the training step on replicas
that hold unequal parts of a batch (or none of it)."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from tfpilot.config import load_config
from tfpilot.training.distribute import Cluster
from tfpilot.training.trainer import Trainer


@pytest.fixture(scope="module")
def digits():
    from tfpilot.data.table import prepare_run_data

    config = load_config(None, overrides=["data.dataset=digits", "model.name=mlp", "train.batch_size=8"])
    data = prepare_run_data(config)
    return config, data


def _rows(batch) -> collections.Counter:
    x = np.asarray(batch[0])
    return collections.Counter(row.tobytes() for row in x.reshape(len(x), int(np.prod(x.shape[1:]))))


def _steps(config, data, workers: int = 1, replicas: int = 1) -> list[list[collections.Counter]]:
    """Per worker: the examples of each step (its replicas' batches together), 2 epochs."""
    trainer = Trainer(config)
    out = []
    for index in range(workers):
        trainer.strategy_ = None if workers * replicas == 1 else types.SimpleNamespace(
            num_replicas_in_sync=workers * replicas)
        trainer.cluster_ = Cluster(tuple(f"h:{i}" for i in range(workers)), index) if workers > 1 else None
        batches = [_rows(b) for b in trainer._train_stream(data, 0, 2)]
        assert len(batches) % replicas == 0
        out.append([sum(batches[i:i + replicas], collections.Counter()) for i in range(0, len(batches), replicas)])
    return out


@pytest.mark.parametrize("steps_per_epoch", [None, 5])
@pytest.mark.parametrize(("workers", "replicas"), [(2, 1), (1, 2), (2, 2), (2, 4)])
def test_every_step_holds_the_single_process_batch(digits, workers, replicas, steps_per_epoch):
    config, data = digits
    n = len(data.splits["train"])
    assert n % 8 and n % 8 < 2 * 4  # a partial last batch, smaller than some worker counts x replicas
    config = config.model_copy(update={"train": config.train.model_copy(update={"steps_per_epoch": steps_per_epoch})})
    (single,) = _steps(config, data)
    per_worker = _steps(config, data, workers, replicas)
    assert all(len(steps) == len(single) for steps in per_worker)  # every worker runs the same steps
    assert len(single) == 2 * (steps_per_epoch or -(-n // 8))
    for k, batch in enumerate(single):
        assert sum((steps[k] for steps in per_worker), collections.Counter()) == batch, k
    if not steps_per_epoch:
        assert sum(single[-1].values()) == n % 8  # the last batch is partial, nothing wrapped around


MIRRORED = r"""
import contextlib, json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from tfpilot.data.pipeline import epoch_stream
from tfpilot.training.custom_loop import build_state, custom_fit

x = np.random.default_rng(0).normal(size=(9, 3)).astype("float32")
y = (x[:, 0] > 0).astype("int64")

def train(strategy, batch_norm):
    source = lambda index: tf.data.Dataset.from_tensor_slices((x, y))
    # 9 examples in global batches of 4: the last holds 1, so one of the 2 replicas gets none.
    ds = epoch_stream(source, None, 9, 4, (0, 2), shuffle_buffer=1, replicas=2 if strategy else 1)
    with strategy.scope() if strategy else contextlib.nullcontext():
        bn = [keras.layers.BatchNormalization()] if batch_norm else []
        model = keras.Sequential([keras.Input((3,)), *bn, keras.layers.Dense(2, "softmax", kernel_initializer=keras.initializers.GlorotUniform(0))])
        model.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    if strategy:
        build_state(model, strategy, ds.element_spec)
        ds = strategy.distribute_datasets_from_function(lambda context: ds)
    logs = custom_fit(model, ds, epochs=2, steps_per_epoch=3, strategy=strategy).history
    return [np.asarray(w).tolist() for w in model.weights], logs

out = {}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])  # one: two would share collective keys
for bn in (False, True):
    mirrored = train(strategy, bn)
    out[str(bn)] = {"mirrored": mirrored, "single": train(None, bn)}
print(json.dumps(out))
"""


def test_a_partial_batch_over_unequal_replicas_trains_as_one_device(tmp_path):
    import os

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    (mirrored, logs), (single, single_logs) = out["False"]["mirrored"], out["False"]["single"]
    for a, b in zip(mirrored, single):  # the same gradient every step, the 1-example step included
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logs["loss"], single_logs["loss"], rtol=1e-5)
    np.testing.assert_allclose(logs["accuracy"], single_logs["accuracy"], rtol=1e-6)
    (bn_weights, bn_logs), _ = out["True"]["mirrored"], out["True"]["single"]
    assert all(np.isfinite(np.asarray(w)).all() for w in bn_weights)  # the empty replica ran no BatchNorm
    assert np.isfinite(bn_logs["loss"]).all()
