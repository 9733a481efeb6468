"""The Open Inference Protocol (KServe V2) with ``tritonclient.http``, against a real ``tfpilot serve``:
JSON and binary tensors, on a TF2 module, a TF1 graph and a tfpilot export."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving.savedmodels import tf1_expected, tf2_weights


@pytest.fixture(scope="module")
def triton(tf_server):
    import tritonclient.http as triton_http

    client = triton_http.InferenceServerClient(tf_server.url.removeprefix("http://"), network_timeout=30)
    yield client
    client.close()


def infer_input(name: str, value: np.ndarray, datatype: str, binary: bool = True):
    import tritonclient.http as triton_http

    tensor = triton_http.InferInput(name, list(value.shape), datatype)
    tensor.set_data_from_numpy(value, binary_data=binary)
    return tensor


def test_health_and_metadata(triton) -> None:
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.is_model_ready("two") and triton.is_model_ready("hpt", "123")
    assert not triton.is_model_ready("two", "5")
    meta = triton.get_model_metadata("two")
    assert meta == {"name": "two", "versions": ["1"], "platform": "tensorflow_savedmodel",
                    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
                    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]}
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_matches_the_signature(triton, binary: bool) -> None:
    import tritonclient.http as triton_http

    x = np.array([[1.0, 0.5], [-2.0, 3.0]], np.float32)
    result = triton.infer("two", [infer_input("x", x, "FP32", binary)],
                          outputs=[triton_http.InferRequestedOutput("y", binary_data=binary)], request_id="r1")
    np.testing.assert_allclose(result.as_numpy("y"), x @ tf2_weights(), rtol=1e-6)
    response = result.get_response()
    assert response["model_name"] == "two" and response["model_version"] == "1" and response["id"] == "r1"
    y = triton.infer("hpt", [infer_input("x", x[:, :1].copy(), "FP32", binary)], model_version="123").as_numpy("y")
    np.testing.assert_allclose(y, tf1_expected(x[:, :1]))


def test_infer_bytes_tensors_and_another_signature(triton) -> None:
    text = np.array([b"ab", b"xyz"], dtype=object)
    n = np.array([2, 1], np.int32)
    result = triton.infer("two", [infer_input("text", text, "BYTES"), infer_input("n", n, "INT32", binary=False)],
                          parameters={"signature_name": "words"})
    assert result.as_numpy("length").tolist() == [4, 3]
    assert result.as_numpy("upper_bytes").tolist() == [b"AB", b"XYZ"]


def test_the_tfpilot_export_over_v2(triton, tf_models: dict[str, Path], shape_images) -> None:
    import tensorflow as tf

    result = triton.infer("shapes", [infer_input("images", shape_images, "UINT8")])
    want = tf.saved_model.load(str(tf_models["shapes"] / "1")).signatures["serving_default"](
        images=tf.constant(shape_images))
    np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"].numpy(), atol=1e-5)


def test_v2_errors(tf_client: httpx.Client) -> None:
    def infer(body: dict, path: str = "/v2/models/two/infer") -> httpx.Response:
        return tf_client.post(path, json=body)

    x = {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}
    cases = [
        (infer({"inputs": [{**x, "shape": [1, 3]}]}), 400, "needs 3"),
        (infer({"inputs": [{**x, "datatype": "FP99"}]}), 400, "unknown datatype"),
        (infer({"inputs": [{**x, "datatype": "FP64"}]}), 400, "expects float32"),
        (infer({"inputs": [{**x, "name": "z"}]}), 400, "Missing but required"),
        (infer({"inputs": []}), 400, "needs \"inputs\""),
        (infer({"inputs": [x], "outputs": [{"name": "nope"}]}), 400, "unknown output"),
        (infer({"inputs": [x]}, "/v2/models/nope/infer"), 400, "Request for unknown model: 'nope' is not found"),
        (infer({"inputs": [x]}, "/v2/models/two/versions/4/infer"), 404,
         "Request for unknown model: 'two' version 4 is not found"),
        (tf_client.post("/v2/models/two/infer", content=b"{bad"), 400, "malformed JSON"),
        (tf_client.post("/v2/repository/models/two/unload"), 400, "explicit model load / unload is not allowed "
         "if polling is enabled"),
        (tf_client.post("/v2/models/two/infer", content=b'{"inputs": []}', headers={"Content-Encoding": "br"}), 400,
         "Content-Encoding"),
    ]
    for r, status, fragment in cases:
        assert r.status_code == status, r.text
        assert fragment in r.json()["error"], r.json()
    import gzip
    import json

    r = tf_client.post("/v2/models/two/infer", content=gzip.compress(json.dumps({"inputs": [x]}).encode()),
                       headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [7.0, 10.0]


def test_explicit_model_control_needs_one_worker(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from tfpilot.serving.settings import ServeSettings

    assert ServeSettings(models=[{"path": tmp_path, "name": "m"}], model_control_mode="explicit").workers == 1
    with pytest.raises(ValidationError, match="needs one worker"):
        ServeSettings(models=[{"path": tmp_path, "name": "m"}], model_control_mode="explicit", workers=2)
    with pytest.raises(ValidationError):
        ServeSettings(models=[{"path": tmp_path, "name": "m"}], model_control_mode="poll")
