"""train.distribute=mirrored: one process mirrored over two logical CPUs trains like one device,
for a classifier and for a two-input, two-head table model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.training.test_distributed import TABLE_CONFIG, _env

#: Trains the tree of argv[3] into argv[2] with train.distribute = argv[1], over two logical CPUs;
#: prints its metrics. One run per process: a second MirroredStrategy in a process reuses the first
#: one's collective instance keys (tensorflow/tensorflow#62790: "Shape mismatch in the collective instance").
MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tfpilot
tree = json.loads(sys.argv[3])
tree["train"]["distribute"], tree["output"] = sys.argv[1], {"run_dir": sys.argv[2]}
print(json.dumps(tfpilot.train(tree, report=False).metrics))
"""
#: A classifier (the MNIST-like digits) for the mirrored runs.
DIGITS = {
    "data": {"dataset": "digits"},
    "model": {"name": "mlp", "params": {"hidden_units": [32]}},
    "train": {"epochs": 4, "batch_size": 64, "precision": "float32", "seed": 5, "optimizer": {"learning_rate": 0.01},
              "callbacks": {"progress": "none", "tensorboard": False}},
}


@pytest.fixture(scope="module")
def mirrored_and_not(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """{"digits" | "table": {"mirrored" | "none": metrics}}: each tree trained mirrored over two
    logical CPUs (a fresh process each) and on one device (in this process)."""
    import tfpilot
    from tfpilot.testing.table import make_table

    root = tmp_path_factory.mktemp("mirrored")
    table = yaml.safe_load(TABLE_CONFIG)
    table["data"] = {"dataset": str(make_table(root, rows=240, images=False))}
    trees = {"digits": DIGITS, "table": table}
    out: dict[str, dict[str, dict]] = {name: {} for name in trees}
    for name, tree in trees.items():
        res = subprocess.run([sys.executable, "-c", MIRRORED, "mirrored", str(root / "mirrored" / name),
                              json.dumps(tree)], capture_output=True, text=True, env=_env(), timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        out[name]["mirrored"] = json.loads(res.stdout.strip().splitlines()[-1])
        # not train.deterministic here: TensorFlow's op determinism, once on, stays on for this process's other tests
        alone = {**tree, "train": {**tree["train"], "distribute": "none", "deterministic": False},
                 "output": {"run_dir": str(root / "none" / name)}}
        out[name]["none"] = tfpilot.train(alone, report=False).metrics
    for runs in out.values():
        assert runs["mirrored"]["distributed"]["replicas"] == 2
        assert "distributed" not in runs["none"]
    return out


def test_mirrored_over_two_logical_cpus_matches_one_device(mirrored_and_not):
    out = mirrored_and_not["digits"]
    assert out["mirrored"]["test"]["accuracy"] > 0.8
    assert abs(out["mirrored"]["test"]["accuracy"] - out["none"]["test"]["accuracy"]) <= 0.02
    assert abs(out["mirrored"]["test"]["loss"] - out["none"]["test"]["loss"]) <= 0.05


def test_a_table_model_mirrored_over_two_logical_cpus_matches_one_device(mirrored_and_not):
    out = mirrored_and_not["table"]
    heads, alone = out["mirrored"]["test"]["heads"], out["none"]["test"]["heads"]
    assert heads["kind"]["accuracy"] > 0.8
    assert abs(heads["kind"]["accuracy"] - alone["kind"]["accuracy"]) <= 0.02, (heads, alone)
    assert abs(heads["price"]["mae"] - alone["price"]["mae"]) <= 0.25 * heads["price"]["baseline_mae"], (heads, alone)
