"""Serving under load: a naive ``model.predict`` server vs ``tfpilot serve``, same model, same requests.

The naive baseline is what seed 001's ``ImageClassifier`` becomes when put behind a web
framework: FastAPI (uvicorn, one process) with a plain ``def`` endpoint -- so FastAPI runs it
in its thread pool -- that turns the JSON into an array and calls ``model.predict`` per
request. ``tfpilot serve`` gets the same run directory with its defaults (max batch 32,
batch timeout 5 ms, access log on). Both answer TF Serving's ``POST /v1/models/NAME:predict``
with ``{"instances": [28x28x1 pixels]}`` bodies built from real MNIST test images.

The load generator is this process: one asyncio/aiohttp client with ``C`` concurrent
workers (closed loop: each sends its next request when the previous answer arrives), so it
costs little CPU; the servers run one at a time as subprocesses. Everything is bounded:
``--requests`` per level (default 2,000), ``--time-limit`` seconds per level, a timeout per
request, 127.0.0.1 only; the servers are stopped at the end, whatever happens.

Usage:
    TFPILOT_DATA_DIR=../shared/datasets nice .venv/bin/python bench/serve_load.py \\
        --run /tmp/runs/mnist_cnn_serve [--requests 2000] [--concurrency 1 8 32] [--json out.json]

Targets: 0 errors; tfpilot's p50 at concurrency 1 <= 1/20 of the baseline's; tfpilot's
throughput at concurrency 32 >= 5x the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # loopback only, always
MODEL_NAME = "mnist"


# -- the naive baseline server ---------------------------------------------------------------
def baseline_app(run_dir: Path) -> Any:
    """FastAPI + ``model.predict`` per request, as a tutorial would serve seed 001's classifier."""
    import keras
    import numpy as np
    from fastapi import FastAPI

    import tfpilot.models.layers  # noqa: F401  (the model's preprocessing layer)

    model = keras.saving.load_model(run_dir / "model.keras")
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


def serve_baseline(run_dir: Path, port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(run_dir), host=HOST, port=port, log_level="warning", access_log=False)


# -- processes ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A server subprocess; stopped (SIGTERM, then SIGKILL) on exit."""

    def __init__(self, name: str, cmd: list[str], port: int, ready_path: str, log_dir: Path) -> None:
        self.name, self.port, self.ready_path = name, port, ready_path
        self.url = f"http://{HOST}:{port}"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.log = (log_dir / f"{name}.log").open("wb")
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


# -- the load generator ------------------------------------------------------------------------
def request_bodies(n: int = 200) -> list[bytes]:
    """``{"instances": [image]}`` bodies of ``n`` MNIST test images (28x28x1 uint8 pixels)."""
    import numpy as np

    from tfpilot.data.paths import find_data_file

    path = find_data_file(["mnist.npz"])
    if path is None:
        raise FileNotFoundError("mnist.npz not found: set TFPILOT_DATA_DIR (e.g. ../shared/datasets)")
    with np.load(path) as data:
        images = data["x_test"][:n]
    return [json.dumps({"instances": [img[..., None].tolist()]}).encode() for img in images]


async def load(url: str, bodies: list[bytes], requests: int, concurrency: int, time_limit: float) -> dict[str, Any]:
    """``requests`` POSTs by ``concurrency`` closed-loop workers; latencies, errors, throughput."""
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = time.monotonic() + time_limit
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while sent < requests and time.monotonic() < deadline:
            i = sent
            sent += 1
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=bodies[i % len(bodies)],
                                        headers={"Content-Type": "application/json"}) as r:
                    payload = await r.read()
                    ok = r.status == 200 and len(json.loads(payload)["predictions"][0]) == 10
                    key = "ok" if ok else f"HTTP {r.status}"
            except Exception as exc:  # noqa: BLE001 -- counted as an error
                key = type(exc).__name__
            if key == "ok":
                latencies.append(time.perf_counter() - t0)
            else:
                errors[key] = errors.get(key, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    done = len(latencies) + sum(errors.values())

    def pct(q: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {"concurrency": concurrency, "requests": done, "ok": len(latencies), "errors": sum(errors.values()),
            "error_kinds": errors, "seconds": round(elapsed, 3), "throughput_rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(pct(0.50), 3), "p99_ms": round(pct(0.99), 3),
            "completed_all": done >= requests}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_stats(server: Server) -> tuple[float, float]:
    """``(model calls, instances)`` so far, from tfpilot's /metrics (zeros for the baseline)."""
    import re
    import urllib.request

    if server.name != "tfpilot":
        return 0.0, 0.0
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    found = dict(re.findall(r'^tfpilot_batch_size_(count|sum)\{model="%s"\} (\S+)$' % MODEL_NAME, text, re.M))
    return float(found.get("count", 0)), float(found.get("sum", 0))


def run_levels(server: Server, bodies: list[bytes], args: argparse.Namespace) -> list[dict[str, Any]]:
    url = f"{server.url}/v1/models/{MODEL_NAME}:predict"
    asyncio.run(load(url, bodies, args.warmup, 4, args.time_limit))  # warm-up, not counted
    rows = []
    for c in args.concurrency:
        server_cpu, client_cpu = cpu_seconds(server.proc.pid), time.process_time()
        calls, instances = batch_stats(server)
        row = asyncio.run(load(url, bodies, args.requests, c, args.time_limit))
        calls, instances = (x1 - x0 for x0, x1 in zip((calls, instances), batch_stats(server)))
        row["mean_batch"] = round(instances / calls, 2) if calls else None
        row["server_cpu_s"] = round(cpu_seconds(server.proc.pid) - server_cpu, 2)
        row["client_cpu_s"] = round(time.process_time() - client_cpu, 2)
        row["load_avg_1m"] = round(os.getloadavg()[0], 2)
        row["server"] = server.name
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def ratios(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["server"], r["concurrency"]): r for r in rows}
    out: dict[str, Any] = {}
    if ("baseline", 1) in by and ("tfpilot", 1) in by:
        out["p50_c1_baseline_over_tfpilot"] = round(by["baseline", 1]["p50_ms"] / by["tfpilot", 1]["p50_ms"], 1)
    for c in sorted({r["concurrency"] for r in rows}):
        if ("baseline", c) in by and ("tfpilot", c) in by:
            out[f"throughput_c{c}_tfpilot_over_baseline"] = round(
                by["tfpilot", c]["throughput_rps"] / by["baseline", c]["throughput_rps"], 1)
    out["errors_total"] = sum(r["errors"] for r in rows)
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| server | concurrency | requests | errors | throughput (req/s) | p50 (ms) | p99 (ms) "
             "| mean batch | server CPU s | client CPU s | wall s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['server']} | {r['concurrency']} | {r['requests']} | {r['errors']} | "
                     f"{r['throughput_rps']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['mean_batch'] or '-'} | {r['server_cpu_s']:.1f} | {r['client_cpu_s']:.1f} | "
                     f"{r['seconds']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=Path("/tmp/runs/mnist_cnn_serve"), help="an MNIST run directory")
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds per level, at most")
    parser.add_argument("--warmup", type=int, default=100, help="uncounted requests before the levels")
    parser.add_argument("--servers", nargs="+", default=["baseline", "tfpilot"], choices=["baseline", "tfpilot"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.run, args.serve_baseline)
        return
    if not (args.run / "model.keras").is_file():
        sys.exit(f"{args.run} has no model.keras: train one first (see the module docstring)")

    bodies = request_bodies()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        for name in args.servers:
            port = free_port()
            if name == "baseline":
                cmd = [sys.executable, __file__, "--run", str(args.run), "--serve-baseline", str(port)]
                server = Server(name, cmd, port, "/healthz", Path(tmp))
            else:
                cmd = [sys.executable, "-m", "tfpilot.cli.main", "serve", str(args.run), "--name", MODEL_NAME,
                       "--host", HOST, "--port", str(port)]
                server = Server(name, cmd, port, "/readyz", Path(tmp))
            try:
                server.wait_ready()
                rows += run_levels(server, bodies, args)
            finally:
                server.stop()
    summary = {"rows": rows, "ratios": ratios(rows), "cpus": os.cpu_count(), "load_avg_end": os.getloadavg()}
    print(markdown(rows))
    print(json.dumps(summary["ratios"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
