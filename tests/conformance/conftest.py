"""Conformance with TF Serving: its test models, built as it builds them, and real ``tfpilot serve``
processes started with ``tensorflow_model_server``'s flags.

One server (``tf_server``) serves every model of :func:`write_model_config` to the REST, gRPC and
MNIST modules; the config module starts its own. Every process is stopped in teardown.
"""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.savedmodels import half_plus_n, tf1_strings_and_dtypes
from tfpilot.training.distribute import free_ports
# Triton's side: one Triton-style server for the triton/oip modules (tests/conformance/triton_models.py)
from tests.conformance.triton_models import triton_repository, triton_server  # noqa: F401,E402

MNIST_SCRIPTS = Path(__file__).parent / "tf_serving_mnist"
#: Training images written for the MNIST tutorial (its reader keeps the first 5,000 for validation).
MNIST_TRAIN = 15_000


class TFServer:
    """``tfpilot serve`` with TF Serving's flags: gRPC on ``--port``, REST on ``--rest_api_port``.

    Args:
        args: the other flags (``--model_config_file ...``, ``--model_name ... --model_base_path ...``).
        log_dir: where its stdout and stderr go.
    """

    def __init__(self, args: list[str], log_dir: Path) -> None:
        self.grpc_port, self.rest_port = free_ports(2)
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.url = f"http://127.0.0.1:{self.rest_port}"
        self.stderr_path = log_dir / f"serve-{self.rest_port}.err"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "tfpilot.cli.main", "serve", *args, "--host", "127.0.0.1",
               "--port", str(self.grpc_port), "--rest_api_port", str(self.rest_port), "--no-access-log"]
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def listening(self) -> bool:
        """Whether the REST port accepts connections (any answer counts)."""
        try:
            httpx.get(f"{self.url}/v1/models/none", timeout=2)
        except httpx.TransportError:
            return False
        return True

    def wait_listening(self, timeout: float = 300.0) -> TFServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tfpilot serve exited with {self.proc.returncode}:\n{self.stderr()[-4000:]}")
            if self.listening():
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"tfpilot serve did not listen in {timeout}s:\n{self.stderr()[-4000:]}")

    def wait_log(self, text: str, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged:\n{self.stderr()[-4000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def model_config_text(models: dict[str, Path], extra: dict[str, str] | None = None) -> str:
    """A text-format ``ModelServerConfig`` (``extra``: more fields of a model's ``config``)."""
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" '
        f'{(extra or {}).get(name, "")} }}\n' for name, path in models.items())
    return f"model_config_list {{\n{entries}}}\n"


def write_mnist_idx(work_dir: Path, npz: Path, n_train: int = MNIST_TRAIN) -> Path:
    """The four MNIST idx ``.gz`` files TF Serving's ``mnist_input_data.py`` reads, from ``mnist.npz``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    data = np.load(npz)

    def write(name: str, magic: int, array: np.ndarray) -> None:
        header = struct.pack(">II", magic, len(array)) + b"".join(struct.pack(">I", d) for d in array.shape[1:])
        with gzip.open(work_dir / name, "wb", compresslevel=1) as f:
            f.write(header + array.astype(np.uint8).tobytes())

    write("train-images-idx3-ubyte.gz", 2051, data["x_train"][:n_train])
    write("train-labels-idx1-ubyte.gz", 2049, data["y_train"][:n_train])
    write("t10k-images-idx3-ubyte.gz", 2051, data["x_test"])
    write("t10k-labels-idx1-ubyte.gz", 2049, data["y_test"])
    return work_dir


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Base paths of TF Serving's test models: ``half_plus_two`` and ``half_plus_three`` (version
    00000123 each, as in its testdata), ``two_versions`` (123: half_plus_two, 124: half_plus_three),
    ``strings`` (version 1 of :func:`tf1_strings_and_dtypes`); ``mnist`` (empty: see
    :func:`export_mnist`) and ``mnist_work`` (the MNIST files TF Serving's tutorial reads)."""
    root = tmp_path_factory.mktemp("tf_models")
    half_plus_n(root / "half_plus_two" / "00000123", b=2.0)
    half_plus_n(root / "half_plus_three" / "00000123", b=3.0)
    shutil.copytree(root / "half_plus_two" / "00000123", root / "two_versions" / "123")
    shutil.copytree(root / "half_plus_three" / "00000123", root / "two_versions" / "124")
    tf1_strings_and_dtypes(root / "strings" / "1")
    (root / "mnist").mkdir()
    data_dir = Path(os.environ.get("TFPILOT_DATA_DIR", Path(__file__).parents[2] / "../shared/datasets"))
    write_mnist_idx(root / "mnist_work", data_dir / "mnist.npz")
    return {name: root / name for name in ("half_plus_two", "half_plus_three", "two_versions", "strings",
                                           "mnist", "mnist_work")}


def export_mnist(models: dict[str, Path]) -> subprocess.Popen:
    """Start TF Serving's ``mnist_saved_model.py`` (300 training steps): it writes version 1 beside
    the base path, which :func:`publish_mnist` then moves in whole."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, "mnist_saved_model.py", "--training_iteration=300", f"--work_dir={models['mnist_work']}",
         str(models["mnist"].parent / "mnist_export")], cwd=MNIST_SCRIPTS, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)


def publish_mnist(export: subprocess.Popen, models: dict[str, Path]) -> None:
    out, _ = export.communicate(timeout=600)
    assert export.returncode == 0, out.decode(errors="replace")[-3000:]
    (models["mnist"].parent / "mnist_export" / "1").rename(models["mnist"] / "1")


@pytest.fixture(scope="session")
def tf_server(tf_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TFServer]:
    """One ``tfpilot serve --model_config_file ... --monitoring_config_file ...`` for the REST, gRPC and
    MNIST modules: ``default`` (half_plus_two), ``half_plus_three``, ``two_versions`` (every version,
    labels ``stable`` -> 123 and ``canary`` -> 124), ``strings`` and ``mnist``. It starts while the
    MNIST model is still being exported, and waits for it, as TF Serving waits for a first version."""
    folder = tmp_path_factory.mktemp("tf_server")
    config = folder / "models.config"
    config.write_text(model_config_text(
        {"default": tf_models["half_plus_two"], "half_plus_three": tf_models["half_plus_three"],
         "two_versions": tf_models["two_versions"], "strings": tf_models["strings"], "mnist": tf_models["mnist"]},
        {"two_versions": "model_version_policy { all {} } version_labels { key: 'stable' value: 123 } "
                         "version_labels { key: 'canary' value: 124 }"}))
    monitoring = folder / "monitoring.config"
    monitoring.write_text('prometheus_config: { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    export = export_mnist(tf_models)
    server = TFServer(["--model_config_file", str(config), "--monitoring_config_file", str(monitoring)], folder)
    try:
        publish_mnist(export, tf_models)
        yield server.wait_listening()
    finally:
        export.kill()
        server.stop()
