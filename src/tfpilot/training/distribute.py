"""``train.distribute``: the tf.distribute strategy a run trains under, and its cluster.

``none`` trains on the default device. ``mirrored`` replicates the model over the local
devices (every GPU; without GPUs, every logical CPU device when there are several).
``multi_worker`` is ``tf.distribute.MultiWorkerMirroredStrategy`` over the workers that
``TF_CONFIG`` names, as TensorFlow's cluster tooling (Kubeflow's TFJob, ``tfpilot launch``)
sets it. ``auto`` is ``mirrored`` when several GPUs are visible, ``none`` otherwise.

The global batch is ``train.batch_size`` whatever the strategy; each replica takes
``batch_size / replicas`` examples per step, from its worker's own share of the epoch.

Example:
    >>> cluster = Cluster.from_tf_config(
    ...     '{"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]}, "task": {"type": "worker", "index": 1}}')
    >>> cluster.num_workers, cluster.index, cluster.is_chief
    (2, 1, False)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfpilot.errors import UserError

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Cluster:
    """The workers of a multi-worker run and this process's place among them.

    Args:
        workers: ``host:port`` of every task, the chief first (TF_CONFIG's ``chief`` job,
            if any, then its ``worker`` job).
        index: this process's position in ``workers``.
    """

    workers: tuple[str, ...]
    index: int

    @classmethod
    def from_tf_config(cls, text: str) -> Cluster:
        """Parse a ``TF_CONFIG`` value; raises ValueError naming what is wrong with it."""
        try:
            spec = json.loads(text)
            jobs, task = spec["cluster"], spec["task"]
            chief = list(jobs.get("chief", []))
            workers = tuple(chief + list(jobs.get("worker", [])))
            kind, number = task["type"], int(task["index"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(
                f"TF_CONFIG is not a valid cluster spec ({exc}): it must be JSON like "
                '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": 0}}'
            ) from None
        if kind not in ("chief", "worker"):
            raise UserError(f"TF_CONFIG task type {kind!r}: tfpilot runs 'chief' and 'worker' tasks only")
        index = number if kind == "chief" else len(chief) + number
        if not 0 <= index < len(workers):
            raise UserError(f"TF_CONFIG task {kind} {number} is not in its cluster ({len(workers)} tasks)")
        return cls(workers, index)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Cluster | None:
        """The cluster of ``$TF_CONFIG``, or None when it is unset."""
        text = environ.get("TF_CONFIG", "").strip()
        return cls.from_tf_config(text) if text else None

    @property
    def num_workers(self) -> int:
        return len(self.workers)

    @property
    def is_chief(self) -> bool:
        """The chief alone writes the run directory."""
        return self.index == 0

    @property
    def peers(self) -> list[tuple[int, str]]:
        """``(index, address)`` of every other worker."""
        return [(i, a) for i, a in enumerate(self.workers) if i != self.index]


def tf_config(workers: list[str], index: int) -> str:
    """The ``TF_CONFIG`` value of worker ``index`` of a worker-only cluster."""
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}})


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range of ephemeral ports (``ip_local_port_range``): the ports it gives a
    socket bound to port 0 and every outgoing connection (Linux' default 32768-60999)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports that are free on ``host`` now, chosen outside the kernel's
    ephemeral range: the workers bind them only seconds later, and in between any other
    process's port-0 server or outgoing connection may be handed a free ephemeral port (a
    taken port stops a worker with TensorFlow's "Could not start gRPC server")."""
    low, high = ephemeral_port_range()
    candidates = list(range(20000, low)) if low > 20000 + 4 * n else list(range(high + 1, 65536))
    random.SystemRandom().shuffle(candidates)
    sockets: list[socket.socket] = []
    try:
        for port in candidates:
            s = socket.socket()
            try:
                s.bind((host, port))
            except OSError:  # in use, or in TIME_WAIT
                s.close()
                continue
            sockets.append(s)
            if len(sockets) == n:
                return [s.getsockname()[1] for s in sockets]
        raise RuntimeError(f"found only {len(sockets)} free TCP ports on {host} outside the ephemeral range "
                           f"{low}-{high}; {n} workers need {n}")
    finally:
        for s in sockets:
            s.close()


#: The watchdog process of :func:`watch_peers` (standalone: it imports nothing of tfpilot).
_WATCHDOG = r"""
import os, signal, socket, sys, time
parent, timeout, me = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
waiting = dict(p.split("=", 1) for p in sys.argv[4:])
deadline = time.monotonic() + timeout
while waiting and time.monotonic() < deadline and os.getppid() == parent:
    for index, address in list(waiting.items()):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            del waiting[index]
        except OSError:
            pass
    time.sleep(0.5)
if waiting and os.getppid() == parent:
    names = ", ".join(f"worker {i} at {a}" for i, a in sorted(waiting.items()))
    sys.stderr.write(f"error: {names} did not answer within {timeout:.0f} s. Check that every worker was started "
                     f"with the same TF_CONFIG cluster and that the address is reachable from {me}.\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)
"""


def watch_peers(cluster: Cluster, timeout_s: float) -> Any:
    """Start a watchdog process that stops this one with a clear message if a peer does not
    accept a TCP connection within ``timeout_s``; it exits by itself once every peer answered.

    TensorFlow's strategy constructor waits for every task without a deadline, inside C++ and
    holding the GIL (so a thread of this process could not run), and TensorFlow handles
    SIGTERM itself: the watchdog names the missing workers on stderr, then sends SIGKILL.
    Without it, a wrong address or a worker that never started is a silent hang.
    """
    import subprocess
    import sys

    me = f"worker {cluster.index} ({cluster.workers[cluster.index]})"
    peers = [f"{i}={a}" for i, a in cluster.peers]
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(timeout_s), me, *peers])


def create_strategy(name: str, connect_timeout_s: float = 120.0) -> tuple[Any, Cluster | None]:
    """The strategy for ``train.distribute`` (None for ``none``) and the multi-worker cluster.

    Args:
        name: none, auto, mirrored or multi_worker.
        connect_timeout_s: how long a multi-worker run waits for its peers.
    """
    import tensorflow as tf

    if name == "auto":  # physical devices: listing them does not start TensorFlow's runtime
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none"
    if name == "none":
        return None, None
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices]), None
    cluster = Cluster.from_env()
    if cluster is None:
        raise UserError(
            "train.distribute=multi_worker needs TF_CONFIG (the cluster and this worker's index): start the "
            "workers with `tfpilot launch --workers N ...`, or set TF_CONFIG as Kubeflow's TFJob does"
        )
    watch_peers(cluster, connect_timeout_s)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options), cluster
    except tf.errors.UnknownError as err:
        if "Could not start gRPC server" not in str(err):
            raise
        address = cluster.workers[cluster.index]
        raise UserError(
            f"worker {cluster.index} could not listen on {address}, its address in TF_CONFIG: the port is taken "
            f"by another process, or the host is not this machine's. Give this worker a free port in TF_CONFIG "
            f"(`tfpilot launch` picks free ports each time it starts)"
        ) from err


def fingerprint(resolved_config: str) -> int:
    """A 20-bit digest of a resolved config's text (``dump_config``), compared across workers
    at start (small enough that the sum of the workers' squared digests is exact in float64)."""
    return int.from_bytes(hashlib.sha256(resolved_config.encode()).digest()[:4], "big") >> 12


def check_same_config(strategy: Any, digest: int, cluster: Cluster) -> None:
    """Raise ValueError on every worker if the workers' configs differ.

    Every worker contributes its :func:`fingerprint` ``d`` as ``(d, d**2)``; the all-reduced
    sums equal ``(n d, n d**2)`` exactly when every worker's digest is ``d`` (their variance
    is zero), so every worker reaches the same verdict.
    """
    import tensorflow as tf

    n = cluster.num_workers

    @tf.function
    def total() -> Any:
        local = strategy.run(lambda: tf.constant([digest, digest**2], tf.float64))
        return strategy.reduce("SUM", local, axis=None)

    s, s2 = total().numpy()
    if s != n * digest or s2 != n * digest**2:
        raise UserError(
            f"the {n} workers were started with different configs (worker {cluster.index}: fingerprint {digest}): "
            "start every worker with the same arguments and files (tfpilot launch does)"
        )


def replica_batch(batch_size: int, replicas: int) -> int:
    """The examples each replica takes per step; the global batch must split evenly."""
    if batch_size % replicas:
        raise UserError(
            f"train.batch_size={batch_size} does not split evenly over {replicas} replicas: choose a multiple "
            f"of {replicas} (it is the global batch; each replica takes batch_size / replicas)"
        )
    return batch_size // replicas


def weights_digest(model: Any) -> str:
    """SHA-256 of every weight's bytes, in order: equal on every worker of a healthy run."""
    import numpy as np

    h = hashlib.sha256()
    for w in model.weights:
        h.update(np.ascontiguousarray(np.asarray(w.numpy())).tobytes())
    return h.hexdigest()
