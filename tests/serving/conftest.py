"""Fixtures for the serving tests: a tiny trained image run, a tiny text run, and real
``tfpilot serve`` processes on loopback ports (always terminated in teardown)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tfpilot.training.distribute import free_ports

CLASSES = ("circle", "square", "triangle")
TEXT_CLASSES = ("neg", "pos")
POSITIVE = "A wonderful, superb film: the best I loved!"
NEGATIVE = "The worst and most boring plot, awful and dull."


def free_port() -> int:
    """A free port outside the ephemeral range, which other tests' connections draw from."""
    return free_ports(1)[0]


class ServerProcess:
    """A ``tfpilot serve`` subprocess on 127.0.0.1; its stdout (JSON access log) and stderr go to files.

    With ``tf_serving`` it is started with TF Serving's flags: ``--port`` (gRPC) and
    ``--rest_api_port`` (REST), both free ports.
    """

    def __init__(self, args: list[str], log_dir: Path, port: int | None = None, tf_serving: bool = False) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port() if tf_serving else None
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.stdout_path = log_dir / f"serve-{self.port}.out"
        self.stderr_path = log_dir / f"serve-{self.port}.err"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        ports = (["--port", str(self.grpc_port), "--rest_api_port", str(self.port)] if tf_serving
                 else ["--port", str(self.port)])
        cmd = [sys.executable, "-m", "tfpilot.cli.main", "serve", *args, "--host", "127.0.0.1", *ports]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)

    def wait_ready(self, timeout: float = 300.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tfpilot serve exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"tfpilot serve was not ready in {timeout}s:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def access_log(self) -> list[dict]:
        lines = self.stdout_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MLP trained for one epoch on 16x16 RGB shapes (3 classes)."""
    from tfpilot.config import load_config
    from tfpilot.testing import make_image_folder, tiny_config
    from tfpilot.training import Trainer

    root = tmp_path_factory.mktemp("serving-data")
    folder = make_image_folder(root / "shapes", classes=CLASSES, per_class=8, size=16, channels=3)
    trainer = Trainer(load_config(tiny_config(folder, root / "run"))).fit()
    return Path(trainer.run_.path)


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tfpilot's ``ngram_mlp`` text classifier trained on a tiny raw-text CSV (classes neg, pos)."""
    from tfpilot.config import load_config
    from tfpilot.testing.text import make_text_corpus, write_text_table
    from tfpilot.training import Trainer

    root = tmp_path_factory.mktemp("serving-text")
    texts, labels = make_text_corpus(160, seed=4)
    data = write_text_table(root / "reviews.csv", texts, labels, text_column="review", label_column="sentiment")
    cfg = {
        "data": {"dataset": str(data)},
        "model": {"name": "ngram_mlp", "params": {"vocab_size": 300, "hidden_units": [16], "dropout": 0.2}},
        "train": {"epochs": 6, "batch_size": 16, "optimizer": {"learning_rate": 0.01},
                  "callbacks": {"tensorboard": False, "progress": "none", "early_stopping": {"enabled": False}}},
        "output": {"run_dir": str(root / "run")},
    }
    return Path(Trainer(load_config(cfg)).fit().run_.path)


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``tfpilot serve ARGS`` (not waiting for readiness); every server is stopped at the end."""
    log_dir = tmp_path_factory.mktemp("serve-logs")
    servers: list[ServerProcess] = []

    def start(*args: str, tf_serving: bool = False) -> ServerProcess:
        server = ServerProcess([str(a) for a in args], log_dir, tf_serving=tf_serving)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server: Callable[..., ServerProcess], image_run: Path, text_run: Path) -> ServerProcess:
    """One server for the API tests: the image run as 'shapes', the text run as 'sentiment'.

    Small limits (batch 8, 16 instances, 64 KiB bodies) so the limit tests stay cheap.
    """
    return start_server(
        image_run, text_run, "--name", "shapes", "--name", "sentiment", "--max-batch", "8",
        "--batch-timeout-ms", "20", "--max-instances", "16", "--max-body-mb", "0.0625",
    ).wait_ready()


@pytest.fixture(scope="session")
def exported_run(image_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the image run with its exports: SavedModel, TFLite and ONNX."""
    import shutil

    from tfpilot.export import ExportSource, export

    run = tmp_path_factory.mktemp("exported") / "run"
    shutil.copytree(image_run, run, ignore=shutil.ignore_patterns("export", "checkpoints", "backup", "logs"))
    export(ExportSource.from_run(run), ["saved_model", "tflite", "onnx"], run / "export")
    return run


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory, exported_run: Path) -> dict[str, Path]:
    """TF Serving base paths: ``hpt`` (a TF1 graph, version 123), ``two`` (a TF2 module with two
    signatures, version 1) and ``shapes`` (tfpilot's SavedModel export of the image run, version 1)."""
    import shutil

    from tests.serving.savedmodels import tf1_half_plus_two, tf2_two_signatures

    root = tmp_path_factory.mktemp("tf-models")
    tf1_half_plus_two(root / "hpt" / "123")
    tf2_two_signatures(root / "two" / "1")
    shutil.copytree(exported_run / "export" / "saved_model", root / "shapes" / "1")
    return {"hpt": root / "hpt", "two": root / "two", "shapes": root / "shapes"}


def model_config_text(models: dict[str, Path], labels: dict[str, dict[str, int]] | None = None) -> str:
    """A text-format ModelServerConfig serving ``models`` (name -> base path) with ``labels``."""
    entries = []
    for name, path in models.items():
        extra = "".join(f' version_labels {{ key: "{k}" value: {v} }}' for k, v in (labels or {}).get(name, {}).items())
        entries.append(f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow"{extra} }}')
    return "model_config_list {\n" + "\n".join(entries) + "\n}\n"


@pytest.fixture(scope="session")
def tf_server(start_server: Callable[..., ServerProcess], tf_models: dict[str, Path],
              tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    """A server started as ``tensorflow_model_server`` would be: ``--model_config_file`` (the three
    models, label ``stable`` on ``two``), ``--enable_batching`` with a ``--batching_parameters_file``,
    gRPC on ``--port`` and REST on ``--rest_api_port``."""
    folder = tmp_path_factory.mktemp("tf-config")
    config = folder / "models.config"
    config.write_text(model_config_text(tf_models, {"two": {"stable": 1}}))
    batching = folder / "batching.config"
    batching.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000 }\n"
                        "max_enqueued_batches { value: 100 }\nnum_batch_threads { value: 1 }\n")
    return start_server("--model_config_file", config, "--enable_batching", "--batching_parameters_file", batching,
                        "--max-body-mb", "1", tf_serving=True).wait_ready()


@pytest.fixture(scope="session")
def grpc_channel(tf_server: ServerProcess) -> Iterator[object]:
    import grpc

    with grpc.insecure_channel(tf_server.grpc_target) as channel:
        yield channel


@pytest.fixture(scope="session")
def tf_client(tf_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tf_server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def predictor(image_run: Path):
    """The in-process Predictor of the served image run (the reference for the server's answers)."""
    from tfpilot.inference import load

    return load(image_run)


@pytest.fixture(scope="session")
def shape_images() -> np.ndarray:
    """Four 16x16 RGB images from the training distribution (uint8)."""
    from tfpilot.testing import make_shapes_arrays

    x, _ = make_shapes_arrays(4, num_classes=3, size=16, channels=3, seed=7)
    return x


def png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def png() -> Callable[[np.ndarray], bytes]:
    return png_bytes
