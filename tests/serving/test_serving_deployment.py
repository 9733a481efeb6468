"""A deployment-like server: the same run exported three ways (``--backend saved_model|tflite|onnx``,
one per model) next to its Keras model, behind ``--api-key``; it ends with a graceful shutdown.

One server process serves the whole module (the shutdown test stops it, so it comes last).
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.conftest import free_port

KEY = "s3cret-key"
AUTH = {"X-API-Key": KEY}
BACKENDS = ("saved_model", "tflite", "onnx")
GOOD = {"instances": [np.zeros((16, 16, 3), "uint8").tolist()]}


@pytest.fixture(scope="module")
def deployed(start_server, exported_run: Path):
    args: list = [exported_run] * 4 + ["--name", "shapes", "--backend", "keras"]
    for name in BACKENDS:
        args += ["--name", name, "--backend", name]
    grpc_port = free_port()
    server = start_server(*args, "--api-key", KEY, "--no-access-log", "--grpc-port", grpc_port).wait_ready()
    server.grpc_target = f"127.0.0.1:{grpc_port}"
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed(deployed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployed.url, timeout=30) as c:
        yield c


# -- backends ----------------------------------------------------------------------------------
def test_each_backend_serves_like_keras(keyed: httpx.Client, predictor, shape_images, png) -> None:
    want = predictor.predict_proba(shape_images)
    listed = {m["name"]: m["backend"] for m in keyed.get("/v1/models", headers=AUTH).json()["models"]}
    assert listed == {"shapes": "keras", **{name: name for name in BACKENDS}}
    b64 = [{"b64": base64.b64encode(png(img)).decode()} for img in shape_images[:2]]
    for name in BACKENDS:
        meta = keyed.get(f"/v1/models/{name}/metadata", headers=AUTH).json()["metadata"]
        assert meta["backend"] == name and meta["class_names"] == predictor.class_names
        rows = keyed.post(f"/v1/models/{name}:predict", json={"instances": shape_images.tolist()}, headers=AUTH)
        assert rows.status_code == 200, rows.text
        np.testing.assert_allclose(rows.json()["predictions"], want, atol=5e-3)
        own = np.array(keyed.post(f"/v1/models/{name}:predict", json={"instances": b64}, headers=AUTH)
                       .json()["predictions"])
        np.testing.assert_allclose(own, want[:2], atol=5e-3)  # b64 PNGs decode to the same pixels
        r = keyed.post(f"/v1/models/{name}:classify", json={"instances": b64}, headers=AUTH)
        assert [pairs[0][0] for pairs in r.json()["result"]] == [predictor.class_names[i] for i in own.argmax(axis=1)]


def test_backend_input_errors_are_clear(keyed: httpx.Client) -> None:
    r = keyed.post("/v1/models/tflite:predict", json={"instances": [np.zeros((4, 4, 3), int).tolist()]}, headers=AUTH)
    assert r.status_code == 400 and "wrong shape" in r.json()["error"]


# -- the API key -------------------------------------------------------------------------------
def test_model_routes_need_the_key(keyed: httpx.Client) -> None:
    for method, path in (("GET", "/v1/models"), ("GET", "/v1/models/shapes"), ("GET", "/v1/models/shapes/metadata"),
                         ("POST", "/v1/models/shapes:predict"), ("POST", "/v1/models/onnx:classify"),
                         ("POST", "/v1/models/shapes/predict-file"), ("GET", "/metrics")):
        r = keyed.request(method, path, json=GOOD if method == "POST" else None)
        assert r.status_code == 401, (path, r.text)
        assert "X-API-Key" in r.json()["error"] and r.headers["www-authenticate"].startswith("Bearer")
        wrong = keyed.request(method, path, json=GOOD if method == "POST" else None, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and wrong.json() == {"error": "wrong API key"}


def test_key_in_header_or_bearer_token(keyed: httpx.Client) -> None:
    r = keyed.post("/v1/models/shapes:predict", json=GOOD, headers=AUTH)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 1
    r = keyed.post("/v1/models/shapes:predict", json=GOOD, headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    assert keyed.get("/metrics", headers=AUTH).status_code == 200
    assert keyed.post("/v1/models/shapes:predict", json=GOOD,
                      headers={"Authorization": "Bearer " + KEY[:-1]}).status_code == 401


def test_probes_page_and_docs_stay_open(keyed: httpx.Client) -> None:
    for path in ("/healthz", "/readyz", "/", "/static/app.js", "/docs", "/openapi.json"):
        assert keyed.get(path).status_code == 200, path
    schemes = keyed.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"apiKey", "http"}


def test_web_page_asks_for_the_key(deployed, keyed: httpx.Client, shape_images, png, tmp_path: Path) -> None:
    """The page shows the key field on a 401, then predicts with the key the user types."""
    from playwright.sync_api import sync_playwright

    from tests.serving.test_serving_browser import ARGS, CHROMIUM

    image = tmp_path / "shape.png"
    image.write_bytes(png(shape_images[0]))
    expected = keyed.post("/v1/models/tflite/predict-file", files={"files": ("shape.png", image.read_bytes())},
                          headers=AUTH).json()["predictions"][0]["label"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(deployed.url + "/")
            page.wait_for_selector("#key-row:not([hidden])")
            assert "API key" in page.text_content("#status")
            page.fill("#api-key", KEY)
            page.click("#key-save")
            page.wait_for_selector("#model option[value=tflite]", state="attached")
            page.select_option("#model", "tflite")
            page.set_input_files("#file", str(image))
            page.wait_for_selector("#prediction:not([hidden])", timeout=30_000)
            label = page.text_content("#top-label")
        finally:
            browser.close()
    assert label == expected


def test_grpc_needs_the_key_too_and_serves_every_backend(deployed, predictor, shape_images) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    with grpc.insecure_channel(deployed.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "onnx"
        request.inputs["image"].CopyFrom(tf.make_tensor_proto(shape_images))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Predict(request, timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED and "x-api-key" in caught.value.details()
        for name in ("shapes", *BACKENDS):
            request.model_spec.name = name
            meta = keyed_input_name(deployed, name)
            request.inputs.clear()
            request.inputs[meta].CopyFrom(tf.make_tensor_proto(shape_images))
            response = stub.Predict(request, timeout=30, metadata=[("authorization", f"Bearer {KEY}")])
            np.testing.assert_allclose(tf.make_ndarray(response.outputs["output_0"]),
                                       predictor.predict_proba(shape_images), atol=5e-3)


def keyed_input_name(deployed, name: str) -> str:
    meta = httpx.get(f"{deployed.url}/v1/models/{name}/metadata", headers=AUTH, timeout=30).json()
    return next(iter(meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]))


# -- graceful shutdown (last: it stops the module's server) ------------------------------------
def test_graceful_shutdown_finishes_in_flight_requests(deployed) -> None:
    """SIGTERM while a request is half sent: the server stops accepting connections, answers
    that request in full, then exits cleanly."""
    body = json.dumps(GOOD).encode()
    head = (f"POST /v1/models/shapes:predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {KEY}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", deployed.port), timeout=30) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)
        deployed.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # new connections are refused once shutdown starts
            try:
                socket.create_connection(("127.0.0.1", deployed.port), timeout=1).close()
            except OSError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the server kept accepting connections after SIGTERM")
        sock.sendall(body[len(body) // 2 :])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", response[:300]
    payload = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert len(payload["predictions"]) == 1 and len(payload["predictions"][0]) == 3
    # uvicorn re-raises the signal after its graceful shutdown, so the exit status says SIGTERM.
    assert deployed.proc.wait(30) in (0, -signal.SIGTERM)
    log = deployed.stderr()
    assert "Application shutdown complete" in log and "Finished server process" in log
