"""Memory on unload, TF Serving's most common complaint: a real ``tfpilot serve`` swaps versions
of a model with 52 MB of variables 20 times under load, and its resident memory after the 20th
swap is less than one model above its level after the first."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import numpy as np

#: float32 elements of the model's variable: 52.4 MB.
ELEMENTS = 13_107_200
MODEL_BYTES = 4 * ELEMENTS
SWAPS = 20


def big_model(path: Path) -> Path:
    """y = x * w[0] + 1, with ``w`` a 52 MB variable (all of it restored on every load)."""
    import tensorflow as tf

    class Big(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable(tf.fill([ELEMENTS], 2.0))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def serve(self, x):
            return {"y": x * self.w[0] + 1.0}

    module = Big()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def add_version(base: Path, version: int) -> None:
    """Version ``version`` as hard links to version 1's files, moved in whole."""
    staging = base.parent / f"staging-{version}"
    shutil.copytree(base / "1", staging, copy_function=os.link)
    staging.rename(base / str(version))


def wait_serving(client: httpx.Client, version: int, timeout: float = 60.0) -> None:
    """Until ``version`` is the only version AVAILABLE and no other is loading or unloading."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/v1/models/big").json()["model_version_status"]
        states = {s["version"]: s["state"] for s in status}
        busy = [v for v, s in states.items() if s in ("LOADING", "UNLOADING", "START")]
        if [v for v, s in states.items() if s == "AVAILABLE"] == [str(version)] and not busy:
            return
        time.sleep(0.05)
    raise TimeoutError(f"version {version} was not the only one served in {timeout}s: {states}")


def test_resident_memory_stays_flat_over_version_swaps(start_server, tmp_path: Path) -> None:
    base = tmp_path / "big"
    big_model(base / "1")
    server = start_server("--model_name", "big", "--model_base_path", base,
                          "--file_system_poll_wait_seconds", "0.1", tf_serving=True).wait_ready(300)
    stop, answered, failed = threading.Event(), [0], []
    x = {"instances": np.ones((2, 4)).tolist()}

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while not stop.is_set():
                r = c.post("/v1/models/big:predict", json=x)
                if r.status_code == 200:
                    assert r.json()["predictions"][0] == [3.0] * 4
                    answered[0] += 1
                else:
                    failed.append(r.text)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    levels = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for version in range(2, SWAPS + 2):
                add_version(base, version)
                wait_serving(client, version)
                if version > 2:
                    shutil.rmtree(base / str(version - 1))
                levels.append(rss_bytes(server.proc.pid))
    finally:
        stop.set()
        worker.join(30)
    growth = levels[-1] - levels[0]
    mb = [round(v / 2**20) for v in levels]
    assert growth < MODEL_BYTES, f"RSS grew {growth / 2**20:.0f} MB over {SWAPS} swaps: {mb} MB"
    assert answered[0] > SWAPS and not failed, (answered[0], failed[:3])
    print(f"RSS after each swap (MB): {mb}; {answered[0]} requests answered during the swaps")
