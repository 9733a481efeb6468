"""Model states over the app (in process, fast): LOADING answers 503 with Retry-After until the
model is warmed up; a model that cannot load is reported as END with the reason."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import numpy as np

from tfpilot.serving.app import create_app
from tfpilot.serving.servable import PredictorServable
from tfpilot.serving.settings import ServeSettings, model_sources

GOOD = {"instances": [np.zeros((16, 16, 3), "uint8").tolist()]}


def run(settings: ServeSettings, body: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    app = create_app(settings)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
                await body(client)

    asyncio.run(main())


async def wait_ready(client: httpx.AsyncClient, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (await client.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def test_loading_answers_503_until_warmed_up(image_run: Path, monkeypatch) -> None:
    release = threading.Event()
    original = PredictorServable.load

    def slow_load(self: PredictorServable) -> None:
        release.wait(60)
        original(self)

    monkeypatch.setattr(PredictorServable, "load", slow_load)

    async def body(client: httpx.AsyncClient) -> None:
        r = await client.get("/readyz")
        assert r.status_code == 503 and r.json()["models"] == {"shapes": "LOADING"}
        assert "shapes: LOADING" in r.json()["error"]
        assert (await client.get("/healthz")).status_code == 200  # alive while loading
        status = (await client.get("/v1/models/shapes")).json()["model_version_status"][0]
        assert status["version"] == "1" and status["state"] in ("START", "LOADING")
        r = await client.post("/v1/models/shapes:predict", json=GOOD)
        assert r.status_code == 503 and "still loading" in r.json()["error"] and r.headers["retry-after"] == "2"
        assert (await client.get("/v1/models/shapes/metadata")).status_code == 503
        assert (await client.get("/v1/models")).json()["models"][0]["state"] == "LOADING"
        release.set()
        await wait_ready(client)
        r = await client.post("/v1/models/shapes:predict", json=GOOD)
        assert r.status_code == 200 and len(r.json()["predictions"][0]) == 3

    run(ServeSettings(models=model_sources([image_run], ["shapes"]), freeze_gc=False), body)


def test_a_model_that_cannot_load_is_reported(image_run: Path, tmp_path: Path) -> None:
    broken = tmp_path / "not-a-run"
    broken.mkdir()
    (broken / "notes.txt").write_text("no model here")

    async def body(client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 120
        while (await client.get("/v1/models/broken")).json()["model_version_status"][0]["state"] != "END":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        status = (await client.get("/v1/models/broken")).json()["model_version_status"][0]
        assert status["version"] == "1" and status["state"] == "END"
        assert status["status"]["error_code"] == "NOT_FOUND"  # TF Serving's code for the failure
        assert "holds no artifact tfpilot can load" in status["status"]["error_message"]
        r = await client.get("/readyz")
        assert r.status_code == 503 and "broken: END (NotFoundError" in r.json()["error"]
        r = await client.post("/v1/models/broken:predict", json=GOOD)
        assert r.status_code == 503 and "not available" in r.json()["error"]
        r = await client.get("/metrics")
        assert 'tfpilot_model_ready{model="broken"} 0.0' in r.text
        # the other model is served regardless
        assert (await client.post("/v1/models/shapes:predict", json=GOOD)).status_code == 200

    run(ServeSettings(models=model_sources([image_run, broken], ["shapes", "broken"]), freeze_gc=False), body)


def test_libraries_are_frozen_out_of_the_collector_and_models_stay_collectable(image_run: Path) -> None:
    """Before any model loads, the objects alive (TensorFlow's, Keras', ...) are frozen; the model's
    own objects are not, so an unloaded version can be collected without unfreezing everything."""
    import gc

    gc.unfreeze()
    seen: dict[str, object] = {}
    app = create_app(ServeSettings(models=model_sources([image_run], ["shapes"])))

    async def main() -> None:
        async with app.router.lifespan_context(app):
            seen["frozen"] = gc.get_freeze_count()  # at once, before the model has loaded
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
                await wait_ready(client)
            servable = app.state.core.servables()["shapes"]
            tracked = {id(o) for o in gc.get_objects()}  # the collector's generations (not the frozen ones)
            seen["model collectable"] = id(servable) in tracked and id(servable.runner) in tracked

    try:
        asyncio.run(main())
    finally:
        gc.unfreeze()  # give this test process its collector back
    assert seen["frozen"] > 100_000 and seen["model collectable"] is True
