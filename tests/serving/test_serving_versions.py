"""Versions and hot reload against real servers: a new version folder dropped into the base path
while clients send requests continuously (REST and gRPC) is served within poll + warm-up time,
the old version is unloaded, and no request fails; a corrupt version leaves the serving one in
place with its error in the status. Then ``--model_config_file`` is rewritten to drop a model."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.conftest import model_config_text
from tests.serving.savedmodels import (
    corrupt_version,
    predict_warmup,
    tf1_expected,
    tf1_half_plus_two,
    tf2_two_signatures,
)

POLL_S = 0.3
X = [[1.0, 0.0]]  # y = x @ (scale * W): the first entry of y is the version's scale


@pytest.fixture(scope="module")
def base_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``swap/1`` (scale 1, with a warm-up file); versions 2 and 3 are built beside, not yet inside."""
    root = tmp_path_factory.mktemp("swap")
    tf2_two_signatures(root / "swap" / "1", scale=1.0)
    predict_warmup(root / "swap" / "1", {"x": np.ones((1, 2), np.float32)})
    tf2_two_signatures(root / "staging-2", scale=2.0)
    predict_warmup(root / "staging-2", {"x": np.ones((1, 2), np.float32)}, count=3)
    corrupt_version(root / "staging-3")
    return root


@pytest.fixture(scope="module")
def swap_server(start_server, base_path: Path):
    """Started exactly as the ``tensorflow/serving`` image starts its server."""
    server = start_server("--model_name", "swap", "--model_base_path", base_path / "swap",
                          "--file_system_poll_wait_seconds", POLL_S, "--no-access-log", tf_serving=True).wait_ready()
    yield server
    server.stop()


async def rest_load(url: str, seen: dict, stop: asyncio.Event, workers: int = 3) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async def worker() -> None:
            deadline = time.monotonic() + 60  # bounded, whatever happens
            while not stop.is_set() and time.monotonic() < deadline:
                r = await client.post("/v1/models/swap:predict", json={"instances": X})
                if r.status_code != 200:
                    seen["failed"].append(f"REST {r.status_code}: {r.text[:200]}")
                    continue
                scale = r.json()["predictions"][0][0]
                seen["scales"].append(scale)
                seen["at"].setdefault(scale, time.monotonic())

        await asyncio.gather(*(worker() for _ in range(workers)))


async def grpc_load(target: str, seen: dict, stop: asyncio.Event) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "swap"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array(X, np.float32)))
    async with grpc.aio.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                response = await stub.Predict(request, timeout=30)
            except grpc.aio.AioRpcError as exc:
                seen["failed"].append(f"gRPC {exc.code()}: {exc.details()}")
                continue
            seen["grpc_versions"].add(response.model_spec.version.value)


def status(url: str) -> dict[str, dict]:
    body = httpx.get(f"{url}/v1/models/swap", timeout=10).json()
    return {s["version"]: s for s in body["model_version_status"]}


def test_hot_swap_under_load_fails_no_request(swap_server, base_path: Path) -> None:
    seen: dict = {"scales": [], "failed": [], "at": {}, "grpc_versions": set()}

    async def main() -> float:
        stop = asyncio.Event()
        load = asyncio.gather(rest_load(swap_server.url, seen, stop), grpc_load(swap_server.grpc_target, seen, stop))
        await asyncio.sleep(1.0)
        assert seen["scales"] and set(seen["scales"]) == {1.0}
        dropped = time.monotonic()
        shutil.move(base_path / "staging-2", base_path / "swap" / "2")  # a new version appears whole
        while 2.0 not in seen["at"] and time.monotonic() - dropped < 30:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # keep sending through the unload of version 1
        stop.set()
        await load
        return seen["at"].get(2.0, float("inf")) - dropped

    switch_s = asyncio.run(main())
    assert seen["failed"] == []  # zero failed requests, REST and gRPC
    assert switch_s < POLL_S + 5.0, switch_s  # one poll, load and warm-up (3 requests)
    tail = seen["scales"][-20:]
    assert tail == [2.0] * len(tail)  # version 2 only, once switched
    assert seen["grpc_versions"] == {1, 2}
    states = status(swap_server.url)
    assert states["2"]["state"] == "AVAILABLE" and states["1"]["state"] == "END"
    assert states["1"]["status"] == {"error_code": "OK", "error_message": ""}
    r = httpx.post(f"{swap_server.url}/v1/models/swap/versions/1:predict", json={"instances": X})
    assert r.status_code == 404 and "Specific(swap, 1)" in r.json()["error"]
    log = swap_server.stderr()
    assert "version 2: warmed up with 3 requests" in log and "model swap version 1 unloaded" in log


def test_corrupt_version_leaves_the_serving_one_and_shows_the_error(swap_server, base_path: Path) -> None:
    shutil.move(base_path / "staging-3", base_path / "swap" / "3")
    deadline = time.monotonic() + 30
    while "3" not in status(swap_server.url) or status(swap_server.url)["3"]["state"] != "END":
        assert time.monotonic() < deadline, status(swap_server.url)
        time.sleep(0.1)
    for _ in range(5):  # several polls later, version 2 still serves
        r = httpx.post(f"{swap_server.url}/v1/models/swap:predict", json={"instances": X})
        assert r.status_code == 200 and r.json()["predictions"][0][0] == 2.0
        time.sleep(POLL_S)
    states = status(swap_server.url)
    assert states["2"]["state"] == "AVAILABLE"
    assert states["3"]["status"]["error_code"] == "DATA_LOSS"
    assert "saved_model.pb is not a SavedModel" in states["3"]["status"]["error_message"]
    assert httpx.get(f"{swap_server.url}/readyz").status_code == 200


# -- --model_config_file, re-read while serving --------------------------------------------------------
@pytest.fixture(scope="module")
def config_server(start_server, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("config-reload")
    tf1_half_plus_two(root / "hpt" / "1")
    tf2_two_signatures(root / "two" / "1")
    tf2_two_signatures(root / "two" / "2", scale=3.0)
    config = root / "models.config"
    models = {"hpt": root / "hpt", "two": root / "two"}
    text = model_config_text(models, {"two": {"stable": 1}})
    config.write_text(text.replace('base_path: "%s"' % models["two"],  # serve both versions of two
                                   'base_path: "%s" model_version_policy { all {} }' % models["two"]))
    server = start_server("--model_config_file", config, "--model_config_file_poll_wait_seconds", POLL_S,
                          "--no-access-log", tf_serving=True).wait_ready()
    yield server, config, models
    server.stop()


def test_model_config_file_reload_unloads_a_removed_model(config_server) -> None:
    server, config, models = config_server
    with httpx.Client(base_url=server.url, timeout=30) as client:
        def two(path: str) -> float:
            r = client.post(f"/v1/models/two{path}:predict", json={"instances": X})
            assert r.status_code == 200, r.text
            return r.json()["predictions"][0][0]

        assert (two(""), two("/versions/1"), two("/labels/stable"), two("/versions/2")) == (3.0, 1.0, 1.0, 3.0)
        r = client.post("/v1/models/hpt:predict", json={"instances": [[4.0]]})
        assert r.json()["predictions"] == tf1_expected([[4.0]]).tolist()

        config.write_text(model_config_text({"two": models["two"]}, {"two": {"stable": 2}}))
        deadline = time.monotonic() + 30
        while client.get("/v1/models/hpt").status_code != 404:
            assert two("/labels/stable") in (1.0, 3.0)  # the other model keeps serving throughout
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = client.post("/v1/models/hpt:predict", json={"instances": [[4.0]]})
        assert r.status_code == 404 and "Models served here: two" in r.json()["error"]
        assert two("/labels/stable") == 3.0  # the new label, and the latest-1 policy again:
        assert [s["version"] for s in client.get("/v1/models/two").json()["model_version_status"]
                if s["state"] == "AVAILABLE"] == ["2"]
    assert "model hpt version 1 unloaded" in server.stderr()


def test_grpc_reload_config_request_adds_a_model_back(config_server) -> None:
    """ModelService/HandleReloadConfigRequest serves exactly the config sent (here: hpt again, two)."""
    import grpc
    from google.protobuf import text_format
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    server, _, models = config_server
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(model_config_text(models), request.config)
    with grpc.insecure_channel(server.grpc_target) as channel:
        response = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, timeout=60)
        assert response.status.error_code == 0
        bad = model_management_pb2.ReloadConfigRequest()
        bad.config.model_config_list.config.add(name="nobase")
        with pytest.raises(grpc.RpcError) as caught:
            model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(bad, timeout=60)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs a base_path" in caught.value.details()
    r = httpx.post(f"{server.url}/v1/models/hpt:predict", json={"instances": [[4.0]]}, timeout=30)
    assert r.status_code == 200 and r.json()["predictions"] == tf1_expected([[4.0]]).tolist()
