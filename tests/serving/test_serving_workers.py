"""``--workers N``: each worker builds its app from the settings in the environment, and
``/metrics`` of any worker reports the sum over all of them."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import numpy as np
import pytest

from tfpilot.serving.settings import SETTINGS_ENV, ServeSettings, model_sources

GOOD = {"instances": [np.zeros((16, 16, 3), "uint8").tolist()]}


def test_app_from_env_serves_what_the_parent_was_told(image_run, monkeypatch) -> None:
    """The worker-side factory (fast, in process): settings travel as JSON in the environment."""
    from tfpilot.serving.app import app_from_env

    settings = ServeSettings(models=model_sources([image_run], ["shapes"]), max_batch=4, api_key="k3y",
                             freeze_gc=False)
    monkeypatch.setenv(SETTINGS_ENV, settings.to_env())
    app = app_from_env()

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                deadline = time.monotonic() + 120
                while (await client.get("/readyz")).status_code != 200:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
                assert (await client.post("/v1/models/shapes:predict", json=GOOD)).status_code == 401
                r = await client.post("/v1/models/shapes:predict", json=GOOD, headers={"X-API-Key": "k3y"})
                assert r.status_code == 200 and len(r.json()["predictions"][0]) == 3

    asyncio.run(main())


@pytest.mark.slow
def test_two_workers_share_their_metrics(start_server, image_run) -> None:
    server = start_server(image_run, "--name", "shapes", "--workers", "2", "--no-access-log").wait_ready(240)
    try:
        deadline = time.monotonic() + 120  # /readyz was answered by one worker; wait for both
        while server.stderr().count("model shapes ready") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        for _ in range(8):  # new connections: spread over the workers by the kernel
            assert httpx.post(f"{server.url}/v1/models/shapes:predict", json=GOOD).status_code == 200
        # whichever worker answers /metrics (fresh connections), it reports all 8 requests
        for _ in range(6):
            metrics = httpx.get(f"{server.url}/metrics").text
            ok = re.search(r'tfpilot_http_requests_total\{method="POST",route="/v1/models/\{name\}:predict",'
                           r'status="200"\} (\S+)', metrics)
            assert ok and float(ok[1]) == 8
        assert len(set(re.findall(r"Started server process \[(\d+)\]", server.stderr()))) == 2
    finally:
        server.stop()
