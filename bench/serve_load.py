"""Serving under load: three servers of the same model, the same requests; then a version hot swap.

The servers (one at a time, each a subprocess; uvicorn, one process unless said):

* **baseline** -- what seed 001's ``ImageClassifier`` becomes behind a web framework: FastAPI
  with a plain ``def`` endpoint (run in FastAPI's thread pool) that turns the JSON into an
  array and calls ``model.predict`` per request;
* **competent** -- a hand-written server as a careful engineer writes it without batching:
  FastAPI, an ``async def`` endpoint that reads the body, ``json.loads`` it, and calls the
  model's ``tf.function``-traced concrete function (input signature with a dynamic batch,
  traced and warmed up at start) once per request, inline -- no thread hop, no retrace;
* **competent-2w** -- the same app in 2 uvicorn worker processes (``uvicorn --workers 2``), what
  the same engineer does next on a 2-core machine: each worker loads its own model, TensorFlow
  gets ``cores / 2`` intra-op threads per worker, and the kernel spreads connections over them;
* **tfpilot** -- ``tfpilot serve RUN --name mnist --grpc-port P`` with its defaults (max batch 32,
  batch timeout 5 ms, access log on); loaded over REST and, as **tfpilot-grpc**, over TF
  Serving's gRPC ``Predict`` with ``tensorflow_serving.apis`` (same images, uint8 tensors);
* **floor** (``--servers ... floor``) -- the two protocols' own cost, with no model: uvicorn and
  gRPC's threaded server beside its event loop (as tfpilot serves them), each reading the request
  and answering a fixed, valid prediction; loaded as **floor** and **floor-grpc** by the same clients.
  What its gRPC p50 exceeds its REST p50 by is what the Python gRPC stack costs per call beyond
  HTTP/1.1, which a server's gRPC path has to save elsewhere to answer sooner than its REST path.

All answer TF Serving's ``POST /v1/models/mnist:predict`` with ``{"instances": [28x28x1 pixels]}``
bodies built from real MNIST test images. The load generator is this process: asyncio
clients (aiohttp for REST, ``grpc.aio`` for gRPC; ``--grpc-client sync``: the blocking stub, one
thread per worker) with ``C`` closed-loop workers. With ``--load-generator h2load`` it is
nghttp2's ``h2load`` instead, a load generator in C (Debian's ``nghttp2-client``), for both
protocols -- REST as ``C`` HTTP/1.1 keep-alive connections, gRPC as ``C`` streams on one HTTP/2
connection (as one channel carries them), every request the same first test image -- so the
servers are compared without two Python client libraries' own costs in the figures. h2load
checks HTTP statuses only, so each body is checked once by a Python client first, and for
tfpilot the server's own count of gRPC calls answered OK must grow by every request sent.

**Hot swap** (``--swap``): ``tfpilot serve --model_name mnist --model_base_path BASE``, as the
``tensorflow/serving`` image runs it, with BASE/1 the run's SavedModel export (a TF Serving
warm-up file inside); under load (REST, concurrency 8) a copy is moved in as BASE/2. Reported:
failed requests (target 0), how long until version 2 served and version 1 was unloaded, and
the p50/p99 of the requests sent during the switch beside those before it.

Everything is bounded: ``--requests`` per level, ``--time-limit`` seconds per level, a timeout
per request, 127.0.0.1 only; the servers are stopped at the end, whatever happens.

Usage:
    TFPILOT_DATA_DIR=../shared/datasets nice .venv/bin/python bench/serve_load.py \\
        --run /tmp/runs/mnist_cnn_serve [--servers competent tfpilot] [--swap] [--json out.json]

Targets: 0 errors; tfpilot's throughput at concurrency 32 >= 3x the competent servers' (one process
and two workers); tfpilot's p50 at concurrency 1 <= theirs; tfpilot's gRPC p50 at concurrency 1 <
its REST p50; hot swap: 0 failed requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import fastapi

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only, always
MODEL_NAME = "mnist"
SERVERS = ("baseline", "competent", "competent-2w", "tfpilot", "floor")
DEFAULT_SERVERS = ("baseline", "competent", "competent-2w", "tfpilot")
#: Worker processes of the competent-2w server.
COMPETENT_WORKERS = 2


# -- the hand-written servers ------------------------------------------------------------------
def _load_keras(run_dir: Path) -> Any:
    import keras

    import tfpilot.models.layers  # noqa: F401  (the model's preprocessing layer)

    return keras.saving.load_model(run_dir / "model.keras")


def baseline_app(run_dir: Path) -> Any:
    """FastAPI + ``model.predict`` per request, as a tutorial would serve seed 001's classifier."""
    import numpy as np
    from fastapi import FastAPI

    model = _load_keras(run_dir)
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/models/{name}:predict")
    def predict(name: str, body: dict[str, Any]) -> dict[str, Any]:
        x = np.array(body["instances"], dtype=np.uint8)
        probs = model.predict(x, verbose=0)
        return {"predictions": probs.tolist()}

    return app


def competent_app(run_dir: Path) -> Any:
    """FastAPI + the model's traced ``tf.function`` per request (no batching), written with care."""
    import numpy as np
    import tensorflow as tf
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    model = _load_keras(run_dir)
    spec = model.inputs[0]

    @tf.function(input_signature=[tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)], autograph=False)
    def serve(x: Any) -> Any:
        return model(x, training=False)

    call = serve.get_concrete_function()
    call(tf.zeros((1, *spec.shape[1:]), spec.dtype))  # warm up: the first call builds the kernels
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/models/{name}:predict")
    async def predict(request: fastapi.Request) -> JSONResponse:
        body = json.loads(await request.body())
        x = np.asarray(body["instances"], dtype=np.uint8)
        probs = call(tf.constant(x)).numpy()
        return JSONResponse({"predictions": probs.tolist()})

    return app


def competent_worker_app() -> Any:
    """The competent app in one of competent-2w's worker processes (the run in ``$SERVE_LOAD_RUN``),
    with TensorFlow's intra-op threads shared out between the workers."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(max(1, (os.cpu_count() or 1) // COMPETENT_WORKERS))
    return competent_app(Path(os.environ["SERVE_LOAD_RUN"]))


def serve_app(kind: str, run_dir: Path, port: int) -> None:
    import uvicorn

    if kind == "competent-2w":
        os.environ["SERVE_LOAD_RUN"] = str(run_dir)
        uvicorn.run("serve_load:competent_worker_app", factory=True, app_dir=str(Path(__file__).parent),
                    workers=COMPETENT_WORKERS, host=HOST, port=port, log_level="warning", access_log=False)
        return
    app = baseline_app(run_dir) if kind == "baseline" else competent_app(run_dir)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


def serve_floor(port: int, grpc_port: int) -> None:
    """The protocols alone: REST (uvicorn, a bare ASGI app) and gRPC (gRPC's threaded server, TF
    Serving's ``PredictionService``, 64 threads as tfpilot's default), each reading the request
    and answering a fixed prediction of 10 probabilities -- no model, no JSON parsing, no batching."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    import uvicorn
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    answer = json.dumps({"predictions": [[0.1] * 10]}).encode()
    meta = json.dumps({"metadata": {"signature_def": {"signature_def": {"serving_default": {
        "inputs": {"images": {}}}}}}}).encode()
    probabilities = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=bytes(40))
    probabilities.tensor_shape.dim.add(size=1)
    probabilities.tensor_shape.dim.add(size=10)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:  # read the whole body, as any server must
            message = await receive()
            more = message.get("more_body", False)
        body = meta if scope["path"].endswith("/metadata") else answer
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    class Echo(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802 -- gRPC's name
            response = predict_pb2.PredictResponse()
            response.outputs["output_0"].CopyFrom(probabilities)
            return response

    async def main() -> None:
        server = grpc.server(ThreadPoolExecutor(64), options=[("grpc.optimization_target", "latency")])  # as tfpilot's
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Echo(), server)
        server.add_insecure_port(f"{HOST}:{grpc_port}")
        server.start()
        try:
            await uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning",
                                                access_log=False)).serve()
        finally:
            server.stop(0)

    try:
        import uvloop  # uvicorn's default loop where installed, as under tfpilot serve
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


# -- processes ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, name: str, cmd: list[str], port: int, ready_path: str, log_dir: Path,
                 grpc_port: int | None = None) -> None:
        self.name, self.port, self.ready_path, self.grpc_port = name, port, ready_path, grpc_port
        self.url = f"http://{HOST}:{port}"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.log_path = log_dir / f"{name}.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 300) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} was not ready in {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


# -- the load generators -----------------------------------------------------------------------
def mnist_images(n: int = 200) -> Any:
    """``n`` MNIST test images (uint8 28x28x1)."""
    import numpy as np

    from tfpilot.data.paths import find_data_file

    path = find_data_file(["mnist.npz"])
    if path is None:
        raise FileNotFoundError("mnist.npz not found: set TFPILOT_DATA_DIR (e.g. ../shared/datasets)")
    with np.load(path) as data:
        return data["x_test"][:n, ..., None]


def request_bodies(images: Any) -> list[bytes]:
    """``{"instances": [image]}`` bodies, one per image."""
    return [json.dumps({"instances": [img.tolist()]}).encode() for img in images]


def valid_prediction(payload: bytes) -> bool:
    """10 class probabilities: tfpilot's shape (a list) or a SavedModel's (``probabilities`` output)."""
    first = json.loads(payload)["predictions"][0]
    return len(first["probabilities"] if isinstance(first, dict) else first) == 10


def summarize(latencies: list[float], errors: dict[str, int], elapsed: float, concurrency: int,
              requests: int) -> dict[str, Any]:
    latencies = sorted(latencies)
    done = len(latencies) + sum(errors.values())

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {"concurrency": concurrency, "requests": done, "ok": len(latencies), "errors": sum(errors.values()),
            "error_kinds": errors, "seconds": round(elapsed, 3),
            "throughput_rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(pct(0.50), 3), "p99_ms": round(pct(0.99), 3), "completed_all": done >= requests}


async def rest_load(url: str, bodies: list[bytes], requests: int, concurrency: int, time_limit: float,
                    trace: list[tuple[float, float, bool]] | None = None,
                    stop: asyncio.Event | None = None) -> dict[str, Any]:
    """``requests`` POSTs by ``concurrency`` closed-loop workers (each request's (start, seconds, ok)
    goes to ``trace`` when given; ``stop`` ends the run early)."""
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.monotonic() + time_limit
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while sent < requests and time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            i = sent
            sent += 1
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=bodies[i % len(bodies)],
                                        headers={"Content-Type": "application/json"}) as r:
                    payload = await r.read()
                    key = "ok" if r.status == 200 and valid_prediction(payload) else f"HTTP {r.status}"
            except Exception as exc:  # noqa: BLE001 -- counted as an error
                key = type(exc).__name__
            seconds = time.perf_counter() - t0
            if trace is not None:
                trace.append((time.monotonic() - seconds, seconds, key == "ok"))
            if key == "ok":
                latencies.append(seconds)
            else:
                errors[key] = errors.get(key, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return summarize(latencies, errors, elapsed, concurrency, requests)


def predict_requests(input_name: str, images: Any) -> list[Any]:
    """One TF Serving ``PredictRequest`` per image (a uint8 tensor of shape (1, H, W, C))."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    protos = []
    for img in images:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL_NAME
        request.inputs[input_name].CopyFrom(tf.make_tensor_proto(img[None]))
        protos.append(request)
    return protos


def grpc_sync_load(target: str, input_name: str, images: Any, requests: int, concurrency: int,
                   time_limit: float) -> dict[str, Any]:
    """The closed loop over gRPC ``Predict`` with the blocking stub, as TF Serving's example
    clients call it (``stub.Predict(request, timeout)``): ``concurrency`` threads, one channel."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    protos = predict_requests(input_name, images)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    sent = 0
    deadline = time.monotonic() + time_limit
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def worker() -> None:
            nonlocal sent
            while time.monotonic() < deadline:
                with lock:
                    if sent >= requests:
                        return
                    i = sent
                    sent += 1
                t0 = time.perf_counter()
                try:
                    response = stub.Predict(protos[i % len(protos)], timeout=60)
                    key = "ok" if len(response.outputs["output_0"].tensor_content) == 40 else "bad answer"
                except grpc.RpcError as exc:
                    key = str(exc.code())
                seconds = time.perf_counter() - t0
                with lock:
                    if key == "ok":
                        latencies.append(seconds)
                    else:
                        errors[key] = errors.get(key, 0) + 1

        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(worker) for _ in range(concurrency)]:
                future.result()
        elapsed = time.perf_counter() - t0
    return summarize(latencies, errors, elapsed, concurrency, requests)


async def grpc_load(target: str, input_name: str, images: Any, requests: int, concurrency: int,
                    time_limit: float) -> dict[str, Any]:
    """The same closed loop over TF Serving's gRPC ``Predict`` with ``grpc.aio`` stubs."""
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    protos = predict_requests(input_name, images)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.monotonic() + time_limit
    async with grpc.aio.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        async def worker() -> None:
            nonlocal sent
            while sent < requests and time.monotonic() < deadline:
                i = sent
                sent += 1
                t0 = time.perf_counter()
                try:
                    response = await stub.Predict(protos[i % len(protos)], timeout=60)
                    ok = len(response.outputs["output_0"].tensor_content) == 40  # 10 float32 probabilities
                    key = "ok" if ok else "bad answer"
                except grpc.aio.AioRpcError as exc:
                    key = str(exc.code())
                if key == "ok":
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[key] = errors.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    return summarize(latencies, errors, elapsed, concurrency, requests)


def h2load_load(url: str, body: bytes, headers: list[str], requests: int, concurrency: int,
                time_limit: float, http1: bool) -> dict[str, Any]:
    """``requests`` POSTs of ``body`` from nghttp2's ``h2load``, ``concurrency`` at a time, closed loop:
    HTTP/1.1 connections (``http1``) or streams on one HTTP/2 connection. Latencies from its
    ``--log-file`` (one line per request: start, status, microseconds)."""
    exe = shutil.which("h2load")
    if exe is None:
        sys.exit("--load-generator h2load needs nghttp2's h2load: apt-get install nghttp2-client")
    with tempfile.TemporaryDirectory(prefix="h2load-") as tmp:
        data, log = Path(tmp, "body"), Path(tmp, "requests.log")
        data.write_bytes(body)
        shape = ["--h1", "-c", str(concurrency), "-m", "1"] if http1 else ["-c", "1", "-m", str(concurrency)]
        cmd = [exe, "-n", str(requests), *shape, "-d", str(data), "--log-file", str(log),
               *(x for h in headers for x in ("-H", h)), url]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=time_limit + 60, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise RuntimeError(f"h2load failed ({done.returncode}): {done.stderr.strip() or done.stdout[-500:]}")
        finished = re.search(r"finished in ([\d.]+)(ms|s),", done.stdout)
        if finished is None:
            raise RuntimeError(f"h2load printed no 'finished in': {done.stdout[-500:]}")
        elapsed = float(finished[1]) / (1000 if finished[2] == "ms" else 1)
        latencies: list[float] = []
        errors: dict[str, int] = {}
        for line in log.read_text().splitlines():
            _, status, micros = line.split("\t")
            if status == "200":
                latencies.append(int(micros) / 1e6)
            else:
                errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
    missing = requests - len(latencies) - sum(errors.values())
    if missing:
        errors["no answer"] = missing
    row = summarize(latencies, errors, elapsed, concurrency, requests)
    row["client_cpu_s"] = round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 2)
    return row


def grpc_ok_count(server: Server) -> float | None:
    """gRPC ``Predict`` calls tfpilot answered OK so far, from its /metrics (None for the others)."""
    import urllib.request

    if not server.name.startswith("tfpilot"):
        return None
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    found = re.search(r'^tfpilot_http_requests_total\{method="GRPC",route="/tensorflow.serving.PredictionService/'
                      r'Predict",status="OK"\} (\S+)$', text, re.M)
    return float(found[1]) if found else 0.0


def check_once(target: Target) -> None:
    """One request of the body h2load sends, through a Python client, whose answer must be valid."""
    import urllib.request

    if target.protocol == "grpc":
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        with grpc.insecure_channel(f"{HOST}:{target.server.grpc_port}") as channel:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
                predict_requests(target.input, target.images[:1])[0], timeout=60)
        ok = len(response.outputs["output_0"].tensor_content) == 40
    else:
        request = urllib.request.Request(f"{target.server.url}/v1/models/{MODEL_NAME}:predict", target.bodies[0],
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            ok = r.status == 200 and valid_prediction(r.read())
    if not ok:
        raise RuntimeError(f"{target.name} did not answer the h2load body with a valid prediction")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and its live descendants (Linux /proc): a
    multi-worker server's workers count too."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(cpu_seconds(int(child)) for child in children)
    return total


def batch_stats(server: Server) -> tuple[float, float]:
    """``(model calls, instances)`` so far, from tfpilot's /metrics (zeros for the others)."""
    import urllib.request

    if server.name != "tfpilot":
        return 0.0, 0.0
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    found = dict(re.findall(r'^tfpilot_batch_size_(count|sum)\{model="%s"\} (\S+)$' % MODEL_NAME, text, re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def input_name(server: Server) -> str:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/v1/models/{MODEL_NAME}/metadata", timeout=10) as r:
        meta = json.loads(r.read())
    return next(iter(meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]))


class Target:
    """One server and protocol under load (tfpilot is loaded over REST and over gRPC)."""

    def __init__(self, server: Server, protocol: str, images: Any, bodies: list[bytes],
                 grpc_client: str = "aio", generator: str = "python") -> None:
        self.server, self.protocol, self.images, self.bodies = server, protocol, images, bodies
        self.grpc_client = grpc_client
        self.generator = generator
        self.name = server.name + ("-grpc" if protocol == "grpc" else "")
        self.input = input_name(server) if protocol == "grpc" else ""
        if generator == "h2load":
            check_once(self)

    def load(self, requests: int, concurrency: int, time_limit: float) -> dict[str, Any]:
        if self.generator == "h2load":
            return self.h2load(requests, concurrency, time_limit)
        if self.protocol == "grpc":
            target = f"{HOST}:{self.server.grpc_port}"
            if self.grpc_client == "sync":
                return grpc_sync_load(target, self.input, self.images, requests, concurrency, time_limit)
            return asyncio.run(grpc_load(target, self.input, self.images, requests, concurrency, time_limit))
        url = f"{self.server.url}/v1/models/{MODEL_NAME}:predict"
        return asyncio.run(rest_load(url, self.bodies, requests, concurrency, time_limit))

    def h2load(self, requests: int, concurrency: int, time_limit: float) -> dict[str, Any]:
        """The same level from h2load; for tfpilot's gRPC, every call must be counted OK by the server."""
        if self.protocol == "rest":
            url = f"{self.server.url}/v1/models/{MODEL_NAME}:predict"
            return h2load_load(url, self.bodies[0], ["content-type: application/json"], requests, concurrency,
                               time_limit, http1=True)
        message = predict_requests(self.input, self.images[:1])[0].SerializeToString()
        framed = b"\0" + len(message).to_bytes(4, "big") + message  # gRPC's length-prefixed message
        url = f"http://{HOST}:{self.server.grpc_port}/tensorflow.serving.PredictionService/Predict"
        ok_before = grpc_ok_count(self.server)
        row = h2load_load(url, framed, ["content-type: application/grpc", "te: trailers"], requests, concurrency,
                          time_limit, http1=False)
        ok_after = grpc_ok_count(self.server)
        if ok_before is not None and ok_after is not None and ok_after - ok_before < row["ok"]:
            bad = int(row["ok"] - (ok_after - ok_before))  # HTTP 200 but a gRPC status other than OK
            row["errors"] += bad
            row["error_kinds"]["grpc status not OK"] = bad
        return row

    def measure(self, requests: int, concurrency: int, time_limit: float) -> dict[str, Any]:
        """One level, with the server's and this client's CPU time and (tfpilot) the mean batch."""
        server_cpu, client_cpu = cpu_seconds(self.server.proc.pid), time.process_time()
        calls, instances = batch_stats(self.server)
        row = self.load(requests, concurrency, time_limit)
        calls, instances = (x1 - x0 for x0, x1 in zip((calls, instances), batch_stats(self.server)))
        row["mean_batch"] = round(instances / calls, 2) if calls else None
        row["server_cpu_s"] = round(cpu_seconds(self.server.proc.pid) - server_cpu, 2)
        row.setdefault("client_cpu_s", round(time.process_time() - client_cpu, 2))  # h2load's own when it ran
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        row["server"] = self.name
        return row


def run_rounds(targets: list[Target], args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every level ``--rounds`` times, the targets taking turns (their order rotating each round), so a
    change in the machine's background load falls on all of them alike. ``(median rows, every row)``."""
    for target in targets:
        target.load(args.warmup, 4, args.time_limit)  # warm-up, not counted
    every: list[dict[str, Any]] = []
    medians: list[dict[str, Any]] = []
    for c in args.concurrency:
        runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        for r in range(args.rounds):
            order = targets[r % len(targets):] + targets[: r % len(targets)]
            for target in order:
                row = target.measure(args.requests, c, args.time_limit)
                row["round"] = r + 1
                runs[target.name].append(row)
                every.append(row)
                print(json.dumps(row), flush=True)
        for target in targets:
            rows = sorted(runs[target.name], key=lambda row: row["throughput_rps"])
            median = dict(rows[len(rows) // 2])
            median["rounds"] = len(rows)
            median["throughput_range"] = [rows[0]["throughput_rps"], rows[-1]["throughput_rps"]]
            median["p50_range"] = [min(x["p50_ms"] for x in rows), max(x["p50_ms"] for x in rows)]
            medians.append(median)
    return medians, every


# -- the hot swap ------------------------------------------------------------------------------
def version_folder(run: Path, target: Path, images: Any) -> Path:
    """The run's SavedModel export as a TF Serving version folder, with a warm-up file."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    from tfpilot.serving.warmup import write_warmup_file

    export = run / "export" / "saved_model"
    if not export.is_dir():
        from tfpilot.export import export as export_run

        export_run(run, "saved_model")
    shutil.copytree(export, target)
    logs = []
    for img in images[:4]:
        request = predict_pb2.PredictRequest()
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(img[None]))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    write_warmup_file(target, logs)
    return target


async def swap_under_load(server: Server, base: Path, staging: Path, bodies: list[bytes],
                          args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    url = f"{server.url}/v1/models/{MODEL_NAME}:predict"
    trace: list[tuple[float, float, bool]] = []
    marks: dict[str, float] = {}
    stop = asyncio.Event()
    load = asyncio.create_task(rest_load(url, bodies, 10**9, 8, args.time_limit, trace, stop))
    await asyncio.sleep(args.swap_after)
    marks["dropped"] = time.monotonic()
    staging.rename(base / "2")  # a version appears whole, as TF Serving's docs recommend
    async with aiohttp.ClientSession() as session:
        while not load.done() and "v1_unloaded" not in marks:
            async with session.get(f"{server.url}/v1/models/{MODEL_NAME}") as r:
                states = {s["version"]: s["state"] for s in (await r.json())["model_version_status"]}
            if states.get("2") == "AVAILABLE":
                marks.setdefault("v2_available", time.monotonic())
            if states.get("1") == "END":
                marks["v1_unloaded"] = time.monotonic()
            await asyncio.sleep(0.02)
    await asyncio.sleep(args.swap_tail)  # and on, under the new version
    stop.set()
    total = await load
    end = marks.get("v1_unloaded", marks["dropped"]) + 1.0
    during = sorted(s for t, s, ok in trace if marks["dropped"] <= t <= end and ok)
    before = sorted(s for t, s, ok in trace if t < marks["dropped"] and ok)

    def pct(xs: list[float], q: float) -> float:
        return round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 2) if xs else float("nan")

    return {"requests": total["requests"], "failed": total["errors"], "error_kinds": total["error_kinds"],
            "v2_served_after_s": round(marks.get("v2_available", float("nan")) - marks["dropped"], 2),
            "v1_unloaded_after_s": round(marks.get("v1_unloaded", float("nan")) - marks["dropped"], 2),
            "p50_before_ms": pct(before, 0.5), "p99_before_ms": pct(before, 0.99),
            "requests_during_switch": len(during), "p50_during_switch_ms": pct(during, 0.5),
            "p99_during_switch_ms": pct(during, 0.99), "max_during_switch_ms": round(1000 * during[-1], 2) if during
            else float("nan"), "poll_s": args.swap_poll}


def run_swap(args: argparse.Namespace, images: Any, bodies: list[bytes], tmp: Path) -> dict[str, Any]:
    base = tmp / "base" / MODEL_NAME
    version_folder(args.run, base / "1", images)
    staging = version_folder(args.run, tmp / "staging", images)
    port, grpc_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "tfpilot.cli.main", "serve", "--model_name", MODEL_NAME, "--model_base_path",
           str(base), "--host", HOST, "--port", str(grpc_port), "--rest_api_port", str(port),
           "--file_system_poll_wait_seconds", str(args.swap_poll)]
    server = Server("tfpilot-swap", cmd, port, "/readyz", tmp, grpc_port)
    try:
        server.wait_ready()
        asyncio.run(rest_load(f"{server.url}/v1/models/{MODEL_NAME}:predict", bodies, args.warmup, 4,
                              args.time_limit))
        result = asyncio.run(swap_under_load(server, base, staging, bodies, args))
    finally:
        server.stop()

    found = re.search(r"(\d+) objects collected after the unload in (\d+) ms", server.log_path.read_text())
    result["gc_after_unload_ms"] = int(found[2]) if found else None
    print(json.dumps({"hot_swap": result}), flush=True)
    return result


# -- the report --------------------------------------------------------------------------------
def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["server"], r["concurrency"]): r for r in rows}
    out: dict[str, Any] = {}
    for other in ("baseline", "competent", "competent-2w"):
        if (other, 1) in by and ("tfpilot", 1) in by:
            out[f"p50_c1_{other}_over_tfpilot"] = round(by[other, 1]["p50_ms"] / by["tfpilot", 1]["p50_ms"], 2)
        for c in sorted({r["concurrency"] for r in rows}):
            if (other, c) in by and ("tfpilot", c) in by and by[other, c]["throughput_rps"]:
                out[f"throughput_c{c}_tfpilot_over_{other}"] = round(
                    by["tfpilot", c]["throughput_rps"] / by[other, c]["throughput_rps"], 2)
    if ("tfpilot-grpc", 1) in by and ("tfpilot", 1) in by:
        out["p50_c1_grpc_ms"], out["p50_c1_rest_ms"] = by["tfpilot-grpc", 1]["p50_ms"], by["tfpilot", 1]["p50_ms"]
    if ("floor-grpc", 1) in by and ("floor", 1) in by:  # the protocols alone
        out["floor_p50_c1_grpc_ms"], out["floor_p50_c1_rest_ms"] = by["floor-grpc", 1]["p50_ms"], by["floor", 1]["p50_ms"]
    out["errors_total"] = sum(r["errors"] for r in rows)
    return out


def round_ratios(every: list[dict[str, Any]]) -> dict[str, list[float]]:
    """The c32 throughput ratio and c1 p50 ratio of each round (tfpilot vs each competent server)."""
    by = {(r["server"], r["concurrency"], r["round"]): r for r in every}
    out: dict[str, list[float]] = {"throughput_c32_tfpilot_over_competent": [], "p50_c1_competent_over_tfpilot": [],
                                   "throughput_c32_tfpilot_over_competent-2w": [],
                                   "p50_c1_competent-2w_over_tfpilot": [],
                                   "p50_c1_rest_over_grpc": [], "floor_p50_c1_rest_over_grpc": []}
    for (server, c, rnd), row in by.items():
        if server == "floor" and c == 1 and ("floor-grpc", c, rnd) in by:
            out["floor_p50_c1_rest_over_grpc"].append(round(row["p50_ms"] / by["floor-grpc", c, rnd]["p50_ms"], 2))
        if server != "tfpilot":
            continue
        for name in ("competent", "competent-2w"):
            other = by.get((name, c, rnd))
            if c == 32 and other:
                out[f"throughput_c32_tfpilot_over_{name}"].append(
                    round(row["throughput_rps"] / other["throughput_rps"], 2))
            if c == 1 and other:
                out[f"p50_c1_{name}_over_tfpilot"].append(round(other["p50_ms"] / row["p50_ms"], 2))
        grpc = by.get(("tfpilot-grpc", c, rnd))
        if c == 1 and grpc:
            out["p50_c1_rest_over_grpc"].append(round(row["p50_ms"] / grpc["p50_ms"], 2))
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| server | concurrency | requests | errors | throughput (req/s) | (rounds' range) | p50 (ms) "
             "| (rounds' range) | p99 (ms) | mean batch | server CPU s | client CPU s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lo, hi = r.get("throughput_range", [r["throughput_rps"]] * 2)
        p_lo, p_hi = r.get("p50_range", [r["p50_ms"]] * 2)
        lines.append(f"| {r['server']} | {r['concurrency']} | {r['requests']} | {r['errors']} | "
                     f"{r['throughput_rps']:.1f} | {lo:.0f}-{hi:.0f} | {r['p50_ms']:.2f} | {p_lo:.2f}-{p_hi:.2f} | "
                     f"{r['p99_ms']:.2f} | {r['mean_batch'] or '-'} | {r['server_cpu_s']:.1f} | "
                     f"{r['client_cpu_s']:.1f} |")
    return "\n".join(lines)


def start_server(name: str, args: argparse.Namespace, tmp: Path) -> Server:
    port = free_port()
    if name in ("baseline", "competent", "competent-2w"):
        cmd = [sys.executable, __file__, "--run", str(args.run), "--serve-app", name, str(port)]
        return Server(name, cmd, port, "/healthz", tmp)
    grpc_port = free_port()
    if name == "floor":
        cmd = [sys.executable, __file__, "--serve-app", name, str(port), str(grpc_port)]
        return Server(name, cmd, port, "/readyz", tmp, grpc_port)
    cmd = [sys.executable, "-m", "tfpilot.cli.main", "serve", str(args.run), "--name", MODEL_NAME,
           "--host", HOST, "--port", str(port), "--grpc-port", str(grpc_port)]
    return Server(name, cmd, port, "/readyz", tmp, grpc_port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=Path("/tmp/runs/mnist_cnn_serve"), help="an MNIST run directory")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per level, at most")
    parser.add_argument("--warmup", type=int, default=100, help="uncounted requests before the levels")
    parser.add_argument("--rounds", type=int, default=1, help="times each level runs, the servers taking turns "
                        "(the tables show the median round)")
    parser.add_argument("--servers", nargs="*", default=list(DEFAULT_SERVERS), choices=SERVERS,
                        help="floor: the protocols' own cost, no model (not run unless named)")
    parser.add_argument("--no-grpc", action="store_true", help="skip tfpilot's gRPC levels")
    parser.add_argument("--grpc-client", choices=("aio", "sync"), default="aio",
                        help="gRPC load: grpc.aio stubs, or the blocking stub in one thread per worker (as "
                             "TF Serving's example clients call it)")
    parser.add_argument("--load-generator", choices=("python", "h2load"), default="python",
                        help="python: aiohttp and grpc clients in this process; h2load: nghttp2's h2load (C) "
                             "for both protocols")
    parser.add_argument("--swap", action="store_true", help="also run the hot-swap scenario")
    parser.add_argument("--swap-tail", type=float, default=3.0, help="seconds of load after version 1 is unloaded")
    parser.add_argument("--swap-after", type=float, default=3.0, help="seconds of load before version 2 appears")
    parser.add_argument("--swap-poll", type=float, default=1.0, help="--file_system_poll_wait_seconds")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-app", nargs="+", metavar="KIND PORT [GRPC_PORT]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        kind, *ports = args.serve_app
        if kind == "floor":
            serve_floor(int(ports[0]), int(ports[1]))
        else:
            serve_app(kind, args.run, int(ports[0]))
        return
    if not (args.run / "model.keras").is_file():
        sys.exit(f"{args.run} has no model.keras: train one first (see docs/benchmarks.md)")

    images = mnist_images()
    bodies = request_bodies(images)
    rows: list[dict[str, Any]] = []
    swap: dict[str, Any] | None = None
    every: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        servers: list[Server] = []
        try:
            for name in args.servers:  # all up at once (an idle server costs nothing)
                servers.append(start_server(name, args, Path(tmp)))
                servers[-1].wait_ready()
            targets = [Target(s, "rest", images, bodies, generator=args.load_generator) for s in servers]
            targets += [Target(s, "grpc", images, bodies, args.grpc_client, args.load_generator) for s in servers
                        if s.name in ("tfpilot", "floor") and not args.no_grpc]
            if targets:
                rows, every = run_rounds(targets, args)
        finally:
            for server in servers:
                server.stop()
        if args.swap:
            swap = run_swap(args, images, bodies, Path(tmp))
    summary = {"rows": rows, "every_round": every, "ratios": ratios(rows), "round_ratios": round_ratios(every),
               "hot_swap": swap,
               "cpus": os.cpu_count(), "load_avg_end": os.getloadavg()}
    print(markdown(rows))
    print(json.dumps({"ratios": summary["ratios"], "round_ratios": summary["round_ratios"], "hot_swap": swap},
                     indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
