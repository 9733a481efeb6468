"""train.distribute: multi-worker runs through `tfpilot launch` on loopback, SIGKILL + resume,
mirrored over two logical CPUs, and the errors a cluster gets wrong."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfpilot.training.distribute import Cluster, free_ports, tf_config

TFPILOT = [sys.executable, "-m", "tfpilot.cli.main"]
#: MNIST subset, float32 on every CPU kind, deterministic ops; 3 epochs of 44 steps.
COMMON = ["--dataset", "mnist", "--model", "mlp", "--epochs", "3", "--batch-size", "64",
          "--set", "data.train_limit=3072", "--set", "data.test_limit=1000",
          "--set", "model.params={hidden_units: [64]}",
          "--set", "train.precision=float32", "--set", "train.deterministic=true", "--set", "train.seed=3",
          "--set", "train.callbacks.progress=none", "--set", "train.callbacks.tensorboard=false", "--no-report"]


def _env(**extra: str) -> dict[str, str]:
    """The workers' environment: no inherited TF_CONFIG, and log lines wide enough that the
    digest lines these tests parse are not wrapped (logs may wrap at a narrow COLUMNS)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    return {**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **extra}


def _run(args: list[str], timeout: int = 400, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TFPILOT, *args], capture_output=True, text=True, env=_env(**env), timeout=timeout)


def _digests(output: str) -> dict[int, str]:
    """worker index -> the first 16 hex digits of its logged final-weights SHA-256."""
    found = re.findall(r"worker (\d+) final weights sha256:([0-9a-f]{16})", output)
    return {int(worker): digest for worker, digest in found}


def _launch_and_train(root: Path, args: list[str]) -> tuple[Path, str]:
    """``root/multi`` trained by 2 workers and ``root/single`` by one process, from the same
    arguments (so the same global batch); returns ``root`` and the launch's output."""
    multi = _run(["launch", "--workers", "2", "--threads", "1", *args, "--run-dir", str(root / "multi")])
    assert multi.returncode == 0, multi.stdout[-3000:] + multi.stderr[-3000:]
    single = _run(["train", *args, "--run-dir", str(root / "single")])
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    return root, multi.stdout


@pytest.fixture(scope="module")
def launched(tmp_path_factory, shared_datasets):
    """One 2-worker run and one single-process run of the same config and global batch."""
    return _launch_and_train(tmp_path_factory.mktemp("dist"), COMMON)


def test_two_workers_finish_with_identical_weights(launched):
    root, output = launched
    digests = _digests(output)
    assert sorted(digests) == [0, 1], output[-3000:]
    assert digests[0] == digests[1]
    assert "[worker 1] worker finished: the chief (worker 0) writes the run directory" in output
    metrics = json.loads((root / "multi" / "metrics.json").read_text())
    assert metrics["distributed"]["weights_sha256"].startswith(digests[0])
    del metrics["distributed"]["weights_sha256"]
    assert metrics["distributed"] == {"strategy": "multi_worker", "replicas": 2, "workers": 2, "global_batch": 64}


def test_the_chief_alone_writes_a_complete_run(launched):
    root, _ = launched
    run = root / "multi"
    for name in ("config.yaml", "split.json", "labels.json", "history.csv", "metrics.json", "model.keras",
                 "env.json", "data_report.json", "backup/latest.json", "checkpoints/best.keras"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in root.iterdir()) == ["multi", "single"]  # no stray worker folder
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 1 + 3


def test_accuracy_matches_a_single_process_run_with_the_same_global_batch(launched):
    root, _ = launched
    multi = json.loads((root / "multi" / "metrics.json").read_text())["test"]["accuracy"]
    single = json.loads((root / "single" / "metrics.json").read_text())["test"]["accuracy"]
    assert multi > 0.8
    assert abs(multi - single) <= 0.01, (multi, single)


#: A 2-input (text + number), 2-head (category + number) table model; the number head's loss weighs 0.5.
TABLE_CONFIG = """
features:
  inputs: [title, size]
  outputs: [{name: kind}, {name: price, loss: huber, loss_weight: 0.5}]
model: {name: multitask, params: {hidden_units: [32], dropout: 0.0}}
train:
  epochs: 8
  batch_size: 24
  precision: float32
  deterministic: true
  seed: 3
  optimizer: {learning_rate: 0.01}
  callbacks: {progress: none, tensorboard: false, early_stopping: {enabled: false}}
"""


@pytest.fixture(scope="module")
def launched_table(tmp_path_factory):
    """A table model trained by 2 workers through `tfpilot launch`, and in one process."""
    from tfpilot.testing.table import make_table

    root = tmp_path_factory.mktemp("dist-table")
    table = make_table(root, rows=240, images=False)
    config = root / "table.yaml"
    config.write_text(TABLE_CONFIG)
    return _launch_and_train(root, [str(config), "--dataset", str(table), "--no-report"])


def test_a_two_input_two_head_table_model_matches_a_single_process_run(launched_table):
    root, output = launched_table
    digests = _digests(output)
    assert sorted(digests) == [0, 1] and digests[0] == digests[1], output[-3000:]
    multi, single = (json.loads((root / name / "metrics.json").read_text()) for name in ("multi", "single"))
    assert multi["distributed"]["workers"] == 2 and "distributed" not in single
    heads, alone = multi["test"]["heads"], single["test"]["heads"]
    assert heads["kind"]["accuracy"] > 0.8
    assert abs(heads["kind"]["accuracy"] - alone["kind"]["accuracy"]) <= 0.01, (heads, alone)
    price = heads["price"]
    assert price["mae"] < 0.5 * price["baseline_mae"]  # the number head learned too
    # 21 test rows and a number head still moving at epoch 8: another summation order (per-replica
    # gradients) moves its MAE by up to ~1 (a sixth of the baseline's); the category head must agree
    assert abs(price["mae"] - alone["price"]["mae"]) <= 0.25 * price["baseline_mae"], (heads, alone)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _worker_index(pid: int) -> int:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    spec = next(e for e in environ if e.startswith(b"TF_CONFIG=")).split(b"=", 1)[1]
    return Cluster.from_tf_config(spec.decode()).index


def _crash_in_epoch_2(run: Path) -> None:
    """Launch the 2-worker run of COMMON into ``run``, SIGKILL worker 1 in epoch 2 of 3."""
    launch = subprocess.Popen([*TFPILOT, "launch", "--workers", "2", "--threads", "1", *COMMON, "--run-dir", str(run)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    latest = run / "backup" / "latest.json"
    deadline = time.monotonic() + 300
    while not (latest.is_file() and json.loads(latest.read_text()) == {"dir": "epoch-0001"}):
        assert launch.poll() is None and time.monotonic() < deadline, launch.stdout.read()[-3000:]
        time.sleep(0.02)
    worker1 = next(p for p in _children(launch.pid) if _worker_index(p) == 1)
    os.kill(worker1, signal.SIGKILL)  # epoch 2 (0-based epoch 1) of 3 is under way
    out, _ = launch.communicate(timeout=120)
    assert launch.returncode != 0
    assert "worker 1 exited with status -9; stopping the other workers" in out
    assert not (run / "metrics.json").exists()


def _same_as_uninterrupted(root: Path, run: Path, resumed: subprocess.CompletedProcess) -> None:
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    a = json.loads((root / "multi" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert a["test"] == b["test"]
    assert a["distributed"]["weights_sha256"] == b["distributed"]["weights_sha256"]
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]] == ["0", "1", "2"]


@pytest.fixture(scope="module")
def crashed(tmp_path_factory, shared_datasets) -> Path:
    """A 2-worker run of COMMON whose worker 1 was SIGKILLed in epoch 2 of 3 (copy it before use)."""
    run = tmp_path_factory.mktemp("crashed") / "run"
    _crash_in_epoch_2(run)
    return run


def _copy(crashed: Path, tmp_path: Path) -> Path:
    run = tmp_path / "crashed"
    shutil.copytree(crashed, run)
    return run


def test_sigkill_of_a_worker_in_epoch_2_then_resume_gives_the_uninterrupted_result(launched, crashed, tmp_path):
    root, _ = launched
    run = _copy(crashed, tmp_path)
    _same_as_uninterrupted(root, run, _run(["launch", "--workers", "2", "--threads", "1", "--resume", str(run)]))


def test_the_same_train_command_again_is_refused_or_resumes_with_resume_if_exists(launched, crashed, tmp_path):
    """A restarted pod runs its train command again (docs/distributed.md's TFJob): without
    --resume-if-exists every worker refuses and the run is untouched; with it they resume."""
    root, _ = launched
    run = _copy(crashed, tmp_path)
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    again = ["launch", "--workers", "2", "--threads", "1", *COMMON, "--run-dir", str(run)]
    refused = _run(again)
    out = refused.stdout + refused.stderr
    assert refused.returncode == 2 and f"tfpilot resume {run}" in out, out[-3000:]
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before
    _same_as_uninterrupted(root, run, _run([*again, "--resume-if-exists"]))


def test_a_worker_whose_peer_never_starts_names_the_address(tmp_path):
    ports = free_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    res = _run(["train", "--dataset", "digits", "--model", "mlp", "--set", "train.distribute=multi_worker",
                "--set", "train.worker_timeout_s=3", "--run-dir", str(tmp_path / "r")], timeout=120,
               TF_CONFIG=tf_config(workers, 0))
    assert res.returncode == -9  # the watchdog's SIGKILL: the process is stuck in TensorFlow's C++ rendezvous
    assert f"error: worker 1 at {workers[1]} did not answer within 3 s" in res.stderr


def test_workers_with_different_configs_are_stopped(tmp_path):
    ports = free_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    procs = [subprocess.Popen([*TFPILOT, "train", "--dataset", "digits", "--model", "mlp", "--epochs", str(1 + i),
                               "--set", "train.distribute=multi_worker", "--run-dir", str(tmp_path / f"r{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(TF_CONFIG=tf_config(workers, i))) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 2, err[-2000:]
        assert "the 2 workers were started with different configs" in err


def test_tf_config_parsing():
    spec = {"cluster": {"chief": ["h0:1"], "worker": ["h1:1", "h2:1"]}, "task": {"type": "worker", "index": 1}}
    c = Cluster.from_tf_config(json.dumps(spec))
    assert (c.workers, c.index, c.is_chief, c.num_workers) == (("h0:1", "h1:1", "h2:1"), 2, False, 3)
    assert Cluster.from_tf_config(json.dumps({**spec, "task": {"type": "chief", "index": 0}})).is_chief
    with pytest.raises(ValueError, match="not a valid cluster spec"):
        Cluster.from_tf_config("{not json")
    with pytest.raises(ValueError, match="not in its cluster"):
        Cluster.from_tf_config(json.dumps({**spec, "task": {"type": "worker", "index": 5}}))
    with pytest.raises(ValueError, match="'chief' and 'worker' tasks only"):
        Cluster.from_tf_config(json.dumps({**spec, "task": {"type": "ps", "index": 0}}))


def test_config_rules(tmp_path):
    from tfpilot.config import ConfigError, load_config
    from tfpilot.training.distribute import replica_batch

    assert load_config(None, overrides=["train.distribute=multi_worker"]).train.loop == "custom"
    with pytest.raises(ConfigError, match="train.loop=fit cannot train with train.distribute=mirrored"):
        load_config(None, overrides=["train.distribute=mirrored", "train.loop=fit"])
    with pytest.raises(ValueError, match="does not split evenly over 3 replicas"):
        replica_batch(64, 3)
    cfg = load_config(None, overrides=["train.lr_scaling={rule: linear, reference_batch_size: 32}"])
    assert cfg.train.lr_scaling.factor(128) == 4.0
    res = _run(["train", "--dataset", "digits", "--set", "train.distribute=multi_worker"], timeout=120)
    assert res.returncode == 2 and "needs TF_CONFIG" in res.stderr


def test_a_failing_worker_fails_the_launch(tmp_path):
    res = _run(["launch", "--workers", "2", "--dataset", str(tmp_path / "missing"), "--run-dir", str(tmp_path / "r")],
               timeout=180)
    assert res.returncode == 2
    assert "[worker 0] error:" in res.stdout or "[worker 1] error:" in res.stdout


def test_free_ports_are_bindable_and_outside_the_ephemeral_range():
    from tfpilot.training.distribute import ephemeral_port_range

    low, high = ephemeral_port_range()
    ports = free_ports(4)
    assert len(set(ports)) == 4
    assert all(not low <= p <= high for p in ports), (ports, low, high)
    for p in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


def test_a_worker_whose_port_is_taken_says_which_address(tmp_path):
    ports = free_ports(2)
    workers = [f"127.0.0.1:{p}" for p in ports]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[0]))
        taken.listen()
        res = _run(["train", "--dataset", "digits", "--model", "mlp", "--set", "train.distribute=multi_worker",
                    "--set", "train.worker_timeout_s=60", "--run-dir", str(tmp_path / "r")], timeout=120,
                   TF_CONFIG=tf_config(workers, 0))
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"error: worker 0 could not listen on {workers[0]}, its address in TF_CONFIG: the port is taken" in res.stderr
    assert not (tmp_path / "r").exists()
