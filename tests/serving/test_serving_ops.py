"""Operations over HTTP: liveness, readiness, Prometheus metrics, JSON access logs, request ids."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import numpy as np


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match[1] == name and dict(re.findall(r'(\w+)="([^"]*)"', match[2] or "")) == labels:
            return float(match[3])
    return 0.0


def test_healthz_and_readyz(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "models": {"shapes": "AVAILABLE", "sentiment": "AVAILABLE"}}


def test_metrics_count_requests_latency_batches_and_queue(client: httpx.Client, server, shape_images) -> None:
    before = client.get("/metrics").text
    route = "/v1/models/{name}:predict"

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as ac:
            rs = await asyncio.gather(*(ac.post("/v1/models/shapes:predict",
                                                json={"instances": shape_images[:1].tolist()}) for _ in range(32)))
        return [r.status_code for r in rs]

    assert asyncio.run(burst()) == [200] * 32
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text
    ok = lambda t: metric(t, "tfpilot_http_requests_total", method="POST", route=route, status="200")  # noqa: E731
    assert ok(after) - ok(before) == 32
    lat = lambda t: metric(t, "tfpilot_http_request_duration_seconds_count", method="POST", route=route)  # noqa: E731
    assert lat(after) - lat(before) == 32
    calls = lambda t: metric(t, "tfpilot_batch_size_count", model="shapes")  # noqa: E731
    items = lambda t: metric(t, "tfpilot_batch_size_sum", model="shapes")  # noqa: E731
    assert items(after) - items(before) == 32
    # 32 concurrent single-instance requests shared model calls (max batch 8: at least 4 calls).
    assert 4 <= calls(after) - calls(before) < 32
    assert metric(after, "tfpilot_queue_depth", model="shapes") == 0
    assert metric(after, "tfpilot_model_ready", model="sentiment") == 1
    assert metric(after, "tfpilot_batch_size_bucket", model="shapes", le="8.0") == \
        metric(after, "tfpilot_batch_size_count", model="shapes")  # never above --max-batch


def test_access_log_is_one_json_line_per_request(client: httpx.Client, server) -> None:
    r = client.get("/v1/models/shapes", headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 16
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entries = {e["request_id"]: e for e in server.access_log()}
        if "trace-42" in entries and generated in entries:
            break
        time.sleep(0.1)
    entry = entries["trace-42"]
    assert entry["event"] == "access" and entry["method"] == "GET" and entry["status"] == 200
    assert entry["path"] == "/v1/models/shapes" and entry["route"] == "/v1/models/{name}"
    assert entry["client"].startswith("127.0.0.1:") and entry["duration_ms"] > 0
    assert entries[generated]["route"] == "/healthz"


def test_the_event_loop_answers_while_a_large_batch_runs(client: httpx.Client, server, shape_images) -> None:
    """Health checks are answered while big predictions are being decoded and run."""
    big = {"instances": np.repeat(shape_images[:1], 16, axis=0).tolist()}

    async def main() -> tuple[list[int], list[float]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as ac:
            preds = [asyncio.create_task(ac.post("/v1/models/shapes:predict", json=big)) for _ in range(6)]
            waits = []
            for _ in range(5):
                t0 = time.perf_counter()
                assert (await ac.get("/healthz")).status_code == 200
                waits.append(time.perf_counter() - t0)
            return [(await p).status_code for p in preds], waits

    codes, waits = asyncio.run(main())
    assert codes == [200] * 6
    assert max(waits) < 2.0
