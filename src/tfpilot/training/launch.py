"""``tfpilot launch``: N local worker processes of one multi-worker run.

Each worker is ``tfpilot train ...`` (or ``tfpilot resume RUN``) with its own ``TF_CONFIG``
naming every worker on a free 127.0.0.1 port; the workers' output is streamed with a
``[worker i]`` prefix. When one worker fails, the others (which would wait for it in the next
collective forever) are stopped, and the launch exits with the failed worker's status.

This is the single-host multi-process case and the test harness; on several hosts, the
cluster tooling (Kubeflow's TFJob, a job script) sets ``TF_CONFIG`` on each host and runs
``tfpilot train`` there (see docs/distributed.md).

Example:
    >>> launch(["configs/mnist_cnn.yaml", "--epochs", "1"], workers=2)  # doctest: +SKIP
    0
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

from tfpilot.errors import UserError
from tfpilot.training.distribute import free_ports, tf_config

#: Seconds the other workers get to stop on SIGTERM before they are killed.
GRACE_S = 10.0


def worker_command(command: str, args: Sequence[str]) -> list[str]:
    """The argv of one worker: ``tfpilot train ARGS --set train.distribute=multi_worker``,
    or ``tfpilot resume RUN`` (a resumed run keeps its recorded config)."""
    argv = [sys.executable, "-m", "tfpilot.cli.main", command, *args]
    if command == "train":
        argv += ["--set", "train.distribute=multi_worker"]
    return argv


def _stream(source: IO[str], prefix: str, sink: IO[str], lock: threading.Lock) -> None:
    for line in source:
        with lock:
            sink.write(f"{prefix}{line}")
            sink.flush()


def launch(
    args: Sequence[str],
    workers: int,
    *,
    command: str = "train",
    threads: int | None = None,
    host: str = "127.0.0.1",
    sink: IO[str] | None = None,
) -> int:
    """Run ``workers`` processes of one multi-worker run; return 0 if all succeeded, else
    the first failing worker's exit status.

    Args:
        args: the arguments of ``tfpilot train`` (or the run directory for ``resume``).
        workers: how many worker processes (>= 2).
        command: "train" or "resume".
        threads: intra-op and inter-op threads per worker (None: TensorFlow's default).
        host: the address the workers listen on.
        sink: where the prefixed output goes (default: stdout).
    """
    if workers < 2:
        raise UserError(f"--workers must be at least 2 (got {workers}); for one process run `tfpilot {command}`")
    if command not in ("train", "resume"):
        raise UserError(f"tfpilot launch runs 'train' or 'resume', not {command!r}")
    sink = sink or sys.stdout
    addresses = [f"{host}:{p}" for p in free_ports(workers, host)]
    lock = threading.Lock()
    procs: list[subprocess.Popen[str]] = []
    pumps: list[threading.Thread] = []
    for i in range(workers):
        env = {**os.environ, "TF_CONFIG": tf_config(addresses, i), "PYTHONUNBUFFERED": "1"}
        if threads:
            env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads),
                       OMP_NUM_THREADS=str(threads))
        proc = subprocess.Popen(worker_command(command, args), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        procs.append(proc)
        pump = threading.Thread(target=_stream, args=(proc.stdout, f"[worker {i}] ", sink, lock), daemon=True)
        pump.start()
        pumps.append(pump)
    status = _wait(procs, sink, lock)
    for pump in pumps:
        pump.join(timeout=5)
    return status


def _wait(procs: list[subprocess.Popen[str]], sink: IO[str], lock: threading.Lock) -> int:
    """Wait for every worker; on the first failure stop the rest and return its status."""
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                with lock:
                    sink.write(f"[launch] worker {i} exited with status {code}; stopping the other workers\n")
                _stop(procs)
                return code
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        _stop(procs)
        return 130


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
